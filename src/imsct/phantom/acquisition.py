"""Acquisition model: per-subject sagittal grids (or 3-D research blocks), patient motion between the
scans, bias field, Rician noise, intensity scaling and storage orientation."""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy.spatial.transform import Rotation

from .render import Grid

# Storage orientations seen in sagittal spine data (dcm2niix and friends write several).
ORIENTATIONS = ("RAS", "LAS", "PIR", "ASR", "RPI", "LPI", "PSR", "AIL", "SPR")


@dataclass
class GridSpec:
    fov_si: tuple[float, float]
    inplane: tuple[float, float]
    thickness: tuple[float, float]
    coverage_rl: tuple[float, float]
    ap_ratio: tuple[float, float]
    ap_min: float
    ap_max: float
    max_matrix: int
    margin: float = 5.0  # lesion-free field of view (mm) kept above and below the lesions
    max_lesion_extent: float | None = None  # lesion complexes longer than this are shrunk along z


SIZES = {
    # Paper section 2.1: in-plane 0.34-1.33 mm, slices 1.5-5.2 mm; FOV 150-450 mm superior-inferior.
    "full": GridSpec((150, 450), (0.34, 1.33), (1.5, 5.2), (40, 60), (0.5, 0.62), 140, 260, 640),
    # Tests and the demo: same anatomy, shorter field of view, coarser grid; lesions shrunk along z to
    # at most 92 mm so that >= 16 mm of normal cord shows above and below them (a network trained on
    # these must see normal cord to learn the contrast against).
    "small": GridSpec((96, 128), (0.9, 1.3), (2.0, 3.2), (30, 36), (0.6, 0.75), 72, 96, 160, 16.0, 92.0),
}


def draw_grid(rng: np.random.Generator, spec: GridSpec, z_lo: float, z_hi: float,
              cover: tuple[float, float], cord_xy: callable, center_z: float | None = None) -> Grid:
    """A sagittal grid whose superior-inferior extent lies inside [z_lo, z_hi] and covers the lesion
    extent ``cover`` (low, high) with ``spec.margin`` mm to spare above and below when the size allows
    it, as a radiologist would prescribe.

    With ``center_z`` (the other contrast's centre), the field of view is centred within 15 % of its
    length of it instead: both sagittal series of one examination cover the same region.
    ``cord_xy(z_range)`` returns the mean cord (x, y) and the deepest skin-to-cord distance over that
    range, used to place the field of view.
    """
    c_lo, c_hi = cover
    m = spec.margin
    fov = max(rng.uniform(*spec.fov_si), min(c_hi - c_lo + 2 * m + 10, spec.fov_si[1]))
    # In-plane resolution and matrix: resolution drawn so the matrix stays realistic (<= max_matrix).
    r_lo = max(spec.inplane[0], fov / spec.max_matrix)
    r = rng.uniform(r_lo, max(r_lo, spec.inplane[1]))
    fov = min(fov, z_hi - z_lo)
    nz = max(16, int(round(fov / r)))
    fov = nz * r
    if fov >= c_hi - c_lo + 2 * m:
        lo, hi = max(z_lo, c_hi + m - fov), min(z_hi - fov, c_lo - m)
    else:  # lesion about as long as the field of view or longer: centre on a random part of it
        a, b = sorted((c_lo + fov / 2, c_hi - fov / 2))
        lo = hi = rng.uniform(a, b) - fov / 2
    z_start = rng.uniform(lo, hi) if hi > lo else float(np.clip(lo, z_lo, z_hi - fov))
    if center_z is not None:
        z_start = float(np.clip(center_z + rng.uniform(-0.15, 0.15) * fov - fov / 2, z_lo, z_hi - fov))
    mx, my, back = cord_xy((z_start, z_start + fov))
    fov_ap = float(np.clip(fov * rng.uniform(*spec.ap_ratio), spec.ap_min, spec.ap_max))
    ny = max(16, int(round(fov_ap / r)))
    fov_ap = ny * r
    # Posterior edge a little behind the skin of the back when the field of view is large enough.
    y_start = my - min(back + rng.uniform(5, 25), fov_ap * rng.uniform(0.45, 0.6))
    t = rng.uniform(*spec.thickness)
    nx = max(3, int(np.ceil(rng.uniform(*spec.coverage_rl) / t)))
    x_start = mx - (nx - 1) * t / 2 + rng.uniform(-0.25, 0.25) * t
    origin = np.array([x_start, y_start + r / 2, z_start + r / 2])
    return Grid((nx, ny, nz), origin, np.array([t, r, r]))


