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


# Tissues outside the dural sac, and those a research T2w block shows as dark as muscle
OUTSIDE_DURA = np.setdiff1d(np.arange(N_TISSUES), [AIR, BRAIN, CAVITY, CORD, CSF, EDEMA, HEMOSIDERIN, TUMOR, TUMOR_ENH])
LIKE_MUSCLE = [SOFT, MARROW, POST_BONE]
# and those a 3-D gradient-echo T1w shows less bright than a clinical spin-echo T1w
FATTY = [FAT, EPIFAT, MARROW, POST_BONE]


def research_t2_lut(rng: np.random.Generator, t2: np.ndarray, gamma, background, soft_to_muscle) -> np.ndarray:
    """A heavily T2-weighted 3-D sequence's table from a clinical one (each argument a (low, high)
    range; :class:`~imsct.phantom.acquisition.BlockSpec`): values raised to ``gamma``, tissues outside
    the dural sac times ``background``, soft tissue and marrow at muscle's value times ``soft_to_muscle``."""
    out = t2 ** np.float32(rng.uniform(*gamma))
    out[OUTSIDE_DURA] *= np.float32(rng.uniform(*background))
    out[LIKE_MUSCLE] = out[MUSCLE] * rng.uniform(*soft_to_muscle, len(LIKE_MUSCLE)).astype(np.float32)
    return out


