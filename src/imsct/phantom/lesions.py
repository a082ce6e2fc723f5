"""Tumor, edema and cavity (syrinx) models per tumor type, and the cord expansion they cause.

Volumes: per tumor type (and astrocytoma grade) and class, a log-normal clipped to a physical range,
with parameters solved so that the *clipped* distribution has the mean and std of the paper's
Table 2 (the 65 low-grade and 36 high-grade astrocytomas mix to the astrocytoma row). The cohort
plan hands every subject a stratified quantile per class (:func:`volume_cm3`), so a cohort of the
paper's size reproduces the table, not the table plus sampling noise.

Geometry: each lesion is a (super-)ellipsoid in cord coordinates (dx right-left, n anterior-posterior
normal to the cord, z superior) with an irregular boundary. Large volumes come from length and
cross-section together (the cross-section grows with the volume, and cord, sac and canal expand
around it). Along the cord, the tumor sits in the middle, cavities (syrinx, polar cysts) start at its
poles, and edema runs from the poles outward: a swollen full-width cord segment beyond the tumor, an
oedematous rim around tumor and cavity where it overlaps them. The layout is sized with a 1-D
bookkeeping of the cross-sections the renderer paints (:func:`designed_volumes`: painter's order
tumor > cavity > edema, all inside the cord), so labelled volumes equal the drawn ones except where
the anatomy (cord length, canal size) cannot hold them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import cache

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import brentq, least_squares
from scipy.special import ndtri

from ..classes import LESIONS
from .anatomy import DZ, Anatomy
from .plan import HIGH_GRADE_FRACTION, P_CAVITY, p_edema

# Table 2 (cm3): tumor, edema, cavity volume mean and std per type, over the subjects having the class.
TABLE2 = {
    "astrocytoma": {"tumor": (8.3, 5.9), "edema": (7.2, 7.8), "cavity": (34.4, 31.8)},
    "ependymoma": {"tumor": (8.1, 2.9), "edema": (5.7, 4.0), "cavity": (23.0, 17.9)},
    "hemangioblastoma": {"tumor": (2.7, 4.5), "edema": (17.2, 13.1), "cavity": (49.0, 37.6)},
}
# Astrocytoma grades (HIGH_GRADE_FRACTION, see .plan): high-grade ones are larger, enhancing, with
# more (and more frequent) edema. Weighted 65:36 (edema: by the subjects having it) these mix to
# Table 2's row.
GRADE_VOLUMES = {
    "low": {"tumor": (7.1, 5.0), "edema": (5.3, 5.4), "cavity": (34.4, 31.8)},
    "high": {"tumor": (10.5, 6.8), "edema": (9.1, 9.3), "cavity": (34.4, 31.8)},
}
# Physical range (cm3) each class is clipped to: above it the anatomy cannot hold the lesion.
RANGE_CM3 = {
    "astrocytoma": {"tumor": (0.5, 32.0), "edema": (0.3, 40.0), "cavity": (0.5, 130.0)},
    "ependymoma": {"tumor": (1.5, 20.0), "edema": (0.3, 22.0), "cavity": (0.5, 90.0)},
    "hemangioblastoma": {"tumor": (0.15, 21.0), "edema": (0.5, 60.0), "cavity": (0.5, 130.0)},
}
# Peak cross-section (mm2, adult; scaled by the subject's cord size) as a function of volume: area
# A_REF at V_REF cm3, growing as V**0.5, within [A_MIN, A_MAX]; A_MAX is what an expanded adult cord
# holds (a 26 x 16 mm syrinx: the canal remodels around it, as in holocord syringes). Hemangioblastoma
# nodules are round while they fit in the cord, then grow along it.
SHAPE = {
    "astrocytoma": {"a_ref": 110.0, "v_ref": 8.0, "a_min": 25.0, "a_max": 230.0, "pz": 2.0},
    "ependymoma": {"a_ref": 120.0, "v_ref": 8.0, "a_min": 40.0, "a_max": 230.0, "pz": 2.5},
    "hemangioblastoma": {"a_ref": 80.0, "v_ref": 2.0, "a_min": 30.0, "a_max": 260.0, "pz": 2.0},
    "cavity": {"a_ref": 170.0, "v_ref": 30.0, "a_min": 15.0, "a_max": 330.0, "pz": 6.0},
}
ADULT_CORD_RXRY = 18.6  # median native cord_rx * cord_ry (mm2) of an adult between C1 and the conus
Z_TOP = 5.0  # lesions reach the medulla at most (z = 0 is the top of C1)
CORD_RIM_MM = 0.8  # cord tissue kept around tumor and cavity


def z_integral(pz: float) -> float:
    """Integral of (1 - |t|^pz) over [-1, 1]: volume = peak area * half length * this."""
    return 2.0 * pz / (pz + 1.0)


@dataclass
class Lesion:
    kind: str  # tumor | edema | cavity
    z0: float
    hz: float  # half length along z (mm)
    ax: float  # half width right-left (mm); edema fills the cord instead
    ay: float  # half width anterior-posterior
    ox: float = 0.0  # offset from the cord centre (mm)
    oy: float = 0.0
    pz: float = 2.0  # exponent of the z term: 2 = ellipsoid, 4 = flat-ended tube
    lump: float = 0.1  # boundary irregularity (0 = smooth, well-defined)
    haustra: float = 0.0  # radius modulation along z (beaded syrinx)
    wavelength: float = 20.0
    phase: float = 0.0
    target_cm3: float = 0.0
    rim: float = 0.0  # edema only: extra oedematous cord (mm) around tumor and cavity
    swell: float = 1.0  # edema only: swelling of the cord cross-section (radius factor)

    def zrange(self) -> tuple[float, float]:
        return self.z0 - self.hz * 1.05, self.z0 + self.hz * 1.05

    def modulation(self, z: np.ndarray) -> np.ndarray:
        return 1 + self.haustra * np.sin(2 * np.pi * z / self.wavelength + self.phase)

    def profile(self, z: np.ndarray) -> np.ndarray:
        """Cross-section scale in [0, 1] along z (0 outside the lesion)."""
        t = np.abs((np.asarray(z) - self.z0) / self.hz)
        return np.sqrt(np.clip(1 - t**self.pz, 0, None))


@dataclass
class TumorAppearance:
    """Intensities (relative to the tissue table) of the solid tumor on each contrast."""

    t2: float
    t1: float
    t1_enhancing: float
    enhancing_fraction: float  # share of the tumor that enhances (0 = none, 1 = all)
    hemosiderin_cap: bool


# --- volume distributions -------------------------------------------------------------------------


def volume_distribution(tumor_type: str, grade: str | None, cls: str) -> tuple[float, float, float, float]:
    """(mean, std, lo, hi) in cm3 of one class for one tumor type (and astrocytoma grade)."""
    mean, std = GRADE_VOLUMES[grade][cls] if tumor_type == "astrocytoma" and grade else TABLE2[tumor_type][cls]
    return (mean, std, *RANGE_CM3[tumor_type][cls])


_U = (np.arange(4000) + 0.5) / 4000
_Z = ndtri(_U)


@cache
def lognormal_params(mean: float, std: float, lo: float, hi: float) -> tuple[float, float]:
    """(mu, sigma) of the log-normal that, clipped to [lo, hi], has this mean and std."""

    def moments(p):
        v = np.clip(np.exp(p[0] + np.exp(p[1]) * _Z), lo, hi)
        return np.array([v.mean() / mean - 1, v.std() / std - 1])

    s2 = np.log(1 + (std / mean) ** 2)
    sol = least_squares(moments, [np.log(mean) - s2 / 2, np.log(np.sqrt(s2))], xtol=1e-10, ftol=1e-10)
    return float(sol.x[0]), float(np.exp(sol.x[1]))


def volume_cm3(tumor_type: str, grade: str | None, cls: str, u: float) -> float:
    """The volume at quantile ``u`` of the class's clipped log-normal."""
    mean, std, lo, hi = volume_distribution(tumor_type, grade, cls)
    mu, sigma = lognormal_params(mean, std, lo, hi)
    return float(np.clip(np.exp(mu + sigma * ndtri(np.clip(u, 1e-6, 1 - 1e-6))), lo, hi))


