"""Trained models on a new, unlabeled cohort (``snakemake apply``): segmentation with the ensemble of
split models, volumetry, follow-up between sessions, the models' agreement and an HTML report."""
