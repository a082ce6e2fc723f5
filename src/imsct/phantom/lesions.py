"""Tumor, edema and cavity (syrinx) models per tumor type, and the cord expansion they cause.

Each lesion is a (super-)ellipsoid in cord coordinates (dx right-left, n anterior-posterior normal to
the cord, z superior) with an irregular boundary; volumes are drawn from log-normals fitted to the
paper's Table 2 (mean ± std per type), prevalences from section 2.1 (edema ~51 %, cavity ~67 %).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .anatomy import DZ, Anatomy

TUMOR_TYPES = ("astrocytoma", "ependymoma", "hemangioblastoma")
# Table 2 (cm3): tumor, edema, cavity volume mean and std per type.
VOLUMES = {
    "astrocytoma": {"tumor": (8.3, 5.9), "edema": (7.2, 7.8), "cavity": (34.4, 31.8)},
    "ependymoma": {"tumor": (8.1, 2.9), "edema": (5.7, 4.0), "cavity": (23.0, 17.9)},
    "hemangioblastoma": {"tumor": (2.7, 4.5), "edema": (17.2, 13.1), "cavity": (49.0, 37.6)},
}
# Probability of edema and of a cavity per type; cohort prevalences come out at ~51 % and ~67 %.
P_EDEMA = {"astrocytoma": 0.45, "ependymoma": 0.50, "hemangioblastoma": 0.58}
P_CAVITY = {"astrocytoma": 0.55, "ependymoma": 0.70, "hemangioblastoma": 0.75}
PZ_VOLUME = {2.0: 4 / 3, 2.5: 2 - 2 / 3.5, 4.0: 1.6}  # integral of (1 - |t|^p) over [-1, 1]


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


def _lognormal(rng, mean, std, lo, hi):
    s2 = np.log(1 + (std / mean) ** 2)
    return float(np.clip(rng.lognormal(np.log(mean) - s2 / 2, np.sqrt(s2)), lo, hi))


def _fit_length(volume_mm3, ax, ay, pz, hz_max, r_max):
    """Half length giving ``volume_mm3``; widen the cross-section when the length would exceed
    ``hz_max`` (a long lesion also expands the cord)."""
    k = PZ_VOLUME[pz] * np.pi
    hz = volume_mm3 / (k * ax * ay)
    if hz > hz_max:
        grow = min(np.sqrt(hz / hz_max), r_max / max(ax, ay))
        ax, ay = ax * grow, ay * grow
        hz = min(volume_mm3 / (k * ax * ay), hz_max)
    return max(hz, 2.0), ax, ay


def draw_lesions(
    rng: np.random.Generator, anat: Anatomy, tumor_type: str, region: str
) -> tuple[list[Lesion], TumorAppearance]:
    vol = VOLUMES[tumor_type]
    bounds = anat.region_bounds()
    if region == "lumbar":
        z_t = rng.uniform(anat.z_conus - 35, anat.z_conus + 15)
    else:
        top, bottom = bounds[region]
        if region == "cervical":
            top = anat.body_top[1]  # C2 and below
        z_t = rng.uniform(bottom + 10, top - 10)
    cord_r = float(max(anat.cord_rx[anat.idx(z_t)], 4.0)), float(max(anat.cord_ry[anat.idx(z_t)], 3.2))

    lesions: list[Lesion] = []
    side = rng.choice([-1.0, 1.0])
    if tumor_type == "astrocytoma":
        v = _lognormal(rng, *vol["tumor"], 0.5, 30) * 1000
        ax, ay = rng.uniform(4.0, 6.5), rng.uniform(3.5, 5.5)
        hz, ax, ay = _fit_length(v, ax, ay, 2.0, 100, 8)
        ox, oy = side * rng.uniform(0.5, 2.0), rng.choice([-1, 1]) * rng.uniform(0.3, 1.5)
        lesions.append(Lesion("tumor", z_t, hz, ax, ay, ox, oy, 2.0, rng.uniform(0.25, 0.45), target_cm3=v / 1e3))
        enh = 0.0 if rng.uniform() < 0.4 else rng.uniform(0.15, 0.45)
        look = TumorAppearance(rng.uniform(0.52, 0.72), rng.uniform(0.42, 0.52), rng.uniform(0.68, 0.85), enh, False)
    elif tumor_type == "ependymoma":
        v = _lognormal(rng, *vol["tumor"], 1.5, 20) * 1000
        ax, ay = rng.uniform(5.5, 8.0), rng.uniform(4.5, 6.5)
        hz, ax, ay = _fit_length(v, ax, ay, 2.5, 70, 9)
        ox, oy = rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5)
        lesions.append(Lesion("tumor", z_t, hz, ax, ay, ox, oy, 2.5, rng.uniform(0.05, 0.12), target_cm3=v / 1e3))
        look = TumorAppearance(
            rng.uniform(0.65, 0.82), 0.5, rng.uniform(0.8, 1.05), rng.uniform(0.55, 0.9), rng.uniform() < 0.3
        )
    else:  # hemangioblastoma: small, dorsal, intensely enhancing nodule(s)
        v = _lognormal(rng, *vol["tumor"], 0.15, 25) * 1000
        n_nodules = 1 if rng.uniform() > 0.2 else 2
        for k in range(n_nodules):
            vk = v if k == 0 else v * rng.uniform(0.1, 0.5)
            r = (3 * vk / (4 * np.pi)) ** (1 / 3)
            ax = ay = min(r, 7.0)
            hz, ax, ay = _fit_length(vk, ax, ay, 2.0, 60, 8)
            zk = z_t if k == 0 else z_t + rng.choice([-1, 1]) * rng.uniform(20, 60)
            oy = -rng.uniform(1.0, 2.5)  # dorsal, near the pial surface
            lesions.append(Lesion("tumor", zk, hz, ax, ay, rng.uniform(-1, 1), oy, 2.0, 0.05, target_cm3=vk / 1e3))
        look = TumorAppearance(rng.uniform(0.6, 0.75), 0.5, rng.uniform(1.1, 1.35), 1.0, False)

    main = lesions[0]
    if rng.uniform() < P_CAVITY[tumor_type]:
        v = _lognormal(rng, *vol["cavity"], 1.0, 120) * 1000
        ax, ay = rng.uniform(4.5, 7.0), rng.uniform(4.0, 6.0)
        haustra = rng.uniform(0.08, 0.18) if rng.uniform() < 0.5 else 0.0
        if tumor_type == "ependymoma":  # polar cysts, above and/or below the tumor
            poles = [1.0, -1.0] if rng.uniform() < 0.5 else [rng.choice([-1.0, 1.0])]
        elif tumor_type == "hemangioblastoma":
            poles = [0.0]  # syrinx around the nodule
        else:
            poles = [rng.choice([-1.0, 1.0])]
        for pole in poles:
            hz, cax, cay = _fit_length(v / len(poles), ax, ay, 4.0, 200, 8)
            if pole == 0.0:
                z0 = main.z0 + rng.uniform(-0.5, 0.5) * hz
            else:
                z0 = main.z0 + pole * (main.hz + 0.85 * hz)
            lesions.append(
                Lesion("cavity", z0, hz, cax, cay, 0.0, 0.0, 4.0, 0.04, haustra, rng.uniform(12, 25),
                       rng.uniform(0, 2 * np.pi), target_cm3=v / len(poles) / 1e3)
            )
    if rng.uniform() < P_EDEMA[tumor_type]:
        v = _lognormal(rng, *vol["edema"], 0.5, 60) * 1000
        area = np.pi * cord_r[0] * cord_r[1] * 1.15
        hz = max(v / (PZ_VOLUME[4.0] * area), main.hz + 8)
        hz = min(hz, 160)
        z0 = main.z0 + rng.uniform(-0.3, 0.3) * (hz - main.hz)
        lesions.append(Lesion("edema", z0, hz, 0.0, 0.0, 0.0, 0.0, 4.0, 0.15, target_cm3=v / 1e3))
    return lesions, look


def expand_cord(anat: Anatomy, lesions: list[Lesion]) -> None:
    """Grow cord, thecal sac and bony canal (in place) so every lesion fits inside the cord with a rim
    of cord tissue, and the cord inside the sac with CSF around it. Where there is no cord (below the
    conus) the lesion itself forms the intradural mass."""
    zs = anat.z0 - DZ * np.arange(anat.n)
    rx0, ry0 = anat.cord_rx.copy(), anat.cord_ry.copy()
    has_cord = rx0 > 0
    need_x, need_y = rx0.astype(float), ry0.astype(float)
    swell = np.ones(anat.n)
    for les in lesions:
        p = les.profile(zs)
        if les.kind == "edema":
            swell = np.maximum(swell, 1 + 0.25 * p)
            continue
        m = les.modulation(zs)
        rim = np.where(has_cord, 0.8, 0.0) * (p > 0)
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


def lesion_dicts(lesions: list[Lesion]) -> list[dict]:
    return [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(les).items()} for les in lesions]