# --- cord expansion and the 1-D bookkeeping ------------------------------------------------------


def expand_cord(anat: Anatomy, lesions: list[Lesion]) -> None:
    """Grow cord, thecal sac and bony canal (replacing the tables) so every lesion fits inside the cord
    with a rim of cord tissue (thicker and swollen where there is edema), and the cord inside the sac
    with CSF around it. Where there is no cord (below the conus) the lesion forms the intradural mass."""
    zs = anat.z0 - DZ * np.arange(anat.n)
    rx0, ry0 = anat.cord_rx.copy(), anat.cord_ry.copy()
    has_cord = rx0 > 0
    need_x, need_y = rx0.astype(float), ry0.astype(float)
    swell = np.ones(anat.n)
    extra_rim = np.zeros(anat.n)
    for les in lesions:
        if les.kind == "edema":
            inside = les.profile(zs) > 0
            swell = np.maximum(swell, np.where(inside, les.swell, 1.0))
            extra_rim = np.maximum(extra_rim, np.where(inside, les.rim, 0.0))
    for les in lesions:
        if les.kind == "edema":
            continue
        p = les.profile(zs)
        m = les.modulation(zs)
        rim = (np.where(has_cord, CORD_RIM_MM, 0.0) + extra_rim) * (p > 0)
        need_x = np.maximum(need_x, np.where(p > 0, abs(les.ox) + les.ax * m * p * 1.1 + rim, 0))
        need_y = np.maximum(need_y, np.where(p > 0, abs(les.oy) + les.ay * m * p * 1.1 + rim, 0))
    need_x = np.maximum(need_x, rx0 * swell)
    need_y = np.maximum(need_y, ry0 * swell)
    # Smooth the outline along z so the expanded cord has no steps, never below what is needed.
    sm = 2.0 / DZ
    cord_rx = np.maximum(gaussian_filter1d(need_x, sm), need_x)
    cord_ry = np.maximum(gaussian_filter1d(need_y, sm), need_y)
    inc_x = np.clip(cord_rx + 1.2 - anat.sac_rx, 0, None)
    inc_y = np.clip(cord_ry + 1.2 + np.abs(anat.sac_off) - anat.sac_ry, 0, None)
    inc_x = np.maximum(gaussian_filter1d(inc_x, sm), inc_x)
    inc_y = np.maximum(gaussian_filter1d(inc_y, sm), inc_y)
    anat.cord_rx = cord_rx.astype(np.float32)
    anat.cord_ry = cord_ry.astype(np.float32)
    anat.sac_rx = (anat.sac_rx + inc_x).astype(np.float32)
    anat.sac_ry = (anat.sac_ry + inc_y).astype(np.float32)
    anat.canal_rx = (anat.canal_rx + inc_x).astype(np.float32)
    anat.canal_ry = (anat.canal_ry + inc_y).astype(np.float32)


