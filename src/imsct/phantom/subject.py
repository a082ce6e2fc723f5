"""One synthetic subject: anatomy, lesions, two acquisitions and their labels, all in memory."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..classes import LESIONS
from .acquisition import BLOCK, ORIENTATIONS, SIZES, acquire, draw_block_grid, draw_grid, draw_motion, reorient
from .anatomy import VERTEBRAE, Anatomy, draw_anatomy
from .lesions import draw_lesions, expand_cord, lesion_dicts
from .plan import SubjectSpec
from .render import Grid, render, research_t1_lut, research_t2_lut, tissue_luts


@dataclass
class SubjectData:
    spec: SubjectSpec
    t2w: np.ndarray
    t2w_affine: np.ndarray
    t1w: np.ndarray
    t1w_affine: np.ndarray
    labels: dict[str, np.ndarray]  # on the T2w grid: tumor, edema, cavity, centerline, discs
    t1w_discs: np.ndarray
    truth: dict = field(default_factory=dict)
    # Not written: the tissue class at each voxel centre (same grids) and the drawn anatomy, for
    # tests that check contrasts and geometry against the truth.
    t2w_tissue: np.ndarray | None = None
    t1w_tissue: np.ndarray | None = None
    anatomy: Anatomy | None = None


def _disc_points(anat: Anatomy) -> dict[int, np.ndarray]:
    """Posterior tip of each disc (patient mm), keyed by the SCT disc value (C2/C3 = 3 ... L5/S1 = 25)."""
    pts = {}
    for k in range(1, len(VERTEBRAE) - 1):
        zk = anat.disc_mid(k)
        i = anat.idx(zk)
        n0 = anat.canal_off[i] + anat.canal_ry[i] + 0.8
        dy = n0 / anat.cos_t[i]
        pts[k + 2] = np.array([anat.cx[i], anat.cy[i] + dy, zk - dy * anat.sin_t[i]], dtype=float)
    return pts


def _point_label_volume(shape, grid: Grid, points: dict[int, np.ndarray]) -> np.ndarray:
    vol = np.zeros(shape, np.uint8)
    inv = np.linalg.inv(grid.affine)
    for value, p in points.items():
        ijk = np.rint(inv[:3, :3] @ p + inv[:3, 3]).astype(int)
        if np.all(ijk >= 0) and np.all(ijk < np.asarray(shape)):
            vol[tuple(ijk)] = value
    return vol


def _value_counts(vol: np.ndarray) -> dict[int, int]:
    """Voxel count of each nonzero value of a sparse label volume."""
    flat = vol.ravel(order="K")
    values, counts = np.unique(flat[flat != 0], return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def _centerline(anat: Anatomy, grid: Grid) -> np.ndarray:
    """One voxel per superior-inferior row, at the cord centre (the canal centre below the conus)."""
    vol = np.zeros(grid.shape, np.uint8)
    z = grid.axis(2)
    it = anat.idx(z)
    i = np.rint((anat.cx[it] - grid.origin[0]) / grid.spacing[0]).astype(int)
    j = np.rint((anat.cy[it] - grid.origin[1]) / grid.spacing[1]).astype(int)
    ok = (i >= 0) & (i < grid.shape[0]) & (j >= 0) & (j < grid.shape[1])
    vol[i[ok], j[ok], np.nonzero(ok)[0]] = 1
    return vol


def _exclusive_labels(frac: dict[str, np.ndarray], offset=(0, 0, 0)) -> dict[str, np.ndarray]:
    """Each voxel takes the class (or background) covering most of it; computed only where some
    class is present, which is a small part of the image. With few samples per voxel, half-covered
    voxels are common (up to as many as the labelled ones): they go to the class on one colour of a
    3-D checkerboard and to the background on the other, so labels neither shrink nor grow lesions.
    ``offset``: index of the first voxel when ``frac`` is a block of the grid."""
    labels = {c: np.zeros(frac[c].shape, np.uint8) for c in LESIONS}
    total = sum(frac[c] for c in LESIONS)
    where = np.nonzero(total > 0)
    if where[0].size:
        parity = (sum(w + o for w, o in zip(where, offset)) % 2).astype(np.float32)
        stack = np.stack([1 - total[where] + 1e-4 * (parity - 0.5)] + [frac[c][where] for c in LESIONS])
        winner = np.argmax(stack, axis=0)
        for k, c in enumerate(LESIONS):
            labels[c][where] = winner == k + 1
    return labels


@dataclass
class Drawn:
    """Everything drawn for a subject before rendering; the generator is left where rendering starts."""

    rng: np.random.Generator
    anat: Anatomy
    lesions: list
    look: object
    lesion_info: dict
    g2: Grid
    g1: Grid
    motion: object
    luts: tuple


def draw_subject(spec: SubjectSpec, seed: int, size: str = "full") -> Drawn:
    rng = np.random.default_rng([seed, spec.index])
    anat = draw_anatomy(rng, spec.age, spec.sex)
    # a 3-D research block is the same at both sizes; its lesions fit it with normal cord around
    block = spec.acquisition == "block"
    gspec, grid_fn = (BLOCK, draw_block_grid) if block else (SIZES[size], draw_grid)
    lesions, look, info = draw_lesions(
        rng, anat, spec.tumor_type, spec.tumor_region, spec.tumor_grade, spec.has_edema, spec.has_cavity,
        spec.volume_quantiles, gspec.max_lesion_extent, narrow=spec.narrow)
    expand_cord(anat, lesions)
    extents = [les.zrange() for les in lesions]
    cover = (min(e[0] for e in extents), max(e[1] for e in extents))
    z_lo, z_hi = anat.body_bottom[-1] + 30, 35.0

    def cord_xy(zr):
        it = anat.idx(np.linspace(zr[0], zr[1], 32))
        return float(anat.cx[it].mean()), float(anat.cy[it].mean()), float(anat.post_depth[it].max())

    g2 = grid_fn(rng, gspec, z_lo, z_hi, cover, cord_xy)
    g1 = grid_fn(rng, gspec, z_lo, z_hi, cover, cord_xy, center_z=g2.origin[2] + g2.spacing[2] * (g2.shape[2] - 1) / 2)
    center = g2.origin + g2.spacing * (np.asarray(g2.shape) - 1) / 2
    motion = draw_motion(rng, center, spec.large_motion)
    luts = tissue_luts(rng, look, spec.age)
    if block:
        lut2 = research_t2_lut(rng, luts[0], BLOCK.t2_gamma, BLOCK.t2_background, BLOCK.t2_soft_to_muscle)
        # its own stream, so that the T1w table is all it changes (the T2w and everything drawn after
        # it are the same bytes as with the clinical T1w table)
        lut1 = research_t1_lut(np.random.default_rng([seed, spec.index, 4]), luts[1], BLOCK.t1_background,
                               BLOCK.t1_fat)
        luts = (lut2, lut1, *luts[2:])
    if spec.contrast_power != (1.0, 1.0):  # drawn in the plan (its own stream): nothing else changes
        w2, w1 = spec.contrast_power
        luts = (luts[0] ** np.float32(w2), luts[1] ** np.float32(w1), *luts[2:])
    return Drawn(rng, anat, lesions, look, info, g2, g1, motion, luts)


def _lesion_window(anat: Anatomy, lesions, grid: Grid) -> tuple[slice, slice, slice] | None:
    """Voxel block of ``grid`` holding every lesion: their z rows, and the expanded cord's extent."""
    lo = min(les.zrange()[0] for les in lesions)
    hi = max(les.zrange()[1] for les in lesions)
    k0 = int(np.floor((lo - grid.origin[2]) / grid.spacing[2])) - 1
    k1 = int(np.ceil((hi - grid.origin[2]) / grid.spacing[2])) + 2
    k0, k1 = max(k0, 0), min(k1, grid.shape[2])
    if k1 <= k0:
        return None
    it = anat.idx(grid.axis(2)[k0:k1])
    r = np.maximum(anat.cord_rx[it], anat.cord_ry[it] / np.maximum(anat.cos_t[it], 0.3)) + 1.0
    x0 = int(np.floor((np.min(anat.cx[it] - r) - grid.origin[0]) / grid.spacing[0])) - 1
    x1 = int(np.ceil((np.max(anat.cx[it] + r) - grid.origin[0]) / grid.spacing[0])) + 2
    y0 = int(np.floor((np.min(anat.cy[it] - r) - grid.origin[1]) / grid.spacing[1])) - 1
    y1 = int(np.ceil((np.max(anat.cy[it] + r) - grid.origin[1]) / grid.spacing[1])) + 2
    return slice(max(x0, 0), min(x1, grid.shape[0])), slice(max(y0, 0), min(y1, grid.shape[1])), slice(k0, k1)


