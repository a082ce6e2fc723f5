"""Connected-component postprocessing (connected-components-3d), shared by training (cord crops) and
inference."""

from __future__ import annotations

import cc3d
import numpy as np


def remove_small(mask: np.ndarray, min_mm3: float, voxel_mm3: float) -> np.ndarray:
    """Drop 26-connected objects smaller than ``min_mm3`` (measured in mm3, not voxels)."""
    if min_mm3 <= 0 or not mask.any():
        return mask
    labels = cc3d.connected_components(mask.astype(np.uint8), connectivity=26)
    sizes = np.bincount(labels.ravel()) * voxel_mm3
    keep = sizes >= min_mm3
    keep[0] = False
    return keep[labels]


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a binary mask (boolean array; empty stays empty)."""
    if not mask.any():
        return mask
    labels = cc3d.connected_components(mask.astype(np.uint8), connectivity=26)
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return labels == counts.argmax()