def designed_volumes(anat: Anatomy, lesions: list[Lesion], z_range: tuple[float, float] | None = None,
                     row_scale: np.ndarray | None = None) -> dict:
    """Volumes (cm3) the renderer paints for each class, from the cross-section areas per z row of the
    (already expanded) anatomy: tumor over cavity over edema, all clipped to the cord; where tumor
    and cavity share a row the smaller is taken to lie inside the larger. Boundary irregularity and
    partial volume are left out (they average out). ``z_range``: only rows inside it (a field of view).
    ``row_scale``: per-row area factor of a cross-section stretched after drawing (implants)."""
    zs = anat.z0 - DZ * np.arange(anat.n)
    inv_cos = 1.0 / anat.cos_t.astype(float) * (1.0 if row_scale is None else row_scale)
    a_cord = np.pi * anat.cord_rx.astype(float) * anat.cord_ry * inv_cos
    a_t, a_c = np.zeros(anat.n), np.zeros(anat.n)
    in_edema = np.zeros(anat.n, bool)
    for les in lesions:
        t = np.abs((zs - les.z0) / les.hz)
        if les.kind == "edema":
            in_edema |= t < 1
            continue
        area = np.pi * les.ax * les.ay * les.modulation(zs) ** 2 * np.clip(1 - t**les.pz, 0, None) * inv_cos
        if les.kind == "tumor":
            a_t += area
        else:
            a_c += area
    a_t, a_c = np.minimum(a_t, a_cord), np.minimum(a_c, a_cord)
    per_row = {"tumor": a_t, "cavity": a_c - np.minimum(a_t, a_c),
               "edema": in_edema * (a_cord - np.maximum(a_t, a_c))}
    sel = np.ones(anat.n, bool) if z_range is None else (zs >= z_range[0]) & (zs <= z_range[1])
    return {k: float(v[sel].sum() * DZ / 1000) for k, v in per_row.items()}


