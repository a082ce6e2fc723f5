"""Resampling to the paper's working grid (section 2.3): 1 mm superior-inferior, 1 mm
anterior-posterior, 2 mm right-left, in one canonical orientation (RAS voxel axes), and back.

The working grid covers the world bounding box of the source image. Images use linear interpolation
(with Gaussian anti-aliasing where the grid is coarser than the source); masks use linear
interpolation of the 0/1 mask thresholded at 0.5, which keeps thin structures better than nearest
neighbour when a 0.4 mm source goes to 2 mm. The source grid is recorded so results go back to the
native T2w grid exactly (same shape and affine).
"""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
from scipy.ndimage import gaussian_filter

from .transforms import resample_to


def canonical_grid(shape, affine, spacing_si_ap_rl=(1.0, 1.0, 2.0)) -> tuple[tuple[int, int, int], np.ndarray]:
    """RAS-aligned grid (voxel axes x = left->right, y = posterior->anterior, z = inferior->superior)
    with the given spacing, covering every voxel centre of the source grid."""
    si, ap, rl = spacing_si_ap_rl
    spacing = np.array([rl, ap, si], dtype=float)
    corners = np.array(list(itertools.product(*[(0, n - 1) for n in shape[:3]])), dtype=float)
    world = corners @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]
    lo, hi = world.min(axis=0), world.max(axis=0)
    n = np.maximum(1, np.floor((hi - lo) / spacing + 1e-6).astype(int) + 1)
    origin = lo + ((hi - lo) - (n - 1) * spacing) / 2  # centre the grid on the source extent
    out = np.diag([*spacing, 1.0])
    out[:3, 3] = origin
    return tuple(int(v) for v in n), out


def _antialias(data: np.ndarray, src_affine, dst_affine) -> np.ndarray:
    src = np.sqrt((np.asarray(src_affine)[:3, :3] ** 2).sum(axis=0))
    # target spacing along each source axis: project the source axis onto the target grid spacings
    dirs = np.asarray(src_affine)[:3, :3] / src
    dst = np.sqrt((np.asarray(dst_affine)[:3, :3] ** 2).sum(axis=0))
    along = np.sqrt(((dirs.T * dst) ** 2).sum(axis=1))
    ratio = along / src
    sigma = np.where(ratio > 1, (ratio - 1) / 2, 0.0)
    return gaussian_filter(data, sigma) if np.any(sigma > 0) else data


def resample_image(data, affine, shape, target_affine, kind: str = "image") -> np.ndarray:
    """``kind``: 'image' (linear, anti-aliased, float32) or 'mask' (linear + 0.5 threshold, uint8)."""
    data = np.asarray(data, dtype=np.float32)
    if kind == "mask":
        out = resample_to((data > 0).astype(np.float32), affine, shape, target_affine, order=1)
        return (out >= 0.5).astype(np.uint8)
    return resample_to(_antialias(data, affine, target_affine), affine, shape, target_affine, order=1)


def to_working_grid(img: nib.Nifti1Image, spacing_si_ap_rl=(1.0, 1.0, 2.0), kind: str = "image",
                    grid: tuple | None = None) -> nib.Nifti1Image:
    """Resample ``img`` to the working grid (its own, or ``grid`` = (shape, affine) shared with the
    T2w so every input of a subject lands on one grid)."""
    shape, aff = grid if grid is not None else canonical_grid(img.shape, img.affine, spacing_si_ap_rl)
    data = resample_image(np.asarray(img.dataobj), img.affine, shape, aff, kind)
    return nib.Nifti1Image(data, aff)


def to_native(data: np.ndarray, grid_affine, native_shape, native_affine, kind: str = "mask") -> np.ndarray:
    """Bring a working-grid result back onto the native grid (shape and affine of the original T2w)."""
    data = np.asarray(data, dtype=np.float32)
    if kind == "mask":
        out = resample_to((data > 0).astype(np.float32), grid_affine, native_shape, native_affine, order=1)
        return (out >= 0.5).astype(np.uint8)
    return resample_to(data, grid_affine, native_shape, native_affine, order=1)


def zscore(data: np.ndarray) -> np.ndarray:
    """Intensity normalisation of the paper (subtract the mean, divide by the standard deviation)."""
    data = np.asarray(data, dtype=np.float32)
    sd = float(data.std())
    return (data - float(data.mean())) / (sd if sd > 0 else 1.0)