@dataclass
class BlockSpec:
    """A 3-D isotropic research acquisition around the cord (not in the paper's cohort, section 2.1):
    the kind of field of view of the real pair in ``sct_testing_data`` (T2w 1 mm, 60 x 55 x 52 mm
    antero-posterior x superior-inferior x right-left; T1w 1 mm, 42 x 76 x 77 mm), mostly paraspinal
    muscle around the canal, no subcutaneous fat or air."""

    fov_si: tuple[float, float] = (50.0, 80.0)
    fov_ap: tuple[float, float] = (50.0, 80.0)
    fov_rl: tuple[float, float] = (40.0, 60.0)
    iso: tuple[float, float] = (0.8, 1.0)
    margin: float = 10.0  # normal cord above and below the lesions (as `imsct implant`)
    # Heavier T2 weighting than a clinical sagittal FSE (3-D SPACE/CISS-like): T2w intensities raised to
    # this power, so that everything but fluid darkens. The real T2w: cord/CSF 0.26 and muscle/CSF
    # ~0.07, where the nominal tissue table gives 0.40 and 0.22 (exponents 1.5 and 1.9).
    t2_gamma: tuple[float, float] = (1.3, 2.0)
    # and the tissues outside the dural sac darker still (bone, disc, muscle, fat), soft tissue and bone
    # marrow as dark as muscle (times this): the real T2w's cord is 3.8x its image median, a phantom
    # block's 1.5-2.5x with the exponent alone (soft tissue, a third of a block, at the cord's value)
    t2_background: tuple[float, float] = (0.4, 0.8)
    t2_soft_to_muscle: tuple[float, float] = (1.0, 1.6)
    # A 3-D gradient-echo T1w: the real T1w's cord is 1.58x its image median (mostly muscle) and at its
    # 90th percentile (whole-image z-score 1.3), its brightest 1 % (fat) 1.9x; the clinical table gives
    # cord/muscle 1.38 and fat/muscle 2.3, so a block's cord sat at 0.9-1.6x its median (z -0.1-0.7)
    # and its brightest 1 % at 2.1-3.5x. Tissues outside the dural sac times t1_background, fat and bone
    # marrow times t1_fat on top: cord 1.1-1.9x (z 0.3-1.6), brightest 1 % 1.9-3.1x (6 blocks; the
    # brightest where an enhancing tumor fills much of the block).
    t1_background: tuple[float, float] = (0.75, 0.95)
    t1_fat: tuple[float, float] = (0.7, 0.9)

    @property
    def max_lesion_extent(self) -> float:
        """Lesion complexes are shrunk along z to fit the shortest block with both margins."""
        return self.fov_si[0] - 2 * self.margin


BLOCK = BlockSpec()


def draw_block_grid(rng: np.random.Generator, spec: BlockSpec, z_lo: float, z_hi: float,
                    cover: tuple[float, float], cord_xy: callable, center_z: float | None = None) -> Grid:
    """An isotropic 3-D block centred on the cord in-plane, holding the lesion extent ``cover`` with
    ``spec.margin`` mm of normal cord above and below; with ``center_z`` (the other contrast's
    centre) it is centred within 15 % of its length of it instead. Same conventions as
    :func:`draw_grid`."""
    r = rng.uniform(*spec.iso)
    nz = int(round(rng.uniform(*spec.fov_si) / r))
    fov = nz * r
    c_lo, c_hi = cover
    if center_z is None:
        lo, hi = c_hi + spec.margin - fov, c_lo - spec.margin
        z_start = rng.uniform(lo, hi) if hi > lo else (c_lo + c_hi - fov) / 2
    else:
        z_start = center_z + rng.uniform(-0.15, 0.15) * fov - fov / 2
    z_start = float(np.clip(z_start, z_lo, z_hi - fov))
    mx, my, _ = cord_xy((z_start, z_start + fov))
    ny = int(round(rng.uniform(*spec.fov_ap) / r))
    nx = int(round(rng.uniform(*spec.fov_rl) / r))
    # the cord near the middle of the block, a few millimetres off in both in-plane directions
    y_start = my - ny * r * rng.uniform(0.4, 0.6)
    x_start = mx - (nx - 1) * r / 2 + rng.uniform(-3, 3)
    origin = np.array([x_start, y_start + r / 2, z_start + r / 2])
    return Grid((nx, ny, nz), origin, np.full(3, r))