# --- drawing ---------------------------------------------------------------------------------------


def _cord_scale(anat: Anatomy) -> float:
    """Linear size of this cord relative to an adult's (children and small adults hold smaller lesions)."""
    zs = anat.z0 - DZ * np.arange(anat.n)
    sel = (zs < 0) & (zs > anat.z_conus + 40)
    return float(np.sqrt(np.median(anat.cord_rx[sel] * anat.cord_ry[sel]) / ADULT_CORD_RXRY))


def _split(area: float, ratio: float) -> tuple[float, float]:
    """Half widths (right-left, anterior-posterior) of an ellipse of this area and aspect ratio."""
    return float(np.sqrt(area * ratio / np.pi)), float(np.sqrt(area / (ratio * np.pi)))


def _peak_area(shape: dict, v_cm3: float, scale: float) -> float:
    a = shape["a_ref"] * np.sqrt(v_cm3 / shape["v_ref"])
    return float(np.clip(a, shape["a_min"], shape["a_max"]) * scale**2)


def _draw_tumor(rng, tumor_type, grade, v_cm3, z_t, cord_r, scale, room):
    """Tumor lesion(s) and their appearance. ``room`` is the cord length (mm) the tumor may span."""
    v = v_cm3 * 1000
    lesions = []
    if tumor_type in ("astrocytoma", "ependymoma"):
        sh = SHAPE[tumor_type]
        area = _peak_area(sh, v_cm3, scale)
        k = z_integral(sh["pz"])
        if v / (area * k) > room / 2:  # too long for the cord: widen, as far as the canal allows
            area = min(max(area, v / (k * room / 2)), sh["a_max"] * scale**2 * 1.3)
        ax, ay = _split(area, rng.uniform(1.1, 1.4))
        hz = v / (k * area)
        if tumor_type == "astrocytoma":  # eccentric, ill-defined
            ox = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0) * scale
            oy = rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.5) * scale
            lump = rng.uniform(0.35, 0.5) if grade == "high" else rng.uniform(0.25, 0.45)
        else:  # central, well-defined
            ox, oy = rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5)
            lump = rng.uniform(0.05, 0.12)
        lesions.append(Lesion("tumor", z_t, hz, ax, ay, ox, oy, sh["pz"], lump, target_cm3=v_cm3))
    else:  # hemangioblastoma: small, dorsal, intensely enhancing nodule(s)
        n_nodules = 1 if rng.uniform() > 0.2 else 2
        shares = [1.0] if n_nodules == 1 else [1.0 - (f := rng.uniform(0.1, 0.35)), f]
        sh = SHAPE["hemangioblastoma"]
        for i, share in enumerate(shares):
            vk = v * share
            sphere = np.pi * (3 * vk / (4 * np.pi)) ** (2 / 3)
            area = min(sphere * scale**2, _peak_area(sh, vk / 1000, scale))
            ax, ay = _split(area, rng.uniform(1.0, 1.3))
            hz = vk / (z_integral(2.0) * area)
            zk = z_t if i == 0 else z_t + rng.choice([-1, 1]) * rng.uniform(15, 40) * scale
            oy = -min(rng.uniform(1.0, 2.5), 0.8 * cord_r[1])  # dorsal, near the pial surface
            lesions.append(Lesion("tumor", zk, hz, ax, ay, rng.uniform(-1, 1), oy, 2.0, 0.05,
                                  target_cm3=vk / 1000))
    if tumor_type == "astrocytoma":
        if grade == "high":  # enhancing, heterogeneous
            enh = rng.uniform(0.35, 0.8)
            look = TumorAppearance(rng.uniform(0.6, 0.78), rng.uniform(0.4, 0.5), rng.uniform(0.8, 1.0), enh, False)
        else:  # no or partial, moderate enhancement
            enh = 0.0 if rng.uniform() < 0.45 else rng.uniform(0.1, 0.35)
            look = TumorAppearance(rng.uniform(0.52, 0.72), rng.uniform(0.42, 0.52), rng.uniform(0.65, 0.82), enh,
                                   False)
    elif tumor_type == "ependymoma":
        look = TumorAppearance(rng.uniform(0.65, 0.82), 0.5, rng.uniform(0.8, 1.05), rng.uniform(0.55, 0.9),
                               rng.uniform() < 0.3)
    else:
        look = TumorAppearance(rng.uniform(0.6, 0.75), 0.5, rng.uniform(1.1, 1.35), 1.0, False)
    return lesions, look


