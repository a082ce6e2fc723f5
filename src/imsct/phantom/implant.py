"""Lesions implanted into real scans: a test set to check that phantom-trained models work on real
anatomy.

From one real T2w with its cord mask and a T1w of the same session (own grid and space), each
subject gets a lesion complex drawn with the phantom's lesion model (:func:`~.lesions.build_complex`,
per tumor type and seeded), laid out along the real cord: coordinates are arc length along a smooth
curve through the cord mask and offsets right / anterior in the cross-section, everything in world
(scanner) millimetres, so no storage orientation is assumed. The complex is scaled to the real cord
(cross-sections held inside it) and shrunk along the cord to leave normal cord above and below in
the field of view, and the cord around it expanded radially (the CSF taking up the expansion). The
lesion is written into both scans with the phantom's contrasts, anchored on the real cord's and
CSF's intensities, with partial volume (every voxel is sampled 3 x 3 x 3 times and the lesion's
intensity offset from cord averaged in, so the real noise is kept). The T1w is reached through a
T1w-to-T2w registration, so the lesion sits on the same anatomy in both. Labels (tumor, edema,
cavity) are on the T2w grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.interpolate import make_smoothing_spline
from scipy.ndimage import binary_dilation, gaussian_filter1d, map_coordinates
from scipy.stats import norm

from .. import __version__
from ..bids import Naming, stem
from ..classes import LESIONS
from ..io import load_image, save_nifti, write_json, write_text, write_tsv
from .anatomy import DZ, Anatomy
from .lesions import (
    ADULT_CORD_RXRY,
    CORD_RIM_MM,
    Lesion,
    TumorAppearance,
    _fit_extent,
    build_complex,
    designed_volumes,
    lesion_dicts,
    volume_cm3,
)
from .render import CAVITY, CORD, CSF, EDEMA, LABEL_TISSUES, TUMOR, TUMOR_ENH, tissue_luts
from .subject import SubjectSpec, _exclusive_labels

SUPERSAMPLE = 3  # samples per voxel axis for partial volume
MARGIN_MM = 10.0  # normal cord kept above and below the lesions (inside the cord's extent)
STRETCH = (0.15, 0.35)  # cord expansion (radius) where the lesion fills the cord


@dataclass
class CordFrame:
    """The real cord as a curve in world mm, sampled every ``DZ`` mm of arc length ``s`` (increasing
    superiorly), with a local frame (unit tangent, right, anterior) and the cord's half widths."""

    points: np.ndarray  # (m, 3)
    tangent: np.ndarray
    right: np.ndarray
    anterior: np.ndarray
    s: np.ndarray  # (m,)
    rx: np.ndarray  # half width along ``right`` (mm)
    ry: np.ndarray  # half width along ``anterior``

    def coords(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(s, dx, dn): arc length of the curve point whose normal plane holds the point, and the
        offsets right and anterior in that plane. Found by stepping along the local tangents from
        the projection on the chord (the curve bends over far more than the cord's width)."""
        xyz = np.asarray(xyz, dtype=float)
        chord = self.points[-1] - self.points[0]
        chord /= np.linalg.norm(chord)
        last = len(self.s) - 1
        i = np.clip(np.rint((xyz - self.points[0]) @ chord / DZ).astype(int), 0, last)
        for _ in range(4):
            along = np.einsum("ij,ij->i", xyz - self.points[i], self.tangent[i])
            i = np.clip(i + np.rint(along / DZ).astype(int), 0, last)
        d = xyz - self.points[i]
        along = np.einsum("ij,ij->i", d, self.tangent[i])
        return (self.s[i] + along, np.einsum("ij,ij->i", d, self.right[i]),
                np.einsum("ij,ij->i", d, self.anterior[i]))

    def anatomy(self, pad_mm: float = 600.0) -> Anatomy:
        """A cord-only :class:`Anatomy` over ``s`` (z = s; cross-sections normal to the curve, so no
        tilt), extended by ``pad_mm`` with the end values, for the lesion layout and bookkeeping."""
        top, bottom = self.s[-1] + pad_mm, self.s[0] - pad_mm
        z = top - DZ * np.arange(int(round((top - bottom) / DZ)) + 1)
        rx = np.interp(z, self.s, self.rx).astype(np.float32)
        ry = np.interp(z, self.s, self.ry).astype(np.float32)
        zero = np.zeros_like(rx)
        return Anatomy(
            z0=float(z[0]), n=len(z), cx=zero, cy=zero, cos_t=np.ones_like(rx), sin_t=zero, cord_rx=rx, cord_ry=ry,
            sac_rx=rx + 2, sac_ry=ry + 2, sac_off=zero, canal_rx=rx + 3, canal_ry=ry + 3, canal_off=zero,
            body_d=zero, body_w=zero, post_depth=zero, fat_sc=zero, spinous_l=zero, spinous_slope=zero,
            region=np.zeros(len(z), np.int8), kind=np.zeros(len(z), np.int8), rel=zero, edge=zero,
            level=np.zeros(len(z), np.int16), body_top=np.zeros(0), body_bottom=np.zeros(0), z_conus=float(bottom))


def _world(ijk: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Apply a 4x4 affine to (n, 3) points."""
    a = np.asarray(affine, dtype=float)
    return np.stack([ijk[:, 0] * a[k, 0] + ijk[:, 1] * a[k, 1] + ijk[:, 2] * a[k, 2] + a[k, 3] for k in range(3)],
                    axis=1)


def cord_frame(cord: np.ndarray, affine: np.ndarray) -> CordFrame:
    """Fit the frame to a binary cord mask: centroids of 2 mm slabs along the cord's principal axis,
    a smoothing spline through them, and half widths from the second moments of the mask around the
    curve (scaled so the ellipse has the mask's cross-section area), smoothed over 2 mm."""
    xyz = _world(np.argwhere(cord > 0).astype(float), affine)
    if len(xyz) < 50:
        raise ValueError("cord mask too small to fit a centerline")
    c0 = xyz.mean(axis=0)
    axis = np.linalg.svd(xyz - c0, full_matrices=False)[2][0]
    axis *= np.sign(axis[2]) or 1.0  # superior
    t = (xyz - c0) @ axis
    edges = np.arange(t.min(), t.max() + 2.0, 2.0)
    which = np.digitize(t, edges)
    tb, cb = [], []
    for b in np.unique(which):
        sel = which == b
        if sel.sum() >= 5:
            tb.append(t[sel].mean())
            cb.append(xyz[sel].mean(axis=0))
    tb, cb = np.asarray(tb), np.asarray(cb)
    fine = np.linspace(tb[0], tb[-1], int((tb[-1] - tb[0]) / 0.05) + 2)
    curve = np.stack([make_smoothing_spline(tb, cb[:, k], lam=20.0)(fine) for k in range(3)], axis=1)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
    s = np.arange(0.0, arc[-1], DZ)
    pts = np.stack([np.interp(s, arc, curve[:, k]) for k in range(3)], axis=1)
    tan = np.gradient(pts, axis=0)
    tan /= np.linalg.norm(tan, axis=1, keepdims=True)
    ref = np.array([1.0, 0.0, 0.0]) if abs(tan[:, 0].mean()) < 0.9 else np.array([0.0, 1.0, 0.0])
    right = ref - (tan @ ref)[:, None] * tan
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    ant = np.cross(tan, right)
    frame = CordFrame(pts, tan, right, ant, s, np.zeros_like(s), np.zeros_like(s))
    sv, dx, dn = frame.coords(xyz)
    voxel = abs(np.linalg.det(affine[:3, :3]))
    rx, ry = np.zeros_like(s), np.zeros_like(s)
    for i, si in enumerate(s):
        sel = np.abs(sv - si) <= 2.0
        if sel.sum() < 10:
            continue
        area = sel.sum() * voxel / 4.0  # mm2: voxels in the 4 mm slab / its length
        a, b = np.sqrt(dx[sel].var()), np.sqrt(dn[sel].var())
        k = np.sqrt(area / (np.pi * a * b))
        rx[i], ry[i] = a * k, b * k
    ok = rx > 0
    rx = np.interp(s, s[ok], rx[ok])
    ry = np.interp(s, s[ok], ry[ok])
    frame.rx = gaussian_filter1d(rx, 2.0 / DZ, mode="nearest")
    frame.ry = gaussian_filter1d(ry, 2.0 / DZ, mode="nearest")
    return frame


@dataclass
class Texture:
    """A smooth random field of unit variance in world mm (a sum of plane waves), so the T2w and the
    T1w sample the same tumor texture at the same anatomy."""

    k: np.ndarray  # (n, 3) wave vectors (rad / mm)
    phase: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int = 24, wavelength=(3.0, 10.0)) -> Texture:
        d = rng.normal(size=(n, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        return cls(d * (2 * np.pi / rng.uniform(*wavelength, n))[:, None], rng.uniform(0, 2 * np.pi, n))

    def __call__(self, xyz: np.ndarray) -> np.ndarray:
        return (np.sqrt(2.0 / len(self.phase)) * np.cos(xyz @ self.k.T + self.phase).sum(axis=1)).astype(np.float32)


@dataclass
class ImplantModel:
    """One subject's lesions on a real cord, evaluable at any world point of the T2w's space.

    The lesions are drawn inside the real cord; the cord around them is then stretched radially by
    ``gamma(s)`` (up to ~1.35 where the lesion is widest, 1 away from it), the CSF around it taking
    up the stretch over a few millimetres: the real image and the lesions are sampled through the
    inverse of that stretch, so tumors and syringes expand the cord as real ones do."""

    frame: CordFrame
    lesions: list[Lesion]
    look: TumorAppearance
    cord: np.ndarray  # T2w cord mask (float) and its grid, for the inside-the-cord test
    cord_affine: np.ndarray
    tex: Texture
    tex2: Texture
    gamma: np.ndarray  # radial stretch of the cord per frame sample

    def source(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Where each (output, stretched) point comes from: world position in the unstretched scan,
        and its cord coordinates (s, dx, dn) there."""
        s, dx, dn = self.frame.coords(xyz)
        f = self.frame
        i = np.clip(np.rint((s - f.s[0]) / DZ).astype(int), 0, len(f.s) - 1)
        g = self.gamma[i]
        rx, ry = f.rx[i], f.ry[i]
        rho = np.sqrt((dx / rx) ** 2 + (dn / ry) ** 2)  # 1 on the real cord's surface
        rho_out = 1 + 3.0 / np.sqrt(rx * ry)  # the stretch fades out 3 mm outside the cord
        c = (g - 1) / (rho_out - 1)
        rho_src = np.where(rho <= g, rho / g, np.where(rho < rho_out, (rho - c * rho_out) / (1 - c), rho))
        k = np.where(rho > 1e-6, rho_src / np.maximum(rho, 1e-6), 1.0 / g)
        shrink = (1 - k)[:, None]
        src = xyz - shrink * (dx[:, None] * f.right[i] + dn[:, None] * f.anterior[i])
        return src, s, dx * k, dn * k

    def classify(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tissue class (0, or the phantom's EDEMA, CAVITY, TUMOR, TUMOR_ENH) at each point, painted
        in the renderer's order with its boundary rules, the texture there (0 outside lesions), and
        the unstretched source position of every point."""
        src, s, dx, dn = self.source(xyz)
        code = np.zeros(len(xyz), np.uint8)
        tex_all = np.zeros(len(xyz), np.float32)
        lo = min(les.zrange()[0] for les in self.lesions)
        hi = max(les.zrange()[1] for les in self.lesions)
        idx = np.flatnonzero((s >= lo) & (s <= hi))
        ijk = _world(src[idx], np.linalg.inv(self.cord_affine))
        idx = idx[map_coordinates(self.cord, ijk.T, order=1, mode="constant") >= 0.5]
        s, dx, dn, pts = s[idx], dx[idx], dn[idx], src[idx]
        tex = self.tex(pts)
        sub = np.zeros(len(idx), np.uint8)
        for kind in ("edema", "cavity", "tumor"):
            for les in (les for les in self.lesions if les.kind == kind):
                t = np.abs((s - les.z0) / les.hz) ** les.pz
                if kind == "edema":
                    sub[t < 1 + les.lump * tex] = EDEMA
                    continue
                mod = les.modulation(s)
                q = t + ((dx - les.ox) / (les.ax * mod)) ** 2 + ((dn - les.oy) / (les.ay * mod)) ** 2
                sub[q < 1 + les.lump * tex] = CAVITY if kind == "cavity" else TUMOR
        ef = self.look.enhancing_fraction
        enh_thr = np.inf if ef <= 0 else (-np.inf if ef >= 1 else float(norm.ppf(1 - ef)))
        tumor = np.flatnonzero(sub == TUMOR)
        if enh_thr < np.inf and tumor.size:
            sub[tumor[self.tex2(pts[tumor]) > enh_thr]] = TUMOR_ENH
        code[idx] = sub
        tex_all[idx] = tex
        return code, tex_all, src


def _stretch(frame: CordFrame, lesions: list[Lesion], amount: float) -> np.ndarray:
    """Radial stretch per frame sample: 1 + ``amount`` x (share of the cord's cross-section the
    tumor or cavity fills there; edema counts 0.4), smoothed over 3 mm."""
    w = np.zeros_like(frame.s)
    area = frame.rx * frame.ry
    for les in lesions:
        p = les.profile(frame.s)
        if les.kind == "edema":
            w = np.maximum(w, 0.4 * (p > 0))
        else:
            w = np.maximum(w, np.minimum(les.ax * les.ay * p**2 * les.modulation(frame.s) ** 2 / area, 1.0))
    g = amount * gaussian_filter1d(w, 3.0 / DZ, mode="nearest")
    return 1 + np.where(g > 0.01, g, 0.0)  # no endless tails: the real scan stays as it was


def _voxels(box: tuple[slice, slice, slice]) -> np.ndarray:
    return np.stack(np.meshgrid(*[np.arange(b.start, b.stop) for b in box], indexing="ij"), -1).reshape(-1, 3)


def _subsample(ijk: np.ndarray, k: int = SUPERSAMPLE) -> np.ndarray:
    """Voxel coordinates of k**3 samples in each of the voxels ``ijk`` (voxel-major order)."""
    off = (np.arange(k) + 0.5) / k - 0.5
    sub = np.stack(np.meshgrid(off, off, off, indexing="ij"), -1).reshape(-1, 3)
    return (ijk[:, None, :] + sub[None]).reshape(-1, 3)


def _box(world_corners: np.ndarray, affine: np.ndarray, shape) -> tuple[slice, slice, slice] | None:
    ijk = _world(world_corners, np.linalg.inv(affine))
    lo = np.maximum(np.floor(ijk.min(axis=0)).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 2, np.asarray(shape[:3]))
    return None if np.any(hi <= lo) else tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def _lesion_corners(model: ImplantModel) -> np.ndarray:
    """Corners of a world box around every lesion and the stretched cord around it."""
    lo = min(les.zrange()[0] for les in model.lesions)
    hi = max(les.zrange()[1] for les in model.lesions)
    f = model.frame
    sel = (f.s >= lo - 6) & (f.s <= hi + 6)
    r = max(f.rx[sel].max(), f.ry[sel].max()) * model.gamma.max() + 4.0
    p = f.points[sel]
    return np.array([[x, y, z] for x in (p[:, 0].min() - r, p[:, 0].max() + r)
                     for y in (p[:, 1].min() - r, p[:, 1].max() + r) for z in (p[:, 2].min() - r, p[:, 2].max() + r)])


def reference_intensities(img: np.ndarray, affine: np.ndarray, cord: np.ndarray, s_range, frame: CordFrame,
                          csf_bright: bool) -> tuple[float, float]:
    """Mean intensity of the cord (mask eroded by its edge) and of the CSF (a 1-4 mm shell around the
    cord in the cord's own arc-length range; its bright (T2w) or dark (T1w) quarter, as the shell also
    holds epidural fat, bone and vessels)."""
    cord = cord > 0.5
    shell = binary_dilation(cord, iterations=4) & ~binary_dilation(cord, iterations=1)
    core = cord & ~binary_dilation(~cord, iterations=1)
    xyz = _world(np.argwhere(shell).astype(float), affine)
    s, _, _ = frame.coords(xyz)
    sel = (s >= s_range[0]) & (s <= s_range[1])
    vals = img[shell][sel]
    csf = np.percentile(vals, 75 if csf_bright else 25)
    return float(img[core].mean()), float(csf)


def _intensity_ratios(lut: np.ndarray, i_cord: float, i_csf: float) -> dict[int, float]:
    """Phantom tissue value -> real intensity, linear through the two anchors cord and CSF, as a
    ratio to the real cord (the tissue a lesion replaces)."""
    def real(v):
        return i_cord + (v - lut[CORD]) / (lut[CSF] - lut[CORD]) * (i_csf - i_cord)

    return {t: max(real(lut[t]), 0.05 * i_cord) / i_cord for t in (EDEMA, CAVITY, TUMOR, TUMOR_ENH)}


def _paint(data: np.ndarray, affine: np.ndarray, model: ImplantModel, ratios: dict, i_cord: float,
           tex_amp: np.ndarray, t1_from_t2: np.ndarray | None = None, with_labels: bool = False):
    """Near the lesions, every voxel takes the real image at its unstretched source (cubic spline;
    voxels that do not move keep their value) plus the average over its k**3 sub-samples of the
    lesion's intensity minus the cord's (0 outside lesions): partial volume, and the real image's
    noise kept as it is (a ratio would scale it). ``t1_from_t2``: this grid (the T1w's) is in
    another scanner space. Returns the new image and (``with_labels``) exclusive class labels on
    this grid."""
    out = np.asarray(data, dtype=np.float32).copy()
    labels = {c: np.zeros(data.shape, np.uint8) for c in LESIONS}
    to_t2 = np.eye(4) if t1_from_t2 is None else np.linalg.inv(t1_from_t2)
    box = _box(_world(_lesion_corners(model), np.linalg.inv(to_t2)), affine, data.shape)
    if box is None:
        return out, labels
    # only voxels the stretch or a lesion can reach: near the cord, in the lesions' arc-length range
    ijk = _voxels(box)
    centres = _world(_world(ijk.astype(float), affine), to_t2)
    s, dx, dn = model.frame.coords(centres)
    f = model.frame
    lo = min(les.zrange()[0] for les in model.lesions)
    hi = max(les.zrange()[1] for les in model.lesions)
    reach = max(f.rx.max(), f.ry.max()) * model.gamma.max() + 4.0 + np.linalg.norm(_voxel_size(affine))
    near = (np.hypot(dx, dn) < reach) & (s > lo - 6) & (s < hi + 6)
    ijk, centres = ijk[near], centres[near]
    k3 = SUPERSAMPLE**3
    code, tex, _ = model.classify(_world(_world(_subsample(ijk.astype(float)), affine), to_t2))
    shift = np.zeros(len(code), np.float32)
    for t, r in ratios.items():
        m = code == t
        shift[m] = (r * (1 + tex_amp[t] * tex[m]) - 1) * i_cord
    src = model.source(centres)[0]
    moved = np.linalg.norm(src - centres, axis=1) > 0.05
    base = out[tuple(ijk.T)]
    src_ijk = _world(_world(src[moved], np.linalg.inv(to_t2)), np.linalg.inv(affine))
    base[moved] = map_coordinates(np.asarray(data, np.float32), src_ijk.T, order=3, mode="nearest")
    out[tuple(ijk.T)] = base + shift.reshape(-1, k3).mean(axis=1)
    if with_labels:
        shape = tuple(b.stop - b.start for b in box)
        local = tuple((ijk - [b.start for b in box]).T)
        frac = {}
        for c in LESIONS:
            frac[c] = np.zeros(shape, np.float32)
            frac[c][local] = np.isin(code, LABEL_TISSUES[c]).reshape(-1, k3).mean(axis=1)
        lab = _exclusive_labels(frac, tuple(b.start for b in box))
        for c in LESIONS:
            labels[c][box] = lab[c]
    return out, labels


def _voxel_size(affine: np.ndarray) -> np.ndarray:
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


@dataclass
class ImplantResult:
    t2w: nib.Nifti1Image
    t1w: nib.Nifti1Image
    labels: dict[str, np.ndarray]  # tumor, edema, cavity on the T2w grid
    truth: dict


def draw_implant(rng: np.random.Generator, frame: CordFrame, spec: SubjectSpec, cord: np.ndarray,
                 cord_affine: np.ndarray, margin: float = MARGIN_MM,
                 stretch: tuple[float, float] | None = STRETCH) -> tuple[ImplantModel, dict]:
    """Draw the lesion complex for ``spec`` (type, grade, presence and volume quantiles of the
    cohort plan) on this cord: drawn at full size along a virtually long cord, cross-sections held
    inside the real cord, then shrunk along the cord into its extent minus ``margin`` at both ends.
    ``stretch``: range of the cord expansion drawn (radius factor - 1 where the lesion fills the
    cord); None keeps the real cord's size."""
    grade = spec.tumor_grade
    u = spec.volume_quantiles or tuple(rng.uniform(size=3))
    drawn = {c: volume_cm3(spec.tumor_type, grade, c, u[i]) for i, c in enumerate(LESIONS)}
    drawn["edema"] *= bool(spec.has_edema)
    drawn["cavity"] *= bool(spec.has_cavity)
    s_lo, s_hi = frame.s[0] + margin, frame.s[-1] - margin
    if s_hi - s_lo < 10:
        raise ValueError(f"the cord spans {frame.s[-1] - frame.s[0]:.0f} mm: too short for a lesion with "
                         f"{margin:.0f} mm of normal cord above and below")
    inner = (frame.s >= s_lo) & (frame.s <= s_hi)
    max_half = (float(frame.rx[inner].min()) - CORD_RIM_MM, float(frame.ry[inner].min()) - CORD_RIM_MM)
    scale = float(np.sqrt(np.median(frame.rx[inner] * frame.ry[inner]) / ADULT_CORD_RXRY))
    anat = frame.anatomy()
    z_t = 0.5 * (s_lo + s_hi) + rng.uniform(-0.15, 0.15) * (s_hi - s_lo)
    lesions, look = build_complex(rng, anat, spec.tumor_type, grade, drawn, z_t, anat.z_conus, anat.z0, scale,
                                  expand=False, max_half=max_half)
    z_scale = _fit_extent(lesions, s_hi - s_lo)
    lo = min(les.zrange()[0] for les in lesions)
    hi = max(les.zrange()[1] for les in lesions)
    shift = max(s_lo - lo, 0.0) + min(s_hi - hi, 0.0)
    for les in lesions:
        les.z0 += shift
    gamma = _stretch(frame, lesions, rng.uniform(*stretch)) if stretch else np.ones_like(frame.s)
    model = ImplantModel(frame, lesions, look, cord.astype(np.float32), cord_affine, Texture.draw(rng),
                         Texture.draw(rng), gamma)
    zs = anat.z0 - DZ * np.arange(anat.n)
    row_scale = np.interp(zs, frame.s, gamma) ** 2
    info = {"tumor_grade": grade, "quantiles": [round(float(x), 4) for x in u],
            "drawn_cm3": {c: round(v, 4) for c, v in drawn.items()},
            "z_scale": {k: round(v, 4) for k, v in z_scale.items()},
            "cord_stretch_max": round(float(gamma.max()), 3),
            "designed_cm3": {c: round(v, 4) for c, v in designed_volumes(anat, lesions, row_scale=row_scale).items()}}
    return model, info


def implant(t2w: nib.Nifti1Image, cord: nib.Nifti1Image, t1w: nib.Nifti1Image, t1_from_t2: np.ndarray,
            spec: SubjectSpec, seed: int, margin: float = MARGIN_MM, frame: CordFrame | None = None,
            stretch: tuple[float, float] | None = STRETCH) -> ImplantResult:
    """Implant one lesion complex into a real T2w / T1w pair.

    ``cord``: binary cord mask on the T2w grid. ``t1_from_t2``: 4x4 RAS matrix mapping T2w scanner
    points to T1w scanner points (the registration's fixed -> moving, :func:`imsct.preprocess.register.
    register` of the T1w onto the T2w). ``spec``: tumor type and the plan's lesion draws; ``seed``
    with ``spec.index`` seeds everything else. The same inputs give the same arrays."""
    rng = np.random.default_rng([seed, spec.index, 7])
    cord_data = (np.asanyarray(cord.dataobj) > 0).astype(np.float32)
    frame = frame or cord_frame(cord_data, cord.affine)
    model, info = draw_implant(rng, frame, spec, cord_data, cord.affine, margin, stretch)
    lut2, lut1, tex_amp = tissue_luts(rng, model.look, spec.age)
    t2 = np.asanyarray(t2w.dataobj).astype(np.float32)
    t1 = np.asanyarray(t1w.dataobj).astype(np.float32)
    s_rng = (min(les.zrange()[0] for les in model.lesions), max(les.zrange()[1] for les in model.lesions))
    ref2 = reference_intensities(t2, t2w.affine, cord_data, s_rng, frame, csf_bright=True)
    # the T1w's cord: the T2w cord mask carried into the T1w's space
    cord1 = _cord_on(t1w, cord_data, cord.affine, t1_from_t2)
    ref1 = reference_intensities(t1, t1w.affine, cord1, s_rng, _frame_in(frame, t1_from_t2), csf_bright=False)
    new2, labels = _paint(t2, t2w.affine, model, _intensity_ratios(lut2, *ref2), ref2[0], tex_amp, with_labels=True)
    new1, _ = _paint(t1, t1w.affine, model, _intensity_ratios(lut1, *ref1), ref1[0], tex_amp, t1_from_t2=t1_from_t2)
    voxel = float(abs(np.linalg.det(t2w.affine[:3, :3]))) / 1000
    lo, hi = s_rng
    truth = {
        "participant_id": spec.participant_id,
        "tumor_type": spec.tumor_type,
        "tumor_region": spec.tumor_region,
        "seed": seed,
        "source": "lesions implanted into a real T2w / T1w pair",
        "volumes_cm3": {c: round(float(labels[c].sum()) * voxel, 4) for c in LESIONS},
        "lesion_model": {k: v for k, v in info.items() if k != "tumor_grade"},
        "tumor_grade": info["tumor_grade"],
        "lesions": lesion_dicts(model.lesions),
        "lesion_arc_length_mm": [round(lo, 2), round(hi, 2)],
        "cord_arc_length_mm": [round(float(frame.s[0]), 2), round(float(frame.s[-1]), 2)],
        "reference_intensity": {"t2w_cord": round(ref2[0], 2), "t2w_csf": round(ref2[1], 2),
                                "t1w_cord": round(ref1[0], 2), "t1w_csf": round(ref1[1], 2)},
        "appearance": {"t2": round(model.look.t2, 3), "t1": round(model.look.t1, 3),
                       "t1_enhancing": round(model.look.t1_enhancing, 3),
                       "enhancing_fraction": round(model.look.enhancing_fraction, 3)},
        "t1w_from_t2w_world": np.round(t1_from_t2, 6).tolist(),
    }

    def as_int(a, like):
        return nib.Nifti1Image(np.clip(np.rint(a), 0, 32767).astype(np.int16), like.affine)

    return ImplantResult(as_int(new2, t2w), as_int(new1, t1w), labels, truth)


def _cord_on(img: nib.Nifti1Image, cord: np.ndarray, cord_affine: np.ndarray, t1_from_t2: np.ndarray) -> np.ndarray:
    """The T2w cord mask sampled on another grid whose scanner space is reached by ``t1_from_t2``."""
    from ..preprocess.transforms import resample_to

    # resample_to's matrix maps reference-grid points to the moving image's space: T1w -> T2w here
    return resample_to(cord, cord_affine, img.shape, img.affine, np.linalg.inv(t1_from_t2)) >= 0.5


def _frame_in(frame: CordFrame, t1_from_t2: np.ndarray) -> CordFrame:
    """The same cord frame expressed in the other scanner space."""
    r = t1_from_t2[:3, :3]
    rot = lambda v: v @ r.T  # noqa: E731 - directions (approximately rigid)
    return CordFrame(_world(frame.points, t1_from_t2), rot(frame.tangent), rot(frame.right), rot(frame.anterior),
                     frame.s, frame.rx, frame.ry)


# --- the implanted test set (BIDS, the input contract) ----------------------------------------------


def _sct_dir(shared_data_dir) -> Path:
    p = Path(shared_data_dir)
    return p / "sct_testing_data" if (p / "sct_testing_data").is_dir() else p


def write_implanted_cohort(out_dir, n: int, seed: int, shared_data_dir, naming: Naming | None = None) -> list[dict]:
    """Write ``n`` subjects built from the one real pair of the SCT testing data (``shared_data_dir``
    holds ``sct_testing_data/`` or is it) as a BIDS dataset following the input contract: T2w,
    ce-gad T1w (its own grid and space, as acquired), tumor / edema / cavity masks and the real
    centerline on the T2w grid, participants.tsv, and a truth JSON per subject under
    derivatives/phantom/. Tumor types, grades and lesion volumes follow the phantom's cohort plan
    for (n, seed). The same arguments give the same bytes. Returns the truth of every subject."""
    from ..preprocess.register import register
    from .cohort import participants_table, plan_cohort

    naming = naming or Naming()
    src = _sct_dir(shared_data_dir)
    out = Path(out_dir)
    t2 = load_image(src / "t2" / "t2.nii.gz")
    t1 = load_image(src / "t1" / "t1w.nii.gz")
    cord = nib.load(src / "t2" / "t2_seg-manual.nii.gz")
    centerline = nib.load(src / "t2" / "t2_centerline-manual.nii.gz")
    reg = register(t2, t1)  # T2w -> T1w points; deterministic (one ITK thread, fixed sampling seed)
    frame = cord_frame((np.asanyarray(cord.dataobj) > 0).astype(np.float32), cord.affine)
    specs = plan_cohort(n, seed)
    for s in specs:
        s.tumor_region = "cervical"  # the real scan's region
    write_tsv(participants_table(specs), out / "participants.tsv")
    write_json({"participant_id": {"Description": "Subject label"},
                "tumor_type": {"Description": "Histological type of the implanted lesion"},
                "tumor_grade": {"Description": "Astrocytoma grade (n/a for the other types)"}},
               out / "participants.json")
    described = {"Name": "imsct implanted lesions on real scans", "BIDSVersion": "1.9.0", "DatasetType": "raw",
                 "GeneratedBy": [{"Name": "imsct implant", "Version": __version__}],
                 "imsct": {"seed": seed, "subjects": n, "source": "SCT testing data (errsm_30), MIT licence"}}
    write_json(described, out / "dataset_description.json")
    for deriv, desc in ((naming.labels_dir, "Ground-truth labels"), ("derivatives/phantom", "Implant truth")):
        write_json({"Name": desc, "BIDSVersion": "1.9.0", "DatasetType": "derivative",
                    "GeneratedBy": [{"Name": "imsct implant", "Version": __version__}]},
                   out / deriv / "dataset_description.json")
    write_text("Synthetic lesions (phantom lesion model) implanted into one real healthy subject's T2w and\n"
               "T1w (SCT testing data). A test set for models trained on phantoms; see derivatives/phantom/.\n",
               out / "README")
    truths = []
    for s in specs:
        res = implant(t2, cord, t1, reg.matrix, s, seed, frame=frame)
        label = s.participant_id[4:]
        anat = out / s.participant_id / "anat"
        p2, p1 = anat / naming.image_name("t2w", label), anat / naming.image_name("t1w", label)
        save_nifti(np.asanyarray(res.t2w.dataobj), t2.affine, p2)
        save_nifti(np.asanyarray(res.t1w.dataobj), t1.affine, p1)
        stems = {"t2w_stem": stem(p2), "t1w_stem": stem(p1)}
        for c in LESIONS:
            save_nifti(res.labels[c], t2.affine, naming.label_path(out, c, label, None, stems), dtype=np.uint8)
        save_nifti((np.asanyarray(centerline.dataobj) > 0).astype(np.uint8), t2.affine,
                   naming.label_path(out, "centerline", label, None, stems), dtype=np.uint8)
        res.truth["registration"] = {"method": reg.method, "flagged": reg.flagged}
        write_json(res.truth, out / "derivatives" / "phantom" / s.participant_id / f"{s.participant_id}_truth.json")
        truths.append(res.truth)
    return truths