@dataclass
class Motion:
    """Rigid patient motion between the T2w and the T1w scan, as a 4x4 matrix in scanner mm:
    a point at scanner position p during the T2w is at ``matrix @ p`` during the T1w."""

    matrix: np.ndarray
    rotation_deg: float
    translation_mm: float
    large: bool

    def to_dict(self) -> dict:
        return {
            "t1w_from_t2w_world": np.round(self.matrix, 6).tolist(),
            "rotation_deg": round(self.rotation_deg, 3),
            "translation_mm": round(self.translation_mm, 3),
            "large": self.large,
            "convention": "RAS mm; a point at scanner position p in the T2w session is at M @ p in the T1w session",
        }


def draw_motion(rng: np.random.Generator, center: np.ndarray, large: bool) -> Motion:
    """Up to 5 deg and 10 mm; 'large' motion 20-40 mm and up to 15 deg (intensity registration is
    expected to fail there)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    if large:
        angle, shift = rng.uniform(5, 15), rng.uniform(20, 40)
    else:
        angle, shift = rng.uniform(0, 5), rng.uniform(0, 10)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    rot = Rotation.from_rotvec(np.deg2rad(angle) * axis).as_matrix()
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = center - rot @ center + shift * direction
    return Motion(m, float(angle), float(shift), large)


def bias_field(rng: np.random.Generator, shape: tuple[int, int, int], strength: float) -> np.ndarray:
    """Smooth multiplicative field exp(poly(x) + poly(y) + poly(z)), separable so it costs three
    1-D evaluations and an outer product."""
    factors = []
    for n in shape:
        u = np.linspace(-1, 1, n, dtype=np.float32)
        c = rng.normal(0, strength, 2)
        factors.append(np.exp(c[0] * u + c[1] * (u**2 - 1 / 3)).astype(np.float32))
    return factors[0][:, None, None] * factors[1][None, :, None] * factors[2][None, None, :]


def acquire(rng: np.random.Generator, image: np.ndarray, snr: float, bias: float) -> np.ndarray:
    """Bias field, Rician noise (magnitude of complex Gaussian noise) and an arbitrary scanner scale;
    returns int16 as most scanners store."""
    img = image * bias_field(rng, image.shape, bias)
    bright = img[img > 0.05]
    sigma = np.float32(np.percentile(bright, 95, overwrite_input=True) / snr) if bright.size else np.float32(0.01)
    del bright
    # In place, with the same operations as img + sigma * noise and sqrt(re * re + im * im).
    re = rng.standard_normal(img.shape, dtype=np.float32)
    re *= sigma
    re += img
    del img
    im = rng.standard_normal(re.shape, dtype=np.float32)
    im *= sigma
    re *= re
    im *= im
    re += im
    del im
    mag = np.sqrt(re, out=re)
    scale = rng.uniform(800, 3000) / max(float(np.percentile(mag, 99.5)), 1e-6)
    mag *= scale
    np.rint(mag, out=mag)
    np.clip(mag, 0, 32767, out=mag)
    return mag.astype(np.int16)


def reorient(data: np.ndarray, affine: np.ndarray, axcodes: str) -> tuple[np.ndarray, np.ndarray]:
    """Store a RAS-ordered array in another voxel orientation (same world positions); the result is
    Fortran-ordered, as NIfTI stores voxels."""
    src = nib.orientations.axcodes2ornt(nib.aff2axcodes(affine))
    dst = nib.orientations.axcodes2ornt(tuple(axcodes))
    t = nib.orientations.ornt_transform(src, dst)
    out = nib.orientations.apply_orientation(data, t)
    new_aff = affine @ nib.orientations.inv_ornt_aff(t, data.shape)
    return np.asfortranarray(out), new_aff