def _draw_cavities(rng, tumor_type, v_cm3, poles, rooms, scale):
    """Syrinx / polar cysts starting at the tumor poles: the cross-section grows with the volume,
    the length takes the rest; the cavity widens (up to what an expanded canal holds) and finally
    stops at the end of the cord when the cord is too short for it."""
    v = v_cm3 * 1000
    sh = SHAPE["cavity"]
    k = z_integral(sh["pz"])
    area = _peak_area(sh, v_cm3, scale)
    down, up = rooms
    if tumor_type == "astrocytoma":  # one syrinx, above or below
        shares = [1.0, 0.0] if rng.uniform() < down / max(down + up, 1e-6) else [0.0, 1.0]
    else:  # ependymoma: polar cysts; hemangioblastoma: syrinx around the nodule
        two = rng.uniform() < (0.5 if tumor_type == "ependymoma" else 0.6)
        f = rng.uniform(0.3, 0.7) if two else float(rng.uniform() < down / max(down + up, 1e-6))
        shares = [f, 1.0 - f]
    need = [2 * s * v / (area * k) for s in shares]  # lengths
    if any(n > r for n, r in zip(need, rooms)):  # too long for its side: extend past the tumor too
        total = down + up
        shares = [down / total, up / total] if total > 0 else [0.5, 0.5]
        area = min(max(area, 2 * v / (k * max(total, 1.0))), sh["a_max"] * scale**2)
    lesions = []
    # Beaded (haustrated) syringes are the thinner ones; the largest widen right-left more than
    # anterior-posterior, as the canal is wider that way.
    big = float(np.clip((area / scale**2 - 170) / 160, 0, 1))
    haustra = rng.uniform(0.08, 0.18) * (1 - big) if rng.uniform() < 0.5 else 0.0
    ratio = rng.uniform(1.15, 1.45) + 0.35 * big
    ax, ay = _split(area, ratio)
    for d, (share, room, pole) in enumerate(zip(shares, rooms, poles)):
        if share <= 0:
            continue
        length = min(2 * share * v / (area * k), room)  # the cord's end stops it
        if length < 2.0:
            continue
        hz = length / 2
        direction = 1.0 if d == 1 else -1.0
        overlap = min(3.0, 0.2 * hz)  # starts just inside the tumor's tip
        z0 = pole + direction * (hz - overlap)
        lesions.append(Lesion("cavity", z0, hz, ax, ay, 0.0, 0.0, sh["pz"], 0.04, haustra, rng.uniform(12, 25),
                              rng.uniform(0, 2 * np.pi), target_cm3=share * v_cm3))
    return lesions


