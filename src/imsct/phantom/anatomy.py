"""Procedural spine anatomy in patient coordinates (mm, RAS: x right, y anterior, z superior).

The spine is described along z by tables sampled every 0.25 mm: the cord centerline and its sagittal
tilt, cross-section radii of cord, thecal sac and bony canal, vertebral-body size and body-outline
depths. A second table, indexed by the along-spine coordinate ``s`` (z corrected for the local tilt),
says whether a height belongs to a vertebral body or to a disc, so endplates and discs follow the curve.
z = 0 is the top of C1 (foramen magnum); the spine extends to negative z.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .plan import size_factor

DZ = 0.25  # mm, sampling of the z tables

VERTEBRAE = (
    ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    + [f"T{i}" for i in range(1, 13)]
    + [f"L{i}" for i in range(1, 6)]
    + ["S1"]
)
# Adult male reference heights (mm) of bodies, and of the disc below each body (C1/C2 is a joint).
BODY_H = [10.0, 22.0] + [13.5] * 5 + list(np.linspace(16, 23, 12)) + [26, 27, 28, 28, 27] + [90.0]
DISC_H = [2.0] + [5.0] * 6 + list(np.linspace(4, 6, 11)) + [7.0] + [9, 10, 11, 11, 10]
# Region of each vertebra: 0 cervical, 1 thoracic, 2 lumbar, 3 sacral.
REGION = [0] * 7 + [1] * 12 + [2] * 5 + [3]

# Per-vertebra cross-section reference values (mm), adult: body depth D and half-width W, bony canal
# half-sizes, cord half-sizes (RL, AP), posterior depth of the skin from the cord.
_D = [10] + [15, 15, 15.5, 16, 16.5, 17] + list(np.linspace(18, 29, 12)) + [31, 32, 33, 34, 34] + [30]
_W = [9] + [8.5, 8.5, 9, 9.5, 10, 11] + list(np.linspace(12, 18, 12)) + [20, 21, 22, 23, 24] + [26]
_CANAL_RX = [15, 12.5] + [12.5] * 5 + [9.0] + [8.5] * 10 + [9.5] + [10.5, 11, 11.5, 12, 12.5] + [12]
_CANAL_RY = [11, 9] + [7.5] * 5 + [7.5] * 12 + [9, 9, 9.5, 9.5, 10] + [9]
_CORD_RX = [6.0, 5.8, 6.0, 6.4, 6.5, 6.3, 5.8] + [5.2, 5.0] + [4.8] * 7 + [5.0, 5.4, 5.5] + [4.0, 0, 0, 0, 0] + [0]
_CORD_RY = [4.3, 4.1, 4.0, 4.0, 4.0, 3.9, 3.8] + [3.7, 3.6] + [3.5] * 7 + [3.6, 3.9, 4.0] + [3.5, 0, 0, 0, 0] + [0]
_POST_DEPTH = [62, 60, 58, 56, 55, 55, 57] + list(np.linspace(58, 62, 12)) + [65, 68, 70, 72, 74] + [70]
_SPINOUS_L = [12, 28, 22, 22, 24, 28, 35] + [33] * 12 + [28] * 5 + [15]
_SPINOUS_SLOPE = [0.2] * 7 + [0.5] * 4 + [0.9] * 5 + [0.5] * 3 + [0.15] * 5 + [0.0]


@dataclass
class Anatomy:
    """One subject's spine. Build with :func:`draw_anatomy`; query with table lookups."""

    z0: float  # z of the first table sample (top)
    n: int  # samples
    # Per-z tables (index = (z0 - z) / DZ)
    cx: np.ndarray
    cy: np.ndarray
    cos_t: np.ndarray
    sin_t: np.ndarray
    cord_rx: np.ndarray
    cord_ry: np.ndarray
    sac_rx: np.ndarray
    sac_ry: np.ndarray
    sac_off: np.ndarray  # sac centre relative to the cord centre along n (negative = posterior)
    canal_rx: np.ndarray
    canal_ry: np.ndarray
    canal_off: np.ndarray
    body_d: np.ndarray
    body_w: np.ndarray
    post_depth: np.ndarray
    fat_sc: np.ndarray
    spinous_l: np.ndarray
    spinous_slope: np.ndarray
    region: np.ndarray  # 0 cervical, 1 thoracic, 2 lumbar, 3 sacral, -1 above C1
    # Per-s tables (same indexing): 0 none, 1 body, 2 disc; relative height inside the structure
    # (0 top, 1 bottom) and distance (mm) to its nearest edge.
    kind: np.ndarray
    rel: np.ndarray
    edge: np.ndarray
    level: np.ndarray  # vertebra index (0 = C1) of the body, or of the body above the disc
    # Level geometry
    body_top: np.ndarray
    body_bottom: np.ndarray
    z_conus: float
    lordosis_amp: tuple = field(default=(0.0, 0.0, 0.0))

    def idx(self, z: np.ndarray) -> np.ndarray:
        i = np.rint((self.z0 - np.asarray(z, dtype=np.float32)) / DZ).astype(np.int32)
        return np.clip(i, 0, self.n - 1)

    def disc_mid(self, k: int) -> float:
        """z of the mid-plane of the disc below vertebra index k (0 = C1)."""
        return 0.5 * (self.body_bottom[k] + self.body_top[k + 1])

    def region_bounds(self) -> dict[str, tuple[float, float]]:
        """z ranges (top, bottom) of the cervical, thoracic and lumbar spine."""
        t = self.body_top
        b = self.body_bottom
        return {
            "cervical": (t[0], b[6]),
            "thoracic": (t[7], b[18]),
            "lumbar": (t[19], b[23]),
        }


