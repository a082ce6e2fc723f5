"""The paper's metrics (section 2.6.1) with the rules pinned, since tools differ on them:

- lesions are connected components with 18-connectivity;
- a ground-truth lesion is detected (TP) when its overlap with the whole predicted mask is at least
  ``overlap_mm3`` (6 mm3), otherwise it is a FN; a predicted lesion is a FP when its overlap with the
  whole ground-truth mask is below ``overlap_mm3``; overlaps are measured in mm3 from the voxel size;
- detection_tpr = TP / (TP + FN), detection_fdr = FP / (TP + FP);
- dice = 2|G&P| / (|G| + |P|), None when both are empty (so a false positive on an empty ground truth
  gives 0); precision = |G&P| / |P|, recall = |G&P| / |G|;
- rel_volume_diff = (vol_gt - vol_pred) / vol_gt (negative = over-segmentation), abs_volume_diff its
  absolute value; None on an empty ground truth.

Undefined values are None (JSON null), never 0 or NaN.
"""

from __future__ import annotations

import cc3d
import numpy as np

from ..classes import LESIONS

METRIC_KEYS = ("dice", "precision", "recall", "detection_tpr", "detection_fdr", "rel_volume_diff",
               "abs_volume_diff", "volume_gt_mm3", "volume_pred_mm3", "n_gt_lesions", "n_pred_lesions",
               "n_tp_lesions", "n_fn_lesions", "n_fp_lesions")
CONNECTIVITY = 18
DEFAULT_OVERLAP_MM3 = 6.0


def voxel_volume_mm3(affine: np.ndarray) -> float:
    return float(abs(np.linalg.det(np.asarray(affine)[:3, :3])))


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def _overlaps_per_lesion(mask: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Voxel counts of ``other`` inside each 18-connected component of ``mask`` (index 0 dropped)."""
    labels, n = cc3d.connected_components(mask.astype(np.uint8), connectivity=CONNECTIVITY, return_N=True)
    if n == 0:
        return np.zeros(0, np.int64)
    return np.bincount(labels[other].ravel(), minlength=n + 1)[1:]


def load_mask(path, ref=None) -> np.ndarray:
    """A mask file as booleans; with ``ref`` (an image), it must lie on ref's grid (shape and affine)."""
    from ..io import load_image, same_grid

    img = load_image(path)
    if ref is not None and not same_grid(img, ref):
        raise ValueError(f"{path} is not on the grid of {ref.get_filename()} (shape {img.shape} vs {ref.shape})")
    return np.asanyarray(img.dataobj) > 0


def ground_truth_masks(paths: dict, ref) -> dict[str, np.ndarray]:
    """The tumor, edema and cavity masks (paths) on ref's grid, and the whole tumor, their union."""
    g = {k: load_mask(paths[k], ref) for k in LESIONS}
    g["wholetumor"] = np.logical_or.reduce([g[k] for k in LESIONS])
    return g


def dice(gt: np.ndarray, pred: np.ndarray) -> float | None:
    """Dice of two masks alone (as :func:`compare`'s): None when both are empty."""
    g, p = np.asarray(gt) != 0, np.asarray(pred) != 0
    return _ratio(2 * int((g & p).sum()), int(g.sum()) + int(p.sum()))


def compare(gt: np.ndarray, pred: np.ndarray, voxel_mm3: float, overlap_mm3: float = DEFAULT_OVERLAP_MM3) -> dict:
    """All metrics for two boolean masks on the same grid; see the module docstring for the rules."""
    g, p = np.asarray(gt) != 0, np.asarray(pred) != 0
    if g.shape != p.shape:
        raise ValueError(f"masks differ in shape: {g.shape} vs {p.shape}")
    ng, np_, inter = int(g.sum()), int(p.sum()), int((g & p).sum())
    gt_hits = _overlaps_per_lesion(g, p) * voxel_mm3  # predicted volume inside each GT lesion
    pred_hits = _overlaps_per_lesion(p, g) * voxel_mm3  # GT volume inside each predicted lesion
    # a tolerance so that 3 voxels of 2 mm3 count as 6 mm3 despite floating-point voxel sizes
    eps = 1e-6 * max(voxel_mm3, 1.0)
    tp = int((gt_hits >= overlap_mm3 - eps).sum())
    fn = len(gt_hits) - tp
    fp = int((pred_hits < overlap_mm3 - eps).sum())
    vg, vp = ng * voxel_mm3, np_ * voxel_mm3
    rel = (vg - vp) / vg if ng else None
    return {
        "dice": _ratio(2 * inter, ng + np_),
        "precision": _ratio(inter, np_),
        "recall": _ratio(inter, ng),
        "detection_tpr": _ratio(tp, tp + fn),
        "detection_fdr": _ratio(fp, tp + fp),
        "rel_volume_diff": rel,
        "abs_volume_diff": None if rel is None else abs(rel),
        "volume_gt_mm3": vg,
        "volume_pred_mm3": vp,
        "n_gt_lesions": len(gt_hits),
        "n_pred_lesions": len(pred_hits),
        "n_tp_lesions": tp,
        "n_fn_lesions": fn,
        "n_fp_lesions": fp,
    }


def compare_files(gt_path, pred_path, overlap_mm3: float = DEFAULT_OVERLAP_MM3) -> dict:
    """:func:`compare` on two mask files, which must share one grid (shape and affine)."""
    from ..io import load_image, same_grid

    gt, pred = load_image(gt_path), load_image(pred_path)
    if not same_grid(gt, pred):
        raise ValueError(f"{gt_path} (shape {gt.shape}) and {pred_path} (shape {pred.shape}) are not on the same "
                         "grid (shape and affine must match)")
    return compare(np.asanyarray(gt.dataobj), np.asanyarray(pred.dataobj), voxel_volume_mm3(gt.affine), overlap_mm3)