def _edema_segments(lam, shares, rooms, k_in, poles, rim, swell, lump):
    out = []
    for d, (share, room, pole) in enumerate(zip(shares, rooms, poles)):
        if share <= 0:
            continue
        outward = min(share * lam, room)
        inward = k_in * outward
        lo, hi = (pole - inward, pole + outward) if d == 1 else (pole - outward, pole + inward)
        out.append(Lesion("edema", (lo + hi) / 2, max((hi - lo) / 2, 0.5), 0.0, 0.0, 0.0, 0.0, 4.0, lump,
                          rim=rim, swell=swell))
    return out


def _place_edema(rng, anat, base, v_cm3, poles, rooms, expand=True):
    """Edema from the tumor poles outward (one or both sides), its length solved (Brent) on the
    bookkeeping so that the painted volume equals ``v_cm3``; where the cord is too short, the
    oedematous rim and the swelling grow instead (``expand``; else the edema stops at the cord's end)."""
    lump = 0.15
    k_in = rng.uniform(0.2, 0.6)
    if rng.uniform() < 0.7:
        f = rng.uniform(0.3, 0.7)
        shares = [f, 1 - f]
    else:
        shares = [1.0, 0.0] if rng.uniform() < rooms[0] / max(sum(rooms), 1e-6) else [0.0, 1.0]
    shares = [s if r > 1.0 else 0.0 for s, r in zip(shares, rooms)]
    if sum(shares) == 0:
        shares = [0.5, 0.5]
    rim, swell = rng.uniform(0.3, 1.2), rng.uniform(1.05, 1.25)

    def painted(lam, rim, swell):
        les = base + _edema_segments(lam, shares, rooms, k_in, poles, rim, swell, lump)
        a = replace(anat)
        if expand:
            expand_cord(a, les)
        return designed_volumes(a, les)["edema"], les

    if not expand:
        rim, swell = 0.0, 1.0
    lam_max = max(r / s for s, r in zip(shares, rooms) if s > 0)
    for _ in range(4 if expand else 0):  # a longer cord segment is not available: thicker rim, more swelling
        top, _ = painted(lam_max, rim, swell)
        if top >= v_cm3:
            break
        rim, swell = min(rim + 0.8, 3.2), min(swell + 0.1, 1.5)
    gap = lambda lam: painted(lam, rim, swell)[0] - v_cm3  # noqa: E731 - increasing in lam
    if gap(lam_max) <= 0:
        lam = lam_max
    elif gap(0.0) >= 0:
        lam = 0.0
    else:
        lam = brentq(gap, 0.0, lam_max, xtol=0.05, rtol=1e-4)
    segments = _edema_segments(lam, shares, rooms, k_in, poles, rim, swell, lump)
    for s in segments:
        s.target_cm3 = v_cm3 / len(segments)
    return segments


