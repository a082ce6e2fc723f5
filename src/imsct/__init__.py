"""imsct: intramedullary spinal cord tumor segmentation (Lemay et al. 2021, NeuroImage: Clinical)."""

__version__ = "0.1.0"