def realised_volumes(spec: SubjectSpec, seed: int, size: str = "full") -> dict:
    """The class volumes (cm3) that :func:`make_subject` writes into the masks, without rendering the
    images: the same draws, with the labels rendered only in the block around the lesions. Also
    returns the drawn and designed volumes and the grade (for the Table 2 benchmark)."""
    d = draw_subject(spec, seed, size)
    lut2, _, tex = d.luts
    window = _lesion_window(d.anat, d.lesions, d.g2)
    vols = dict.fromkeys(LESIONS, 0.0)
    if window is not None:
        _, frac, _ = render(d.anat, d.lesions, d.g2, lut2, tex, d.look.enhancing_fraction, d.look.hemosiderin_cap,
                            d.rng, window=window, with_image=False)
        labels = _exclusive_labels(frac, tuple(w.start for w in window))
        voxel_mm3 = float(np.prod(d.g2.spacing))
        vols = {c: round(float(labels[c].sum()) * voxel_mm3 / 1000, 4) for c in LESIONS}
    return {"volumes_cm3": vols, **d.lesion_info}


def make_subject(spec: SubjectSpec, seed: int, size: str = "full") -> SubjectData:
    d = draw_subject(spec, seed, size)
    rng, anat, lesions, look, g2, g1, motion = d.rng, d.anat, d.lesions, d.look, d.g2, d.g1, d.motion
    lut2, lut1, tex = d.luts

    img2, frac, tis2 = render(anat, lesions, g2, lut2, tex, look.enhancing_fraction, look.hemosiderin_cap, rng)
    img1, _, tis1 = render(anat, lesions, g1, lut1, tex, look.enhancing_fraction, look.hemosiderin_cap, rng,
                     with_labels=False)
    snr = rng.uniform(15, 40)
    t2 = acquire(rng, img2, snr, rng.uniform(0.08, 0.25))
    t1 = acquire(rng, img1, snr * rng.uniform(0.7, 1.2), rng.uniform(0.08, 0.25))

    # Mutually exclusive class labels: each voxel takes the class (or background) covering most of it.
    labels = _exclusive_labels(frac)
    labels["centerline"] = _centerline(anat, g2)
    discs = _disc_points(anat)
    labels["discs"] = _point_label_volume(g2.shape, g2, discs)
    t1_discs = _point_label_volume(g1.shape, g1, discs)

    ax2 = ORIENTATIONS[rng.integers(len(ORIENTATIONS))]
    ax1 = ORIENTATIONS[rng.integers(len(ORIENTATIONS))]
    t2, aff2 = reorient(t2, g2.affine, ax2)
    labels = {k: reorient(v, g2.affine, ax2)[0] for k, v in labels.items()}
    t1, aff1_patient = reorient(t1, g1.affine, ax1)
    t1_discs = reorient(t1_discs, g1.affine, ax1)[0]
    tis2 = reorient(tis2, g2.affine, ax2)[0]
    tis1 = reorient(tis1, g1.affine, ax1)[0]
    # The T1w slices were prescribed on the patient as it lay during the T1w: its true scanner
    # header is the motion applied to the patient-frame grid.
    aff1 = motion.matrix @ aff1_patient

    voxel_mm3 = float(np.prod(g2.spacing))
    in_t1 = _value_counts(t1_discs)
    in_fov = _value_counts(labels["discs"])
    truth = {
        "participant_id": spec.participant_id,
        "tumor_type": spec.tumor_type,
        "tumor_region": spec.tumor_region,
        "size": size,
        "acquisition": spec.acquisition,
        "seed": seed,
        "motion": motion.to_dict(),
        "tumor_grade": spec.tumor_grade,
        "volumes_cm3": {c: round(float(np.count_nonzero(labels[c])) * voxel_mm3 / 1000, 4) for c in LESIONS},
        "lesion_model": {k: v for k, v in d.lesion_info.items() if k != "tumor_grade"},
        "lesions": lesion_dicts(lesions),
        "appearance": {
            "t2": round(look.t2, 3),
            "t1": round(look.t1, 3),
            "t1_enhancing": round(look.t1_enhancing, 3),
            "enhancing_fraction": round(look.enhancing_fraction, 3),
            "hemosiderin_cap": look.hemosiderin_cap,
            "contrast_power": {"t2w": round(spec.contrast_power[0], 4), "t1w": round(spec.contrast_power[1], 4)},
        },
        "t2w_grid": {"shape": list(t2.shape), "spacing_ras": g2.spacing.round(4).tolist(), "orientation": ax2},
        "t1w_grid": {"shape": list(t1.shape), "spacing_ras": g1.spacing.round(4).tolist(), "orientation": ax1},
        "discs_t2w_world": {str(k): np.round(p, 3).tolist() for k, p in discs.items() if k in in_fov},
        "discs_t1w_world": {
            str(k): np.round(motion.matrix[:3, :3] @ p + motion.matrix[:3, 3], 3).tolist()
            for k, p in discs.items() if k in in_t1
        },
        "snr": round(snr, 2),
        "z_conus": round(anat.z_conus, 2),
    }
    return SubjectData(spec, t2, aff2, t1, aff1, labels, t1_discs, truth, tis2, tis1, anat)