def _fit_extent(lesions: list[Lesion], max_extent: float) -> dict:
    """Shrink the lesion complex along z (in place) to at most ``max_extent`` mm: the tumor keeps its
    length up to what cavities and edema beyond its poles leave (at least half), they share the rest.
    A piecewise-linear map of z, so every lesion stays one interval and the layout is kept;
    cross-sections are kept."""
    lo = min(les.zrange()[0] for les in lesions)
    hi = max(les.zrange()[1] for les in lesions)
    if hi - lo <= max_extent:
        return {"tumor": 1.0, "edema_cavity": 1.0}
    tumors = [les for les in lesions if les.kind == "tumor"]
    t_lo = min(les.zrange()[0] for les in tumors)
    t_hi = max(les.zrange()[1] for les in tumors)
    c = 0.5 * (t_lo + t_hi)
    others = (t_lo - lo) + (hi - t_hi)
    s_t = min(1.0, max(0.5 * max_extent, max_extent - others) / (t_hi - t_lo))
    half = 0.5 * (t_hi - t_lo) * s_t
    s_o = min(1.0, (max_extent - 2 * half) / max(others, 1e-6))

    def zmap(z):
        if z > t_hi:
            return c + half + (z - t_hi) * s_o
        if z < t_lo:
            return c - half - (t_lo - z) * s_o
        return c + (z - c) * s_t

    for les in lesions:
        a, b = zmap(les.z0 - les.hz), zmap(les.z0 + les.hz)
        scale = (b - a) / (2 * les.hz)
        les.z0, les.hz = 0.5 * (a + b), 0.5 * (b - a)
        les.wavelength *= scale
        les.target_cm3 *= scale
    return {"tumor": float(s_t), "edema_cavity": float(s_o)}


def build_complex(
    rng: np.random.Generator,
    anat: Anatomy,
    tumor_type: str,
    grade: str | None,
    targets: dict[str, float],
    z_t: float,
    z_bot: float,
    z_top: float,
    scale: float,
    tumor_below: bool = False,
    expand: bool = True,
    max_half: tuple[float, float] | None = None,
) -> tuple[list[Lesion], TumorAppearance]:
    """Lay out tumor, cavities and edema of the given volumes (cm3) along the cord around ``z_t``,
    between ``z_bot`` and ``z_top`` (mm along the cord). ``scale``: the cord's linear size relative to
    an adult's. ``expand`` False: the cord is not expanded (an implant into a real cord), so tumor and
    cavity half widths are held within ``max_half`` (right-left, anterior-posterior; mm, offsets
    included) and the edema cannot swell."""
    i_t = anat.idx(z_t)
    cord_r = float(max(anat.cord_rx[i_t], 4.0 * scale)), float(max(anat.cord_ry[i_t], 3.2 * scale))
    tumors, look = _draw_tumor(rng, tumor_type, grade, targets["tumor"], z_t, cord_r, scale,
                               room=z_top - min(z_bot, z_t - 20))
    # Keep the tumor inside the usable cord (lumbar tumors may sit below the conus).
    lo_t = min(les.z0 - les.hz for les in tumors)
    hi_t = max(les.z0 + les.hz for les in tumors)
    shift = min(0.0, z_top - hi_t)
    if not tumor_below:
        shift = max(shift, z_bot - lo_t) if hi_t - lo_t < z_top - z_bot else shift
    for les in tumors:
        les.z0 += shift
    main = tumors[0]
    poles = (main.z0 - main.hz, main.z0 + main.hz)
    rooms = (max(poles[0] - z_bot, 0.0), max(z_top - poles[1], 0.0))

    lesions = list(tumors)
    if targets["cavity"] > 0:
        lesions += _draw_cavities(rng, tumor_type, targets["cavity"], poles, rooms, scale)
    if max_half is not None:
        for les in lesions:
            les.ax = min(les.ax, max(max_half[0] - abs(les.ox), 0.5))
            les.ay = min(les.ay, max(max_half[1] - abs(les.oy), 0.5))
    if targets["edema"] > 0:
        lesions += _place_edema(rng, anat, lesions, targets["edema"], poles, rooms, expand)
    return lesions, look


