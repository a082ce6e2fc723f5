"""Inference with ONNX models (no PyTorch needed), and the export that produces them."""