def draw_anatomy(rng: np.random.Generator, age: float, sex: str) -> Anatomy:
    sf = size_factor(age, sex)
    cross = 0.5 * (1 + sf)  # cross-sections scale less than lengths
    var = lambda n: rng.uniform(0.93, 1.07, n)  # noqa: E731 - per-level variation

    nv = len(VERTEBRAE)
    body_h = np.asarray(BODY_H) * sf * var(nv)
    disc_h = np.asarray(DISC_H) * sf * var(nv - 1)
    degeneration = np.clip((age - 30) / 50, 0, 1)  # older discs are thinner
    disc_h[7:] *= 1 - 0.25 * degeneration * rng.uniform(0, 1, nv - 8)

    top = np.empty(nv)
    bottom = np.empty(nv)
    z = 0.0
    for k in range(nv):
        top[k] = z
        bottom[k] = z - body_h[k]
        z = bottom[k] - (disc_h[k] if k < nv - 1 else 0)
    z_top, z_bottom = 70.0, bottom[-1] - 10
    n = int(np.ceil((z_top - z_bottom) / DZ)) + 1
    zs = z_top - DZ * np.arange(n)
    centers = 0.5 * (top + bottom)

    def per_level(values, scale):
        v = np.asarray(values, dtype=float) * scale
        return np.interp(zs, centers[::-1], v[::-1])

    # Sagittal curve: cervical lordosis (anterior), thoracic kyphosis (posterior), lumbar lordosis.
    def bump(z_from, z_to):
        t = np.clip((z_from - zs) / (z_from - z_to), 0, 1)
        return np.sin(np.pi * t)

    a_c, a_t, a_l = rng.uniform(3, 14), rng.uniform(12, 32), rng.uniform(8, 24)
    cy = a_c * bump(top[1], bottom[6]) - a_t * bump(top[7], bottom[18]) + a_l * bump(top[19], bottom[24])
    cy += rng.uniform(-0.04, 0.04) * zs  # overall tilt on the table
    # Mild scoliosis in the coronal plane; more pronounced in ~10 %.
    amp = rng.uniform(0, 4) if rng.uniform() > 0.1 else rng.uniform(5, 12)
    cx = amp * np.sin(2 * np.pi * zs / rng.uniform(250, 500) + rng.uniform(0, 2 * np.pi))
    cy = gaussian_filter1d(cy, 15 / DZ, mode="nearest")
    cx = gaussian_filter1d(cx, 15 / DZ, mode="nearest")
    slope = np.gradient(cy, -DZ)  # dy/dz with z increasing upward
    theta = np.arctan(slope)

    z_conus = float(bottom[19] - rng.uniform(-10, 25) * sf)  # L1 body to L1/L2 disc
    cord_scale = cross * rng.uniform(0.92, 1.08)
    cord_rx = per_level(_CORD_RX[:19] + [5.0] + [0] * 5, cord_scale)
    cord_ry = per_level(_CORD_RY[:19] + [3.6] + [0] * 5, cord_scale)
    # Brainstem widening above C1 and conus taper to z_conus.
    above = zs > 0
    cord_rx[above] *= 1 + 0.012 * zs[above]
    cord_ry[above] *= 1 + 0.012 * zs[above]
    taper_start = z_conus + 30 * sf
    t = np.clip((zs - z_conus) / (taper_start - z_conus), 0, 1)
    cord_rx *= np.where(zs < taper_start, np.sqrt(t), 1.0)
    cord_ry *= np.where(zs < taper_start, np.sqrt(t), 1.0)
    cord_rx = np.where(zs < z_conus, 0.0, cord_rx)
    cord_ry = np.where(zs < z_conus, 0.0, cord_ry)

    canal_scale = cross * rng.uniform(0.92, 1.1)
    canal_rx = per_level(_CANAL_RX, canal_scale)
    canal_ry = per_level(_CANAL_RY, canal_scale)
    canal_rx[above] *= 1 + 0.02 * zs[above]
    canal_ry[above] *= 1 + 0.02 * zs[above]
    # Epidural margins: thin anteriorly, thicker dorsal fat in the thoracic and lumbar spine.
    region_z = np.interp(zs, centers[::-1], np.asarray(REGION, dtype=float)[::-1])
    post_margin = np.interp(region_z, [0, 1, 2, 3], [1.2, 2.8, 3.5, 3.5])
    sac_rx = canal_rx - 1.5
    sac_ry = canal_ry - 0.5 * (0.8 + post_margin)
    sac_off = -0.5 * (post_margin - 0.8) * np.ones_like(zs)
    canal_off = np.zeros_like(zs)
    # The cord lies in the anterior part of the sac; its centre is the table's origin, so the sac and
    # canal centres sit behind it.
    cord_ant = np.clip(sac_ry - cord_ry - 1.8, 0, 2.0) * (cord_rx > 0)
    sac_off = sac_off - cord_ant
    canal_off = canal_off - cord_ant

    body_d = per_level(_D, cross * rng.uniform(0.92, 1.08))
    body_w = per_level(_W, cross * rng.uniform(0.92, 1.08))
    habitus = rng.uniform(0.9, 1.35)
    post_depth = per_level(_POST_DEPTH, cross * habitus)
    fat_sc = per_level([6] * 7 + [8] * 12 + [14] * 6, habitus**2 * rng.uniform(0.6, 1.3))
    spinous_l = per_level(_SPINOUS_L, cross)
    spinous_slope = per_level(_SPINOUS_SLOPE, 1.0)
    region = np.rint(region_z).astype(np.int8)
    region[above] = -1

    kind = np.zeros(n, dtype=np.int8)
    rel = np.zeros(n, dtype=np.float32)
    edge = np.zeros(n, dtype=np.float32)
    level = np.full(n, -1, dtype=np.int16)
    for k in range(nv):
        sel = (zs <= top[k]) & (zs > bottom[k])
        kind[sel] = 1
        rel[sel] = (top[k] - zs[sel]) / body_h[k]
        edge[sel] = np.minimum(top[k] - zs[sel], zs[sel] - bottom[k])
        level[sel] = k
        if k < nv - 1:
            sel = (zs <= bottom[k]) & (zs > top[k + 1])
            kind[sel] = 2
            rel[sel] = (bottom[k] - zs[sel]) / max(disc_h[k], 1e-3)
            edge[sel] = np.minimum(bottom[k] - zs[sel], zs[sel] - top[k + 1])
            level[sel] = k
    # Clivus above C1: bone, so the skull base closes the anterior column.
    sel = (zs > 3) & (zs < 45)
    kind[sel] = 1
    rel[sel] = 0.5
    edge[sel] = 5
    level[sel] = 0

    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    return Anatomy(
        z0=float(zs[0]),
        n=n,
        cx=f32(cx),
        cy=f32(cy),
        cos_t=f32(np.cos(theta)),
        sin_t=f32(np.sin(theta)),
        cord_rx=f32(cord_rx),
        cord_ry=f32(cord_ry),
        sac_rx=f32(sac_rx),
        sac_ry=f32(sac_ry),
        sac_off=f32(sac_off),
        canal_rx=f32(canal_rx),
        canal_ry=f32(canal_ry),
        canal_off=f32(canal_off),
        body_d=f32(body_d),
        body_w=f32(body_w),
        post_depth=f32(post_depth),
        fat_sc=f32(fat_sc),
        spinous_l=f32(spinous_l),
        spinous_slope=f32(spinous_slope),
        region=region,
        kind=kind,
        rel=rel,
        edge=edge,
        level=level,
        body_top=top,
        body_bottom=bottom,
        z_conus=z_conus,
        lordosis_amp=(a_c, a_t, a_l),
    )