def _cord_half_widths(anat: Anatomy, z_t: float, reach: float = 15.0) -> tuple[float, float] | None:
    """The cord's narrowest half widths (right-left, anterior-posterior; mm) within ``reach`` mm of
    ``z_t``, less the rim of cord tissue :func:`expand_cord` keeps around a lesion, over the rows of
    normal calibre (not the conus's tapering tip, which would leave no width); None where the window
    has none (a tumor at or below the conus: it keeps its drawn widths)."""
    i = anat.idx(np.linspace(z_t - reach, z_t + reach, 16))
    i = i[anat.cord_rx[i] > 0.5 * np.median(anat.cord_rx[anat.cord_rx > 0])]
    if not len(i):
        return None
    return float(anat.cord_rx[i].min()) - CORD_RIM_MM, float(anat.cord_ry[i].min()) - CORD_RIM_MM


def draw_lesions(
    rng: np.random.Generator,
    anat: Anatomy,
    tumor_type: str,
    region: str,
    grade: str | None = None,
    has_edema: bool | None = None,
    has_cavity: bool | None = None,
    quantiles: tuple[float, float, float] | None = None,
    max_extent: float | None = None,
    narrow: bool = False,
) -> tuple[list[Lesion], TumorAppearance, dict]:
    """Draw one subject's lesion complex. ``has_edema`` / ``has_cavity`` / ``quantiles`` (tumor,
    edema, cavity volume quantiles) come from the cohort plan, drawn here when not given.
    ``max_extent`` (mm): shrink the complex along z to fit (small fields of view). ``narrow``: hold
    tumor and cavity within the cord's own width around the tumor (less its 0.8 mm rim), as a thin
    syrinx or a small tumor in a cord of normal calibre; the volumes then come from length alone.

    Returns the lesions, the tumor appearance and a record (grade, volumes drawn and designed)."""
    if tumor_type == "astrocytoma" and grade is None:
        grade = "high" if rng.uniform() < HIGH_GRADE_FRACTION else "low"
    if tumor_type != "astrocytoma":
        grade = None
    if has_edema is None:
        has_edema = bool(rng.uniform() < p_edema(tumor_type, grade))
    if has_cavity is None:
        has_cavity = bool(rng.uniform() < P_CAVITY[tumor_type])
    u = rng.uniform(size=3) if quantiles is None else np.asarray(quantiles, float)
    targets = {c: volume_cm3(tumor_type, grade, c, u[i]) for i, c in enumerate(LESIONS)}
    targets["edema"] *= has_edema
    targets["cavity"] *= has_cavity

    bounds = anat.region_bounds()
    if region == "lumbar":
        z_t = rng.uniform(anat.z_conus - 35, anat.z_conus + 15)
    else:
        top, bottom = bounds[region]
        if region == "cervical":
            top = anat.body_top[1]  # C2 and below
        z_t = rng.uniform(bottom + 10, top - 10)
    # cavities and edema stay in the cord, above the conus; lumbar tumors may sit below it
    max_half = _cord_half_widths(anat, z_t) if narrow else None
    lesions, look = build_complex(rng, anat, tumor_type, grade, targets, z_t, anat.z_conus + 2.0, Z_TOP,
                                  _cord_scale(anat), tumor_below=region == "lumbar", max_half=max_half)
    z_scale = {"tumor": 1.0, "edema_cavity": 1.0}
    if max_extent is not None:
        z_scale = _fit_extent(lesions, max_extent)
    a = replace(anat)
    expand_cord(a, lesions)
    info = {
        "tumor_grade": grade,
        "narrow": max_half is not None,
        "quantiles": [round(float(x), 4) for x in u],
        "drawn_cm3": {c: round(v, 4) for c, v in targets.items()},
        "z_scale": {k: round(v, 4) for k, v in z_scale.items()},
        "designed_cm3": {c: round(v, 4) for c, v in designed_volumes(a, lesions).items()},
    }
    return lesions, look, info


def lesion_dicts(lesions: list[Lesion]) -> list[dict]:
    return [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(les).items()} for les in lesions]
