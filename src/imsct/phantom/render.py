"""Render the anatomy and lesions onto a sagittal acquisition grid.

The grid is axis-aligned in patient coordinates (x = slice axis); every sagittal slice is rendered
on a finer in-plane grid (<= 0.9 mm) at several positions across the slice thickness (<= 2 mm apart)
and averaged, which gives partial volume. Each sample gets a tissue class (painter's order, later
structures win), then a contrast-specific intensity from a lookup table modulated by smooth texture.
Vectorised per slice so that a full-size subject renders in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.stats import norm

from .anatomy import Anatomy
from .lesions import Lesion, TumorAppearance

# Tissue classes and their nominal (T2w, gadolinium T1w, texture amplitude).
AIR, SOFT, FAT, MUSCLE, MARROW, CORTEX, ANNULUS, NUCLEUS, EPIFAT, CSF, CORD = range(11)
LIGAMENT, LUNG, VESSEL, BRAIN, EDEMA, CAVITY, TUMOR, TUMOR_ENH, HEMOSIDERIN, POST_BONE = range(11, 21)
N_TISSUES = 21
TISSUE_TABLE = {
    AIR: (0.0, 0.0, 0.0),
    SOFT: (0.40, 0.48, 0.22),
    FAT: (0.80, 0.92, 0.05),
    MUSCLE: (0.22, 0.40, 0.10),
    MARROW: (0.40, 0.66, 0.12),
    CORTEX: (0.06, 0.08, 0.10),
    ANNULUS: (0.16, 0.34, 0.06),
    NUCLEUS: (0.82, 0.38, 0.06),
    EPIFAT: (0.70, 0.85, 0.06),
    CSF: (1.00, 0.10, 0.02),
    CORD: (0.40, 0.55, 0.03),
    LIGAMENT: (0.08, 0.12, 0.05),
    LUNG: (0.04, 0.04, 0.40),
    VESSEL: (0.05, 0.35, 0.05),
    BRAIN: (0.46, 0.55, 0.04),
    EDEMA: (0.76, 0.42, 0.05),  # water: T2 brighter than most solid tumor, below cyst; T1 below cord
    CAVITY: (0.94, 0.14, 0.02),
    TUMOR: (0.65, 0.48, 0.15),
    TUMOR_ENH: (0.70, 0.95, 0.18),
    HEMOSIDERIN: (0.06, 0.30, 0.02),
    POST_BONE: (0.36, 0.60, 0.12),
}
LABEL_TISSUES = {"tumor": (TUMOR, TUMOR_ENH), "edema": (EDEMA,), "cavity": (CAVITY,)}


@dataclass
class Grid:
    """An axis-aligned grid in patient coordinates: voxel (i, j, k) centre = origin + (i, j, k) * spacing,
    axes x (right), y (anterior), z (superior)."""

    shape: tuple[int, int, int]
    origin: np.ndarray
    spacing: np.ndarray

    @property
    def affine(self) -> np.ndarray:
        a = np.diag([*self.spacing, 1.0])
        a[:3, 3] = self.origin
        return a

    def axis(self, d: int) -> np.ndarray:
        return self.origin[d] + self.spacing[d] * np.arange(self.shape[d])


def tissue_luts(rng: np.random.Generator, look: TumorAppearance, age: float):
    """Per-subject intensity tables (T2w, T1w) and texture amplitudes: tissue values vary +-8 %."""
    t2 = np.zeros(N_TISSUES, np.float32)
    t1 = np.zeros(N_TISSUES, np.float32)
    tex = np.zeros(N_TISSUES, np.float32)
    for k, (a, b, c) in TISSUE_TABLE.items():
        t2[k], t1[k], tex[k] = a, b, c
    t2 *= rng.uniform(0.92, 1.08, N_TISSUES).astype(np.float32)
    t1 *= rng.uniform(0.92, 1.08, N_TISSUES).astype(np.float32)
    t2[CSF] = 1.0
    t2[NUCLEUS] *= 1 - 0.45 * np.clip((age - 25) / 50, 0, 1)  # disc desiccation with age
    t2[TUMOR], t1[TUMOR] = look.t2, look.t1
    t2[TUMOR_ENH], t1[TUMOR_ENH] = look.t2 * 1.05, look.t1_enhancing
    return t2, t1, tex


def _texture_fields(rng, shape, step_mm):
    """Four unit-variance smooth random fields (two fine, two coarse); mixing each pair with
    cos/sin of x gives a texture that also varies smoothly across slices."""
    out = []
    for sigma_mm in (1.2, 1.2, 5.0, 5.0):
        f = gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma_mm / step_mm, mode="wrap")
        out.append(f / (f.std() + 1e-6))
    return out


def render(
    anat: Anatomy,
    lesions: list[Lesion],
    grid: Grid,
    lut: np.ndarray,
    tex_amp: np.ndarray,
    enhancing_fraction: float,
    hemosiderin: bool,
    rng: np.random.Generator,
    with_labels: bool = True,
    window: tuple[slice, slice, slice] | None = None,
    with_image: bool = True,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Return the image (float32, grid shape), label fractions per class (if asked) and the tissue
    class at the centre of every voxel (uint8, for tests and QC).

    ``window`` (voxel slices of the grid) renders only that block, with the same random texture and
    so the same values as the whole render there: the cheap way to the label volumes. Without
    ``with_image`` only labels and tissue classes are produced (the image is zeros)."""
    nx, ny, nz = grid.shape
    sx, sy, sz = grid.spacing
    f = max(1, int(np.ceil(max(sy, sz) / 0.9)))  # in-plane supersampling
    nsub = max(1, int(np.ceil(sx / 2.0)))  # samples across the slice thickness
    yf = grid.origin[1] - sy / 2 + (np.arange(ny * f) + 0.5) * sy / f
    zf = grid.origin[2] - sz / 2 + (np.arange(nz * f) + 0.5) * sz / f
    step = min(sy, sz) / f
    fa, fb, ca, cb = _texture_fields(rng, (ny * f, nz * f), step)
    tex_phase = rng.uniform(0, 2 * np.pi, 2)
    xs = grid.axis(0)
    if window is not None:
        wx, wy, wz = (slice(*w.indices(n)[:2]) for w, n in zip(window, grid.shape))
        fy, fz = slice(wy.start * f, wy.stop * f), slice(wz.start * f, wz.stop * f)
        yf, zf, xs = yf[fy], zf[fz], xs[wx]
        fa, fb, ca, cb = (a[fy, fz] for a in (fa, fb, ca, cb))
        nx, ny, nz = len(xs), wy.stop - wy.start, wz.stop - wz.start
    Y = yf.astype(np.float32)[:, None]
    Z = zf.astype(np.float32)[None, :]

    it = anat.idx(zf)
    row = lambda a: a[it][None, :]  # noqa: E731 - per-row (z) parameter, broadcast over y
    cx, cy, cos_t, sin_t = row(anat.cx), row(anat.cy), row(anat.cos_t), row(anat.sin_t)
    cord_rx, cord_ry = row(anat.cord_rx), row(anat.cord_ry)
    sac_rx, sac_ry, sac_off = row(anat.sac_rx), row(anat.sac_ry), row(anat.sac_off)
    can_rx, can_ry, can_off = row(anat.canal_rx), row(anat.canal_ry), row(anat.canal_off)
    body_d, body_w = row(anat.body_d), row(anat.body_w)
    post, fat_sc = -row(anat.post_depth), row(anat.fat_sc)
    sp_len, sp_slope = row(anat.spinous_l), row(anat.spinous_slope)
    region = row(anat.region)
    cerv, thor, lumb, skull = region == 0, region == 1, (region == 2) | (region == 3), region == -1
    has_cord = cord_rx > 0
    nb0 = can_off + can_ry  # anterior wall of the bony canal (= back of the vertebral body)
    nb1 = can_off - can_ry  # posterior wall
    body_c = nb0 + 0.8 + body_d / 2
    front = nb0 + 0.8 + body_d
    inv_w2, inv_d2 = 1 / body_w**2, 4 / body_d**2

    # Lesions only touch their own z columns.
    les_cols = []
    for les in lesions:
        lo, hi = les.zrange()
        cols = np.nonzero((zf >= lo) & (zf <= hi))[0]
        if cols.size:
            les_cols.append((les, slice(cols[0], cols[-1] + 1)))
    # the enhancing part is where a unit-variance texture exceeds the quantile leaving that fraction
    if enhancing_fraction <= 0:
        enh_thr = np.inf  # no enhancement at all (some astrocytomas)
    elif enhancing_fraction >= 1:
        enh_thr = -np.inf
    else:
        enh_thr = float(norm.ppf(1 - enhancing_fraction))

    # Everything that does not depend on x is computed once per grid (2-D over y, z); inside the
    # slice loop only the per-row (1-D over z) terms in dx change.
    dy = Y - cy
    n = dy * cos_t
    s_ax = Z + dy * sin_t
    si = anat.idx(s_ax)
    kind, rel, edge = anat.kind[si], anat.rel[si], anat.edge[si]
    is_body, is_disc = kind == 1, kind == 2
    body_cortex = is_body & (edge < 1.0)
    nucleus_h = is_disc & (rel > 0.18) & (rel < 0.82)
    body_n2 = (n - body_c) ** 2 * inv_d2
    behind = np.clip(nb1 - n, 0, None)
    sp = anat.idx(s_ax + sp_slope * behind)
    kp, relp = anat.kind[sp], anat.rel[sp]
    lam = (n < nb1) & (n > nb1 - 6)
    lam_lig, lam_bone = lam & (kp == 2), lam & (kp == 1) & (relp > 0.1) & (relp < 0.85)
    spin = (n < nb1 - 4) & (n > nb1 - 6 - sp_len)
    spin_bone = spin & (kp == 1) & (relp > 0.15) & (relp < 0.8)
    facet = (n < nb0 - 1) & (n > nb1 - 3)
    facet_bone, facet_lig = facet & is_body, facet & is_disc
    airway = cerv & (n > front + 7) & (n < front + 23)
    neck_fat = (cerv | skull) & (n > front + 48)
    neck_air = (cerv | skull) & (n > front + 53)
    lung = thor & (n > nb1 - 12)
    aorta_x = np.where(lumb, -8.0, -14.0).astype(np.float32)
    aorta_n2 = (thor | lumb) * ((n - front - 11) ** 2) + (~(thor | lumb)) * 1e6
    psoas = lumb & (n > nb0) & (n < front + 12)
    musc_n = n < nb1
    fat_post, air_post = n < post + fat_sc, n < post
    cereb_back = nb1 - 6 - 1.4 * Z
    brain = skull & (Z > 4) & (n < nb1) & (n > cereb_back)
    occiput = skull & (Z > 4) & (n <= cereb_back) & (n > cereb_back - 5)
    can_n2 = (n - can_off) ** 2 / can_ry**2
    sac_n2 = (n - sac_off) ** 2 / sac_ry**2
    cord_n2 = n**2 / np.maximum(cord_ry, 1e-3) ** 2
    inv_can_rx2, inv_sac_rx2 = 1 / can_rx**2, 1 / sac_rx**2
    inv_cord_rx2 = 1 / np.maximum(cord_rx, 1e-3) ** 2
    tex_a = 0.55 * fa + 0.83 * ca
    tex_b = 0.55 * fb + 0.83 * cb
    acc_shape = (ny * f, nz * f)
    if les_cols:
        # One block of columns covering every lesion, aligned to whole native voxels.
        c_lo = (min(cs.start for _, cs in les_cols) // f) * f
        c_hi = -(-max(cs.stop for _, cs in les_cols) // f) * f
        les_cols = [(les, slice(cs.start - c_lo, cs.stop - c_lo)) for les, cs in les_cols]
    else:
        c_lo = c_hi = 0
    lcs = slice(c_lo, c_hi)
    lcs_native = slice(c_lo // f, c_hi // f)
    out_shape = (nx, ny, nz)
    image = np.zeros(out_shape, np.float32)
    tissue = np.zeros(out_shape, np.uint8)
    fractions = {k: np.zeros(out_shape, np.float32) for k in LABEL_TISSUES} if with_labels else {}
    acc = np.empty(acc_shape, np.float32)
    lab_acc = {k: np.zeros((ny * f, c_hi - c_lo), np.float32) for k in fractions}
    for i in range(nx):
        acc[:] = 0
        for a in lab_acc.values():
            a[:] = 0
        for sub in range(nsub):
            x = xs[i] - sx / 2 + (sub + 0.5) * sx / nsub
            wx = 2 * np.pi * x / 37.0
            c, s = np.float32(np.cos(wx + tex_phase[0])), np.float32(np.sin(wx + tex_phase[0]))
            tex = c * tex_a + s * tex_b
            dx = x - cx  # per row
            adx = np.abs(dx)
            dx2 = dx * dx

            lab = np.full(acc_shape, SOFT, np.uint8)
            lab[airway & (adx < 8)] = LUNG
            lab[neck_fat] = FAT
            lab[neck_air] = AIR
            lab[lung & (adx > body_w + 4)] = LUNG
            lab[aorta_n2 + (dx - aorta_x) ** 2 < 100] = VESSEL
            lab[psoas & (adx > body_w - 6) & (adx < body_w + 22)] = MUSCLE
            musc = musc_n & (adx < 48)
            lab[musc] = MUSCLE
            lab[musc & (c * fa + s * fb > 1.7)] = FAT  # intermuscular fat streaks
            lab[fat_post] = FAT
            lab[air_post] = AIR
            e = dx2 * inv_w2 + body_n2
            body = is_body & (e < 1)
            lab[body] = MARROW
            lab[body & ((e > 0.8) | body_cortex)] = CORTEX
            disc = is_disc & (e < 1.08)
            lab[disc] = ANNULUS
            lab[disc & (e < 0.4) & nucleus_h] = NUCLEUS
            lat = adx < can_rx + 5
            lab[lam_lig & lat] = LIGAMENT
            lab[lam_bone & lat] = POST_BONE
            lab[spin & (adx < 1.5)] = LIGAMENT
            lab[spin_bone & (adx < 3.5)] = POST_BONE
            lat = (adx > can_rx - 1) & (adx < can_rx + 9)
            lab[facet_bone & lat] = POST_BONE
            lab[facet_lig & lat] = LIGAMENT
            lab[brain] = BRAIN
            lab[occiput] = CORTEX
            lab[dx2 * inv_can_rx2 + can_n2 < 1] = EPIFAT
            lab[dx2 * inv_sac_rx2 + sac_n2 < 1] = CSF
            in_cord = has_cord & (dx2 * inv_cord_rx2 + cord_n2 < 1)
            lab[in_cord] = CORD
            if les_cols:
                # Lesions (edema first, then cavity, then tumor: the later wins).
                sub_lab = lab[:, lcs]
                sub_in = in_cord[:, lcs]
                sub_tex = tex[:, lcs]
                sub_n = n[:, lcs]
                sub_dx = np.broadcast_to(dx[:, lcs], sub_lab.shape)
                for kind_name in ("edema", "cavity", "tumor"):
                    for les, cs in les_cols:
                        if les.kind != kind_name:
                            continue
                        zc = Z[:, lcs][:, cs]
                        t = np.abs((zc - les.z0) / les.hz) ** les.pz
                        inside = sub_in[:, cs]
                        lab_c = sub_lab[:, cs]
                        if les.kind == "edema":
                            lab_c[inside & (t < 1 + les.lump * sub_tex[:, cs])] = EDEMA
                            continue
                        mod = les.modulation(zc)
                        q = t + ((sub_dx[:, cs] - les.ox) / (les.ax * mod)) ** 2 + (
                            (sub_n[:, cs] - les.oy) / (les.ay * mod)
                        ) ** 2
                        m = inside & (q < 1 + les.lump * sub_tex[:, cs])
                        if les.kind == "cavity":
                            lab_c[m] = CAVITY
                            continue
                        if hemosiderin:
                            cap = inside & (q < 1.35) & (t > 0.55) & ~m & (lab_c == CORD)
                            lab_c[cap] = HEMOSIDERIN
                        lab_c[m] = TUMOR
                        tex2 = (-s * ca + c * cb)[:, lcs][:, cs]
                        lab_c[m & (tex2 > enh_thr)] = TUMOR_ENH
                for name, a in lab_acc.items():
                    tissues = LABEL_TISSUES[name]
                    hit = sub_lab == tissues[0]
                    for t_id in tissues[1:]:
                        hit |= sub_lab == t_id
                    a += hit
            if with_image:
                acc += lut[lab] * (1 + tex_amp[lab] * tex)
            if sub == nsub // 2:
                tissue[i] = lab[f // 2 :: f, f // 2 :: f]
        image[i] = _downsample(acc, f) / nsub
        for name, a in lab_acc.items():
            fractions[name][i, :, lcs_native] = _downsample(a, f) / nsub
    np.clip(image, 0, None, out=image)
    return image, fractions, tissue


def _downsample(a: np.ndarray, f: int) -> np.ndarray:
    """Block sum of f x f fine pixels (partial volume in-plane); identity when f == 1."""
    if f == 1:
        return a
    h, w = a.shape
    return a.reshape(h // f, f, w // f, f).sum(axis=3).sum(axis=1) / (f * f)
