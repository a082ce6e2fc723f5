"""Evaluation: the paper's segmentation and detection metrics, aggregation over splits, report."""
