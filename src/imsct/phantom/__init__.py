"""Procedural synthetic IMSCT cohort (the project's embedded default data)."""

from .cohort import generate_subject, plan_cohort, write_dataset_files  # noqa: F401
