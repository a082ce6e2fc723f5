"""Training data: preprocessed subjects on the 1x1x2 mm working grid, cord patches, cord-bounding-box
crops and sliding patches for the tumor model.

Arrays are in the working grid's voxel order (x right-left, y anterior-posterior, z superior-inferior);
sizes in the config follow the paper's order (superior-inferior, anterior-posterior, right-left) and
are converted with :func:`paper_to_array`.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

CLASSES = ("tumor", "edema", "cavity", "wholetumor")


def paper_to_array(size_si_ap_rl) -> tuple[int, int, int]:
    si, ap, rl = size_si_ap_rl
    return int(rl), int(ap), int(si)


@dataclass
class Case:
    key: str
    t2w: np.ndarray
    t1w: np.ndarray
    masks: dict[str, np.ndarray]  # tumor, edema, cavity, cord (uint8)
    tumor_type: str = ""

    @property
    def target(self) -> np.ndarray:
        """(4, x, y, z): tumor, edema, cavity, whole tumor (their union)."""
        t, e, c = (self.masks[k].astype(np.float32) for k in ("tumor", "edema", "cavity"))
        return np.stack([t, e, c, np.clip(t + e + c, 0, 1)])


def load_case(key: str, paths: dict[str, str], tumor_type: str = "") -> Case:
    arr = lambda p, dt: np.asarray(nib.load(p).dataobj, dtype=dt)  # noqa: E731
    return Case(key, arr(paths["t2w"], np.float32), arr(paths["t1w"], np.float32),
                {k: arr(paths[k], np.uint8) for k in ("tumor", "edema", "cavity", "cord")}, tumor_type)


def center_crop_pad(a: np.ndarray, size, value: float = 0.0) -> tuple[np.ndarray, tuple[int, ...]]:
    """Centre crop or zero-pad the last three axes to ``size`` (the paper's single cord patch).
    Returns the result and the start offsets (negative = padding) to map back."""
    out = np.full(a.shape[:-3] + tuple(size), value, dtype=a.dtype)
    starts = []
    src, dst = [], []
    for n, m in zip(a.shape[-3:], size):
        s = (n - m) // 2
        starts.append(s)
        src.append(slice(max(s, 0), max(s, 0) + min(n, m)))
        dst.append(slice(max(-s, 0), max(-s, 0) + min(n, m)))
    out[(...,) + tuple(dst)] = a[(...,) + tuple(src)]
    return out, tuple(starts)


def uncrop(a: np.ndarray, starts, shape) -> np.ndarray:
    """Inverse of :func:`center_crop_pad` for the last three axes (outside = 0)."""
    out = np.zeros(a.shape[:-3] + tuple(shape), dtype=a.dtype)
    src, dst = [], []
    for s, n, m in zip(starts, shape, a.shape[-3:]):
        lo = max(s, 0)
        hi = min(s + m, n)
        dst.append(slice(lo, hi))
        src.append(slice(lo - s, hi - s))
    out[(...,) + tuple(dst)] = a[(...,) + tuple(src)]
    return out


def cord_bbox(mask: np.ndarray, safety=(1.2, 1.2, 1.0), min_size=None) -> tuple[slice, ...] | None:
    """Bounding box of ``mask`` grown about its centre by ``safety`` (x, y, z factors; paper 1.2, 1.2,
    1.0), at least ``min_size``, clipped to the image. None when the mask is empty."""
    idx = np.argwhere(mask > 0)
    if not len(idx):
        return None
    lo, hi = idx.min(0), idx.max(0) + 1
    center, ext = (lo + hi) / 2, (hi - lo) * np.asarray(safety, dtype=float)
    if min_size is not None:
        ext = np.maximum(ext, min_size)
    lo = np.maximum(np.floor(center - ext / 2).astype(int), 0)
    hi = np.minimum(np.ceil(center + ext / 2).astype(int), mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def patch_starts(n: int, patch: int, stride: int) -> list[int]:
    """Sliding-window starts covering [0, n) with the last window flush with the end."""
    if n <= patch:
        return [0]
    starts = list(range(0, n - patch + 1, stride))
    if starts[-1] != n - patch:
        starts.append(n - patch)
    return starts


def sliding_patches(shape, patch, stride) -> list[tuple[slice, ...]]:
    grids = [patch_starts(n, p, s) for n, p, s in zip(shape, patch, stride)]
    return [tuple(slice(a, a + p) for a, p in zip(start, patch))
            for start in np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, 3)]


def tumor_samples(case: Case, crop_mask: np.ndarray, patch, stride, safety) -> list[tuple[np.ndarray, np.ndarray]]:
    """(input (2, *patch): T2w, T1w; target (4, *patch)) patches of the cord crop (padded to at least
    one patch)."""
    box = cord_bbox(crop_mask, safety) or tuple(slice(0, n) for n in crop_mask.shape)
    x = np.stack([case.t2w, case.t1w])[(slice(None),) + box]  # channel order of the published config
    y = case.target[(slice(None),) + box]
    size = np.maximum(x.shape[1:], patch)
    if np.any(size > x.shape[1:]):
        x, _ = center_crop_pad(x, size)
        y, _ = center_crop_pad(y, size)
    # stored compactly (float16 inputs, uint8 targets): paper-scale training keeps every patch in memory
    return [(x[(slice(None),) + p].astype(np.float16), y[(slice(None),) + p].astype(np.uint8))
            for p in sliding_patches(x.shape[1:], patch, stride)]


def cord_sample(case: Case, patch) -> tuple[np.ndarray, np.ndarray]:
    x, _ = center_crop_pad(case.t2w[None], patch)
    y, _ = center_crop_pad(case.masks["cord"][None].astype(np.float32), patch)
    return x, y