def research_t1_lut(rng: np.random.Generator, t1: np.ndarray, background, fat) -> np.ndarray:
    """A 3-D gradient-echo T1w's table from a clinical spin-echo one (each argument a (low, high)
    range; :class:`~imsct.phantom.acquisition.BlockSpec`): tissues outside the dural sac times
    ``background`` (the cord, CSF and lesions keep their values, so the lesions' contrasts to the cord
    stay the clinical ones), fat and fatty marrow times ``fat`` on top."""
    out = t1.copy()
    out[OUTSIDE_DURA] *= np.float32(rng.uniform(*background))
    out[FATTY] *= rng.uniform(*fat, len(FATTY)).astype(np.float32)
    return out


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

    # Each structure is painted only inside the bounding box of where it can be in any slice (its
    # x-independent part; for the ellipses, x term >= 0 plus a 2-D term, where the 2-D term alone passes
    # the test), cut per slice to the columns (z) its per-row conditions allow. Elementwise the same
    # arithmetic as on the whole plane, so the same values.
    cord_cand = has_cord & (cord_n2 < 1)
    musc_back = musc_n & ~fat_post
    # Intermuscular fat streaks are where c * fa + s * fb > 1.7 with c^2 + s^2 = 1: only where
    # fa^2 + fb^2 > 1.7^2 (less a margin far above rounding), a minority of the muscle.
    streak_r, streak_c = np.nonzero(musc_back & (fa * fa + fb * fb > 2.85))
    streak_fa, streak_fb = fa[streak_r, streak_c], fb[streak_r, streak_c]
    streak_at = streak_r * fa.shape[1] + streak_c  # flat index in the (y, z) plane
    box = {
        "airway": _bbox(airway), "neck_fat": _bbox(neck_fat), "neck_air": _bbox(neck_air),
        "lung": _bbox(lung), "aorta": _bbox(aorta_n2 < 100), "psoas": _bbox(psoas),
        # muscle and its fat streaks only matter where the (static) posterior fat does not cover them
        "musc": _bbox(musc_back), "fat_post": _bbox(fat_post), "air_post": _bbox(air_post),
        "body": _bbox(is_body & (body_n2 < 1)), "disc": _bbox(is_disc & (body_n2 < 1.08)),
        "lam_lig": _bbox(lam_lig), "lam_bone": _bbox(lam_bone), "spin": _bbox(spin),
        "spin_bone": _bbox(spin_bone), "facet_bone": _bbox(facet_bone), "facet_lig": _bbox(facet_lig),
        "brain": _bbox(brain), "occiput": _bbox(occiput), "canal": _bbox(can_n2 < 1),
        "sac": _bbox(sac_n2 < 1), "cord": _bbox(cord_cand),
    }
    if les_cols:
        # One block covering every lesion: their columns, aligned to whole native voxels, and the rows
        # the cord can reach there (lesions lie inside the cord).
        c_lo = (min(cs.start for _, cs in les_cols) // f) * f
        c_hi = -(-max(cs.stop for _, cs in les_cols) // f) * f
        rows = np.flatnonzero(cord_cand[:, c_lo:c_hi].any(axis=1))
        if rows.size:
            r_lo, r_hi = (rows[0] // f) * f, -(-(rows[-1] + 1) // f) * f
            # each lesion's own block inside: its columns, and the rows the cord reaches there
            les_cols, blocks = [], les_cols
            for les, cs in blocks:
                rows = np.flatnonzero(cord_cand[r_lo:r_hi, cs].any(axis=1))
                if rows.size:
                    les_cols.append((les, (slice(rows[0], rows[-1] + 1), slice(cs.start - c_lo, cs.stop - c_lo))))
        else:
            les_cols = []
    if not les_cols:
        c_lo = c_hi = r_lo = r_hi = 0
    lrs, lcs = slice(r_lo, r_hi), slice(c_lo, c_hi)
    lrs_native, lcs_native = slice(r_lo // f, r_hi // f), slice(c_lo // f, c_hi // f)
    out_shape = (nx, ny, nz)
    image = np.zeros(out_shape, np.float32)
    tissue = np.zeros(out_shape, np.uint8)
    fractions = {k: np.zeros(out_shape, np.float32) for k in LABEL_TISSUES} if with_labels else {}
    acc = np.empty(acc_shape, np.float32)
    tex = np.empty(acc_shape, np.float32)
    tmp = np.empty(acc_shape, np.float32)
    lab_acc = {k: np.zeros((r_hi - r_lo, c_hi - c_lo), np.float32) for k in fractions}
    for i in range(nx):
        acc[:] = 0
        for a in lab_acc.values():
            a[:] = 0
        for sub in range(nsub):
            x = xs[i] - sx / 2 + (sub + 0.5) * sx / nsub
            wx = 2 * np.pi * x / 37.0
            c, s = np.float32(np.cos(wx + tex_phase[0])), np.float32(np.sin(wx + tex_phase[0]))
            if with_image:
                np.multiply(c, tex_a, out=tex)
                tex += np.multiply(s, tex_b, out=tmp)
            dx = x - cx  # per row
            adx = np.abs(dx)
            dx2 = dx * dx

            lab = np.full(acc_shape, SOFT, np.uint8)
            # per-row (z) conditions; for the ellipses, the x term alone below the threshold
            airway_x = adx < 8
            _fill(lab, box["airway"], LUNG, airway, airway_x)
            _fill(lab, box["neck_fat"], FAT, neck_fat)
            _fill(lab, box["neck_air"], AIR, neck_air)
            lung_x = adx > body_w + 4
            _fill(lab, box["lung"], LUNG, lung, lung_x)
            _fill_below(lab, box["aorta"], VESSEL, aorta_n2, (dx - aorta_x) ** 2, 100)
            psoas_x = (adx > body_w - 6) & (adx < body_w + 22)
            _fill(lab, box["psoas"], MUSCLE, psoas, psoas_x)
            musc_x = adx < 48
            _fill(lab, box["musc"], MUSCLE, musc_n, musc_x)
            streak = c * streak_fa + s * streak_fb > 1.7  # intermuscular fat streaks
            if not musc_x.all():
                streak &= musc_x[0, streak_c]
            lab.reshape(-1)[streak_at[streak]] = FAT
            _fill(lab, box["fat_post"], FAT, fat_post)
            _fill(lab, box["air_post"], AIR, air_post)
            body_x = dx2 * inv_w2
            blk = _narrow(box["body"], body_x < 1)
            if blk is not None:
                r, k = blk
                e = body_x[:, k] + body_n2[r, k]
                body = is_body[r, k] & (e < 1)
                w = lab[r, k]
                np.copyto(w, MARROW, where=body)
                np.copyto(w, CORTEX, where=body & ((e > 0.8) | body_cortex[r, k]))
            blk = _narrow(box["disc"], body_x < 1.08)
            if blk is not None:
                r, k = blk
                e = body_x[:, k] + body_n2[r, k]
                disc = is_disc[r, k] & (e < 1.08)
                w = lab[r, k]
                np.copyto(w, ANNULUS, where=disc)
                np.copyto(w, NUCLEUS, where=disc & (e < 0.4) & nucleus_h[r, k])
            lat = adx < can_rx + 5
            _fill(lab, box["lam_lig"], LIGAMENT, lam_lig, lat)
            _fill(lab, box["lam_bone"], POST_BONE, lam_bone, lat)
            _fill(lab, box["spin"], LIGAMENT, spin, adx < 1.5)
            _fill(lab, box["spin_bone"], POST_BONE, spin_bone, adx < 3.5)
            lat = (adx > can_rx - 1) & (adx < can_rx + 9)
            _fill(lab, box["facet_bone"], POST_BONE, facet_bone, lat)
            _fill(lab, box["facet_lig"], LIGAMENT, facet_lig, lat)
            _fill(lab, box["brain"], BRAIN, brain)
            _fill(lab, box["occiput"], CORTEX, occiput)
            cord_x = dx2 * inv_cord_rx2
            _fill_below(lab, box["canal"], EPIFAT, can_n2, dx2 * inv_can_rx2, 1)
            _fill_below(lab, box["sac"], CSF, sac_n2, dx2 * inv_sac_rx2, 1)
            _fill_below(lab, box["cord"], CORD, cord_n2, cord_x, 1, has_cord)
            if les_cols:
                # Lesions (edema first, then cavity, then tumor: the later wins).
                sub_lab = lab[lrs, lcs]
                sub_in = has_cord[:, lcs] & (cord_x[:, lcs] + cord_n2[lrs, lcs] < 1)
                sub_tex = tex[lrs, lcs] if with_image else c * tex_a[lrs, lcs] + s * tex_b[lrs, lcs]
                sub_n = n[lrs, lcs]
                sub_dx = np.broadcast_to(dx[:, lcs], sub_lab.shape)
                for kind_name in ("edema", "cavity", "tumor"):
                    for les, (rs, cs) in les_cols:
                        if les.kind != kind_name:
                            continue
                        zc = Z[:, lcs][:, cs]
                        t = np.abs((zc - les.z0) / les.hz) ** les.pz
                        inside = sub_in[rs, cs]
                        lab_c = sub_lab[rs, cs]
                        if les.kind == "edema":
                            lab_c[inside & (t < 1 + les.lump * sub_tex[rs, cs])] = EDEMA
                            continue
                        mod = les.modulation(zc)
                        q = t + ((sub_dx[rs, cs] - les.ox) / (les.ax * mod)) ** 2 + (
                            (sub_n[rs, cs] - les.oy) / (les.ay * mod)
                        ) ** 2
                        m = inside & (q < 1 + les.lump * sub_tex[rs, cs])
                        if les.kind == "cavity":
                            lab_c[m] = CAVITY
                            continue
                        if hemosiderin:
                            cap = inside & (q < 1.35) & (t > 0.55) & ~m & (lab_c == CORD)
                            lab_c[cap] = HEMOSIDERIN
                        lab_c[m] = TUMOR
                        tex2 = -s * ca[lrs, lcs][rs, cs] + c * cb[lrs, lcs][rs, cs]
                        lab_c[m & (tex2 > enh_thr)] = TUMOR_ENH
                for name, a in lab_acc.items():
                    tissues = LABEL_TISSUES[name]
                    hit = sub_lab == tissues[0]
                    for t_id in tissues[1:]:
                        hit |= sub_lab == t_id
                    a += hit
            if with_image:
                # lut[lab] * (1 + tex_amp[lab] * tex), without full-plane temporaries
                np.take(tex_amp, lab, out=tmp, mode="clip")
                tmp *= tex
                tmp += 1
                tmp *= np.take(lut, lab)
                acc += tmp
            if sub == nsub // 2:
                tissue[i] = lab[f // 2 :: f, f // 2 :: f]
        image[i] = _downsample(acc, f) / nsub
        for name, a in lab_acc.items():
            fractions[name][i, lrs_native, lcs_native] = _downsample(a, f) / nsub
    np.clip(image, 0, None, out=image)
    return image, fractions, tissue


def _fill(lab: np.ndarray, box, value: int, mask: np.ndarray, cols: np.ndarray | None = None) -> None:
    """``lab[mask & cols] = value`` inside ``box`` (row slice, column slice) of the 2-D ``mask``; ``cols``:
    per-row (z) booleans, shape (1, nz)."""
    if cols is not None:
        box = _narrow(box, cols)
    if box is not None:
        r, k = box
        np.copyto(lab[r, k], value, where=mask[r, k] if cols is None else mask[r, k] & cols[:, k])


def _fill_below(lab: np.ndarray, box, value: int, field: np.ndarray, term: np.ndarray, thr: float,
                cols: np.ndarray | None = None) -> None:
    """``lab[(term + field < thr) & cols] = value`` inside ``box``, for a 2-D ``field`` and a per-row
    ``term`` >= 0 (so only columns with ``term < thr`` can hold any of it)."""
    box = _narrow(box, term < thr if cols is None else cols & (term < thr))
    if box is not None:
        r, k = box
        m = term[:, k] + field[r, k] < thr
        if cols is not None:
            m &= cols[:, k]
        np.copyto(lab[r, k], value, where=m)


def _narrow(box, cols: np.ndarray):
    """``box`` cut to its columns from the first to the last where ``cols`` is True (None if none)."""
    if box is None:
        return None
    r, k = box
    idx = np.flatnonzero(cols[0, k])
    if not idx.size:
        return None
    return r, slice(k.start + int(idx[0]), k.start + int(idx[-1]) + 1)


def _bbox(mask: np.ndarray):
    """Bounding box (row slice, column slice) of the True part of a 2-D mask, None if it has none."""
    cols = np.flatnonzero(mask.any(axis=0))
    if not cols.size:
        return None
    rows = np.flatnonzero(mask[:, cols[0] : cols[-1] + 1].any(axis=1))
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def _downsample(a: np.ndarray, f: int) -> np.ndarray:
    """Block sum of f x f fine pixels (partial volume in-plane); identity when f == 1."""
    if f == 1:
        return a
    if f > 7:  # numpy sums 8 or more terms pairwise
        h, w = a.shape
        return a.reshape(h // f, f, w // f, f).sum(axis=3).sum(axis=1) / (f * f)
    # the same additions, in the same order, as the reshape and sums above (left to right below 8 terms)
    cols = a[:, 0::f].copy()
    for j in range(1, f):
        cols += a[:, j::f]
    out = cols[0::f].copy()
    for j in range(1, f):
        out += cols[j::f]
    return out / (f * f)
