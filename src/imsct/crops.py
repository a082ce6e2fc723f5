"""What the networks see: the crop geometry shared by training and inference, so that both feed the
networks the same voxels (paper section 2.3, ivadomed 2.6.1's object detection).

Arrays are in the working grid's voxel order (x right-left, y anterior-posterior, z superior-inferior);
sizes in the config follow the paper's order (superior-inferior, anterior-posterior, right-left) and
are converted with :func:`paper_to_array`; safety factors are named by axis (``si``, ``ap``, ``rl``).

- Cord model: the resampled T2w cropped or zero-padded to one patch (paper 512x256x32) at the centre
  of the field of view, in training and at inference (:func:`cord_network_input`).
- Tumor model: the cord's bounding box grown by the safety factor (ivadomed: x1.2 superior-inferior,
  x1.2 anterior-posterior, x1.0 right-left); where the box is smaller than a patch, the real image
  around it is taken, up to one patch (ivadomed's ``max(box, patch)``), kept inside the image; only
  where the image itself is smaller than a patch is it zero-padded (:func:`tumor_region`). The
  single-step baseline uses the whole image through the same function. Channels T2w, T1w; without a
  T1w its channel is zeros, the mean of a z-scored image, as ``training.tumor.modality_dropout``
  shows it in training. Each channel is z-scored over that region (``normalization: crop``): ivadomed
  applies NormalizeInstance after its ROI crop, to the whole cropped volume before cutting patches,
  in training and at inference; model folders from before this version were trained on the
  whole-image z-score (``image``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .classes import CLASSES  # noqa: F401 (re-exported: the tumor model's outputs)

PUBLISHED_SAFETY = {"si": 1.2, "ap": 1.2, "rl": 1.0}


def paper_to_array(size_si_ap_rl) -> tuple[int, int, int]:
    si, ap, rl = size_si_ap_rl
    return int(rl), int(ap), int(si)


def safety_to_array(safety: Mapping[str, float]) -> tuple[float, float, float]:
    """``{si, ap, rl}`` factors in array order (x=rl, y=ap, z=si)."""
    missing = {"si", "ap", "rl"} - set(safety)
    if missing:
        raise ValueError(f"safety factor needs the axes si, ap and rl; missing {sorted(missing)}")
    return float(safety["rl"]), float(safety["ap"]), float(safety["si"])


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
    """Inverse of :func:`center_crop_pad` (and of :func:`extract`) for the last three axes (outside
    = 0)."""
    out = np.zeros(a.shape[:-3] + tuple(shape), dtype=a.dtype)
    src, dst = [], []
    for s, n, m in zip(starts, shape, a.shape[-3:]):
        lo = max(s, 0)
        hi = min(s + m, n)
        dst.append(slice(lo, hi))
        src.append(slice(lo - s, hi - s))
    out[(...,) + tuple(dst)] = a[(...,) + tuple(src)]
    return out


def cord_bbox(mask: np.ndarray, safety_xyz=(1.0, 1.2, 1.2)) -> tuple[slice, ...] | None:
    """Bounding box of ``mask`` grown about its centre by ``safety_xyz`` (array order; see
    :func:`safety_to_array`), clipped to the image. None when the mask is empty."""
    idx = np.argwhere(mask > 0)
    if not len(idx):
        return None
    lo, hi = idx.min(0), idx.max(0) + 1
    center, ext = (lo + hi) / 2, (hi - lo) * np.asarray(safety_xyz, dtype=float)
    lo = np.maximum(np.floor(center - ext / 2 + 1e-9).astype(int), 0)
    hi = np.minimum(np.ceil(center + ext / 2 - 1e-9).astype(int), mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def tumor_region(box: tuple[slice, ...] | None, shape, patch) -> tuple[int, ...]:
    """Start (in the image; negative = zero padding before it) of the tumor model's input of size
    ``max(box, patch)`` per axis: centred on the box, shifted to stay inside the image, and centred
    on the image (zero-padded) where the image is smaller. ``box`` None = the whole image. Returns
    the starts; the size is :func:`tumor_region_size`."""
    box = box or tuple(slice(0, n) for n in shape)
    starts = []
    for b, n, p in zip(box, shape, patch):
        size = max(b.stop - b.start, int(p))
        if size >= n:
            starts.append(-((size - n) // 2))
        else:
            lo = int(np.floor((b.start + b.stop) / 2 - size / 2))
            starts.append(int(np.clip(lo, 0, n - size)))
    return tuple(starts)


def tumor_region_size(box: tuple[slice, ...] | None, shape, patch) -> tuple[int, ...]:
    box = box or tuple(slice(0, n) for n in shape)
    return tuple(max(b.stop - b.start, int(p)) for b, p in zip(box, patch))


def extract(a: np.ndarray, starts, size) -> np.ndarray:
    """The last three axes of ``a`` from ``starts`` over ``size``, zero outside the image."""
    out = np.zeros(a.shape[:-3] + tuple(size), dtype=a.dtype)
    src, dst = [], []
    for s, m, n in zip(starts, size, a.shape[-3:]):
        lo, hi = max(s, 0), min(s + m, n)
        src.append(slice(lo, hi))
        dst.append(slice(lo - s, hi - s))
    out[(...,) + tuple(dst)] = a[(...,) + tuple(src)]
    return out


def cord_network_input(t2w: np.ndarray, patch_xyz) -> tuple[np.ndarray, tuple[int, ...]]:
    """(1, *patch) float32 input of the cord model and the starts to map its output back."""
    return center_crop_pad(np.asarray(t2w, np.float32)[None], patch_xyz)


NORMALIZATIONS = ("crop", "image")  # the tumor model's input z-score: over its region (ivadomed), or the image


def tumor_network_input(t2w: np.ndarray, t1w: np.ndarray | None, crop_mask: np.ndarray | None, safety_xyz,
                        patch_xyz, normalization: str = "crop"
                        ) -> tuple[np.ndarray, tuple[int, ...], tuple[slice, ...] | None]:
    """(2, *size) float32 input of the tumor model (channels T2w, T1w: the published order), its
    starts in the image, and the grown cord box (None = the whole image: no cord, or single step).
    ``t1w`` None (no T1w): that channel is zeros. ``normalization`` crop: each channel z-scored over
    the region's voxels inside the image (zero padding, where the image is smaller than a patch, stays
    0); image: as given (the inputs are z-scored over the whole image)."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, not {normalization!r}")
    shape = t2w.shape
    if t1w is None:
        t1w = np.zeros(shape, np.float32)
    box = cord_bbox(crop_mask, safety_xyz) if crop_mask is not None else None
    starts = tumor_region(box, shape, patch_xyz)
    size = tumor_region_size(box, shape, patch_xyz)
    x = extract(np.stack([t2w, t1w]).astype(np.float32, copy=False), starts, size)
    if normalization == "crop":
        inside = tuple(slice(max(-s, 0), min(n - s, m)) for s, m, n in zip(starts, size, shape))
        for c in range(len(x)):
            region = x[(c,) + inside]
            sd = float(region.std())
            region -= float(region.mean())  # a view: the padding outside stays 0
            if sd > 0:
                region /= sd
    return x, starts, box


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
