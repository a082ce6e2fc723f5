"""World-space affine transforms: conversion to and from ITK/ANTs files, decomposition for
plausibility checks, resampling onto a reference grid, and landmark fits.

Convention used throughout imsct: a 4x4 matrix ``M`` in RAS millimetres maps a point of the fixed
(reference, T2w) scanner space to the moving (T1w) scanner space, i.e. the ITK convention
(``fixed -> moving`` for points, which moves images from moving to fixed). ITK works in LPS, hence
the flips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import polar
from scipy.ndimage import affine_transform
from scipy.spatial.transform import Rotation

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def matrix_from_itk(parameters, fixed_parameters) -> np.ndarray:
    """ITK AffineTransform (LPS, about a centre) -> 4x4 RAS matrix."""
    p = np.asarray(parameters, dtype=float)
    c = np.asarray(fixed_parameters, dtype=float)
    a = p[:9].reshape(3, 3)
    m = np.eye(4)
    m[:3, :3] = a
    m[:3, 3] = p[9:12] + c - a @ c
    return LPS @ m @ LPS


def write_itk(m_ras: np.ndarray, path) -> None:
    """An ITK affine file (``.mat``, what antsApplyTransforms reads) from a 4x4 RAS matrix."""
    from ..io import atomic_path
    from .antslib import write_affine

    with atomic_path(path) as tmp:
        write_affine(tmp, LPS @ np.asarray(m_ras, dtype=float) @ LPS)


def read_itk(path) -> np.ndarray:
    """4x4 RAS matrix of an ITK affine ``.mat`` file (antsRegistration's output)."""
    from .antslib import read_affine

    return matrix_from_itk(*read_affine(path))


@dataclass
class AffineParts:
    rotation_deg: float
    scales: tuple[float, float, float]
    shear: float  # largest off-diagonal term of the symmetric stretch
    displacement_mm: float  # how far the reference point moves

    def to_dict(self) -> dict:
        return {
            "rotation_deg": round(self.rotation_deg, 4),
            "scales": [round(s, 5) for s in self.scales],
            "shear": round(self.shear, 5),
            "displacement_mm": round(self.displacement_mm, 4),
        }


def decompose(m: np.ndarray, center: np.ndarray) -> AffineParts:
    """Polar decomposition A = R S: rotation angle of R, principal stretches and shear of S, and the
    displacement of ``center`` (mm), which unlike the raw translation does not depend on the origin."""
    a = np.asarray(m)[:3, :3]
    r, s = polar(a)
    if np.linalg.det(r) < 0:  # reflection: implausible for a patient, report it as a huge rotation
        return AffineParts(180.0, tuple(np.linalg.eigvalsh(s)), 1.0, float("inf"))
    stretches = np.linalg.eigvalsh(s)
    off = s - np.diag(np.diag(s))
    moved = a @ center + np.asarray(m)[:3, 3]
    return AffineParts(
        float(np.rad2deg(Rotation.from_matrix(r).magnitude())),
        tuple(float(x) for x in stretches),
        float(np.abs(off).max()),
        float(np.linalg.norm(moved - center)),
    )


def resample_to(moving: np.ndarray, moving_affine: np.ndarray, ref_shape, ref_affine: np.ndarray,
                m_ras: np.ndarray | None = None, order: int = 1, cval: float = 0.0) -> np.ndarray:
    """Sample ``moving`` on the reference grid, through ``m_ras`` (fixed -> moving points; identity =
    scanner alignment). order 1 = linear for images, 0 = nearest for labels."""
    m = np.eye(4) if m_ras is None else np.asarray(m_ras)
    vox = np.linalg.inv(moving_affine) @ m @ ref_affine
    return affine_transform(np.asarray(moving, dtype=np.float32), vox[:3, :3], vox[:3, 3],
                            output_shape=tuple(ref_shape[:3]), order=order, mode="constant", cval=cval)


def point_labels(data: np.ndarray, affine: np.ndarray) -> dict[int, np.ndarray]:
    """World (RAS mm) position of each nonzero label value (centroid of its voxels)."""
    out = {}
    values = np.unique(data[data > 0]).astype(int)
    for v in values:
        ijk = np.argwhere(data == v).mean(axis=0)
        out[int(v)] = affine[:3, :3] @ ijk + affine[:3, 3]
    return out


def landmark_transform(fixed_pts: dict[int, np.ndarray], moving_pts: dict[int, np.ndarray], prior_weight: float = 0.05):
    """Fit fixed -> moving from landmarks with the same index. Three or more shared landmarks give a
    rigid fit (weighted Kabsch, scipy's ``align_vectors``); one or two a translation.

    Disc landmarks lie along one curve, so the roll about that curve is barely determined by them
    (a plain Kabsch fit returned 35-70 deg rolls on phantoms whose true rotation was < 5 deg). Each
    landmark therefore also gets two low-weight pseudo-landmarks 10 mm to its side (right, anterior)
    that the prior "no rotation" maps unchanged: they decide only what the real landmarks leave
    open. The affine part comes from the intensity refinement that follows, since the discs are
    nearly coplanar too. Returns (matrix, kind, shared indices) or (None, reason, [])."""
    shared = sorted(set(fixed_pts) & set(moving_pts))
    if not shared:
        return None, "no shared disc labels", []
    f = np.array([fixed_pts[k] for k in shared])
    m = np.array([moving_pts[k] for k in shared])
    out = np.eye(4)
    if len(shared) >= 3:
        fc, mc = f.mean(axis=0), m.mean(axis=0)
        fr, mr = f - fc, m - mc
        side = [np.array([10.0, 0, 0]), np.array([0, 10.0, 0])]
        a = np.concatenate([mr] + [mr + d for d in side])
        b = np.concatenate([fr] + [fr + d for d in side])
        w = np.concatenate([np.ones(len(f))] + [np.full(len(f), prior_weight)] * 2)
        rot, _ = Rotation.align_vectors(a, b, weights=w)
        out[:3, :3] = rot.as_matrix()
        out[:3, 3] = mc - out[:3, :3] @ fc
        return out, "rigid", shared
    out[:3, 3] = (m - f).mean(axis=0)
    return out, "translation", shared
