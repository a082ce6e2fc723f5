"""Connected-component postprocessing (connected-components-3d), shared by training (cord crops) and
inference."""

from __future__ import annotations

import math

import cc3d
import numpy as np

# the exclusive rule's order: a voxel goes to the first of these whose output passes the threshold
EXCLUSIVE_ORDER = ("tumor", "cavity", "edema")


def parse_min_volumes(items) -> dict[str, float]:
    """``["tumor=0.2", "cavity=0"]`` (cm3, as ``imsct segment --min-volume`` takes them) -> mm3 per class;
    an unknown class or a value that is not a number >= 0 is an error naming the item."""
    from ..classes import CLASSES

    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            cm3 = float(value) if sep else -1.0
        except ValueError:
            cm3 = -1.0
        if name not in CLASSES or not math.isfinite(cm3) or cm3 < 0:
            raise ValueError(f"--min-volume {item!r}: expected CLASS=CM3 with CLASS one of {', '.join(CLASSES)} "
                             "and CM3 a finite number >= 0")
        out[name] = cm3 * 1000.0
    return out


def remove_small(mask: np.ndarray, min_mm3: float, voxel_mm3: float) -> np.ndarray:
    """Drop 18-connected objects (ivadomed's ``generate_binary_structure(3, 2)``) smaller than
    ``min_mm3`` (measured in mm3, not voxels)."""
    if min_mm3 <= 0 or not mask.any():
        return mask
    labels = cc3d.connected_components(mask.astype(np.uint8), connectivity=18)
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


def binarize(prob: np.ndarray, threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Each sigmoid output (``prob``: tumor, edema, cavity, whole tumor) thresholded on its own."""
    from ..classes import CLASSES

    return {c: prob[i] >= threshold for i, c in enumerate(CLASSES)}


def postprocess_classes(prob: np.ndarray, voxel_mm3: float, threshold: float = 0.5, fill_holes: bool = True,
                        min_volume_mm3: dict | None = None, exclusive: bool = False) -> dict[str, np.ndarray]:
    """Binary masks from the tumor model's sigmoid outputs (``prob``: tumor, edema, cavity, whole tumor),
    paper section 2.5 in the order the published configuration runs them (ivadomed's
    ``postprocessing``: binarize_prediction, remove_small, fill_holes): each output thresholded on
    its own, then :func:`postprocess_binary`."""
    return postprocess_binary(binarize(prob, threshold), voxel_mm3, fill_holes, min_volume_mm3, exclusive)


def postprocess_binary(binary: dict[str, np.ndarray], voxel_mm3: float, fill_holes: bool = True,
                       min_volume_mm3: dict | None = None, exclusive: bool = False) -> dict[str, np.ndarray]:
    """Thresholded outputs (class -> mask) -> final masks: objects smaller than the class's minimum
    volume (mm3) removed, holes filled.

    ``exclusive`` (off in the paper) gives a voxel above threshold in several of tumor, edema and
    cavity to the most specific one: tumor core, then cavity, then the edema that surrounds them
    (labels are exclusive, the outputs are not). Holes are filled first there (else the tumor taken
    out of the edema would be filled back in), then the voxels are shared out, then small objects
    removed; the whole tumor also takes in the three classes."""
    from scipy.ndimage import binary_fill_holes

    from ..classes import CLASSES

    min_volume_mm3 = min_volume_mm3 or {}
    if not exclusive:
        out = {c: remove_small(binary[c], min_volume_mm3.get(c, 0.0), voxel_mm3) for c in CLASSES}
        return {c: binary_fill_holes(m) if fill_holes else m for c, m in out.items()}
    if fill_holes:
        binary = {c: binary_fill_holes(m) for c, m in binary.items()}
    out = {}
    taken = np.zeros(binary["tumor"].shape, bool)
    for name in EXCLUSIVE_ORDER:
        out[name] = remove_small(binary[name] & ~taken, min_volume_mm3.get(name, 0.0), voxel_mm3)
        taken |= out[name]
    whole = binary["wholetumor"] | taken
    if fill_holes:
        whole = binary_fill_holes(whole)
    out["wholetumor"] = remove_small(whole, min_volume_mm3.get("wholetumor", 0.0), voxel_mm3)
    return {c: out[c] for c in CLASSES}
