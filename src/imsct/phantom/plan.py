"""The synthetic cohort's plan: who has what (tumor type, sex, age, region, grade, which lesions and
their volume quantiles), from (n, seed) alone. numpy only (pandas only for the participants table),
so the workflow, which needs the plan to know its subjects and splits when it parses, does not import
what rendering needs (scipy, nibabel).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

TUMOR_TYPES = ("astrocytoma", "ependymoma", "hemangioblastoma")
# Section 2.1: 36 of the 101 astrocytomas were high-grade (their volumes and edema: lesions.py).
HIGH_GRADE_FRACTION = 36 / 101
# Share of subjects with edema / a cavity; cohort prevalences come out at ~51 % and ~67 % (section 4.2).
P_EDEMA = {"astrocytoma": {"low": 0.40, "high": 0.70}, "ependymoma": 0.50, "hemangioblastoma": 0.58}
P_CAVITY = {"astrocytoma": 0.55, "ependymoma": 0.70, "hemangioblastoma": 0.75}


@dataclass
class SubjectSpec:
    index: int  # 1-based position in the cohort
    participant_id: str  # "sub-001"
    tumor_type: str
    sex: str
    age: int
    tumor_region: str
    large_motion: bool
    tumor_grade: str | None = None  # astrocytoma: "low" | "high"
    has_edema: bool | None = None  # None: drawn per subject
    has_cavity: bool | None = None
    volume_quantiles: tuple[float, float, float] | None = None  # tumor, edema, cavity
    acquisition: str = "sagittal"  # "sagittal": clinical 2-D series (the paper's); "block": 3-D research block
    narrow: bool = False  # tumor and cavity held within the cord's own width (the cord barely widened)
    # T2w and T1w tissue tables raised to these powers (the sequence's weighting: echo time, repetition
    # time and flip angle); (1, 1) = the nominal clinical tables
    contrast_power: tuple[float, float] = (1.0, 1.0)


def p_edema(tumor_type: str, grade: str | None) -> float:
    p = P_EDEMA[tumor_type]
    return p[grade or "low"] if isinstance(p, dict) else p


def size_factor(age: float, sex: str) -> float:
    """Body-size factor: 1 for an adult man; children scale down (spine length ~ 0.6 at age 1)."""
    adult = 1.0 if sex == "M" else 0.94
    if age >= 17:
        return adult
    return adult * (0.58 + 0.42 * max(age, 0.5) / 17.0)


# Paper, section 2.1 and Table 1.
TYPE_COUNTS = {"astrocytoma": 101, "ependymoma": 122, "hemangioblastoma": 120}
MALE_FRACTION = {"astrocytoma": 60 / 101, "ependymoma": 70 / 122, "hemangioblastoma": 68 / 120}
AGE = {"astrocytoma": (30, 1, 63), "ependymoma": (42, 8, 76), "hemangioblastoma": (35.5, 8, 66)}
LUMBAR_FRACTION = 45 / 343
LARGE_MOTION_FRACTION = 0.10
CERVICAL_FRACTION = {"astrocytoma": 0.5, "ependymoma": 0.6, "hemangioblastoma": 0.55}


def _quota(n: int, weights: dict[str, float]) -> list[str]:
    """Largest-remainder apportionment, so small cohorts keep the paper's proportions."""
    total = sum(weights.values())
    raw = {k: n * w / total for k, w in weights.items()}
    counts = {k: int(np.floor(v)) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[: n - sum(counts.values())]:
        counts[k] += 1
    return [k for k in weights for _ in range(counts[k])]


def plan_cohort(n: int, seed: int, block_fraction: float = 0.0, narrow_fraction: float = 0.0,
                contrast_weighting: Mapping | None = None) -> list[SubjectSpec]:
    """``block_fraction``: share of subjects acquired as a 3-D research block around the cord
    (:class:`~imsct.phantom.acquisition.BlockSpec`) instead of the paper's clinical sagittal series;
    ``narrow_fraction``: each subject's chance that its lesions stay within the cord's own width
    (thin syrinx, small tumor, the cord barely expanded) instead of widening it as their volumes
    ask; ``contrast_weighting``: ``{"t2w": [lo, hi], "t1w": [lo, hi]}``, ranges of the power each
    subject's tissue tables are raised to (:func:`_plan_weighting`). 0, 0 and None (the paper's
    cohort) leave the plan as it always was."""
    if n < 1:
        raise ValueError(f"--subjects must be at least 1, got {n}")
    for name, value in (("block_fraction", block_fraction), ("narrow_fraction", narrow_fraction)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be within [0, 1], got {value}")
    rng = np.random.default_rng([seed, 0])
    types = rng.permutation(_quota(n, TYPE_COUNTS))
    n_lumbar = int(round(n * LUMBAR_FRACTION))
    lumbar = np.zeros(n, bool)
    lumbar[rng.permutation(n)[:n_lumbar]] = True
    n_large = int(round(n * LARGE_MOTION_FRACTION)) if n >= 5 else 0
    large = np.zeros(n, bool)
    large[rng.permutation(n)[:n_large]] = True
    specs = []
    for i in range(n):
        t = str(types[i])
        r = np.random.default_rng([seed, i + 1, 1])
        median, lo, hi = AGE[t]
        age = int(np.clip(np.rint(r.normal(median, (hi - lo) / 4.5)), lo, hi))
        sex = "M" if r.uniform() < MALE_FRACTION[t] else "F"
        region = "lumbar" if lumbar[i] else ("cervical" if r.uniform() < CERVICAL_FRACTION[t] else "thoracic")
        specs.append(SubjectSpec(i + 1, f"sub-{i + 1:03d}", t, sex, age, region, bool(large[i])))
    _plan_lesions(specs, seed)
    _plan_blocks(specs, seed, block_fraction)
    _plan_narrow(specs, seed, narrow_fraction)
    _plan_weighting(specs, seed, contrast_weighting)
    return specs


def plan_from_config(synthetic: Mapping) -> list[SubjectSpec]:
    """The plan of the workflow's ``synthetic`` config section (its schema fills the defaults)."""
    return plan_cohort(synthetic["subjects"], synthetic["seed"], synthetic["block_fraction"],
                       synthetic["narrow_fraction"], synthetic.get("contrast_weighting"))


NOMINAL_WEIGHTING = {"t2w": (1.0, 1.0), "t1w": (1.0, 1.0)}


def _plan_weighting(specs: list[SubjectSpec], seed: int, weighting: Mapping | None) -> None:
    """Each subject's contrast powers, drawn uniformly within the ranges from its own stream per
    subject (the rest of the plan is as without). The tables' values lie between 0 and about 1 (T2w:
    CSF 1, cord 0.40; T1w: cord 0.55, CSF 0.10), so a power above 1 on the T2w is a longer echo time
    (every tissue darker against fluid: cord / CSF 0.40 -> 0.16 at power 2), below 1 on the T1w a
    flatter T1 weighting (every value pulled towards 1: CSF and cavities less dark against the cord,
    enhancement weaker). Research blocks keep their T2w table, which has its own heavier
    weighting (:class:`~imsct.phantom.acquisition.BlockSpec`); their T1w is raised like the others."""
    ranges = {**NOMINAL_WEIGHTING, **{k: tuple(map(float, v)) for k, v in (weighting or {}).items()}}
    if set(ranges) != set(NOMINAL_WEIGHTING):
        raise ValueError(f"contrast_weighting takes t2w and t1w ranges, got {sorted(weighting)}")
    for key, r in ranges.items():
        if len(r) != 2:
            raise ValueError(f"contrast_weighting {key} must be [low, high], got {list(r)}")
        lo, hi = r
        if not 0 < lo <= hi <= 4:
            raise ValueError(f"contrast_weighting {key} must be [low, high] with 0 < low <= high <= 4, got {[lo, hi]}")
    if ranges == NOMINAL_WEIGHTING:
        return
    (lo2, hi2), (lo1, hi1) = ranges["t2w"], ranges["t1w"]
    for s in specs:
        # (tag 7 also seeds `imsct implant`'s draws, another cohort built from plan_cohort(n, seed) alone)
        w2, w1 = np.random.default_rng([seed, s.index, 7]).uniform((lo2, lo1), (hi2, hi1))
        s.contrast_power = (1.0 if s.acquisition == "block" else float(w2), float(w1))


def _plan_narrow(specs: list[SubjectSpec], seed: int, fraction: float) -> None:
    """Which subjects have narrow lesions: each with probability ``fraction``, from its own stream per
    subject (the rest of the plan is as without); never a lumbar one, whose tumor at the conus or below
    it has no normal-calibre cord to fit (held to it, it would shrink to a few hundredths of a cm3)."""
    if fraction <= 0:
        return
    for s in specs:
        drawn = np.random.default_rng([seed, s.index, 6]).uniform() < fraction
        s.narrow = bool(drawn) and s.tumor_region != "lumbar"


def _plan_blocks(specs: list[SubjectSpec], seed: int, fraction: float) -> None:
    """Which subjects are 3-D research blocks: cervical ones first (the real pair of
    ``sct_testing_data`` is cervical), never a large-motion one (20-40 mm would move the lesion out of
    a 50-80 mm block; the disc-label fallback is tested on the sagittal series). Its own random
    stream, so the rest of the plan is as without blocks."""
    k = int(round(len(specs) * fraction))
    if not k:
        return
    rng = np.random.default_rng([seed, 0, 3])
    order = rng.permutation(len(specs))
    eligible = [i for i in order if not specs[i].large_motion]
    eligible.sort(key=lambda i: specs[i].tumor_region != "cervical")  # stable: random within each group
    for i in eligible[:k]:
        specs[i].acquisition = "block"


def _stratified(rng: np.random.Generator, k: int) -> np.ndarray:
    """k quantiles, one in each of k equal strata, in random order (Latin hypercube in 1-D)."""
    return (rng.permutation(k) + rng.uniform(size=k)) / k


def _plan_lesions(specs: list[SubjectSpec], seed: int) -> None:
    """Astrocytoma grades, which subjects have edema / a cavity (quotas per type and grade), and
    stratified volume quantiles per class within each group: a cohort of the paper's size then
    reproduces Table 2 and the prevalences closely instead of within sampling noise. Its own random
    stream, so the rest of the plan is as before."""
    rng = np.random.default_rng([seed, 0, 2])
    astro = [s for s in specs if s.tumor_type == "astrocytoma"]
    n_high = int(round(len(astro) * HIGH_GRADE_FRACTION))
    for k, s in enumerate(rng.permutation(len(astro))):
        astro[s].tumor_grade = "high" if k < n_high else "low"
    groups: dict[tuple, list[SubjectSpec]] = {}
    for s in specs:
        groups.setdefault((s.tumor_type, s.tumor_grade), []).append(s)
    for (t, grade), members in groups.items():
        n = len(members)
        # Larger bodies tend to get the larger lesions (a child's cord cannot hold the largest ones):
        # quantiles go out in the order of body size plus noise.
        size = np.array([size_factor(s.age, s.sex) for s in members])

        def by_size(u, has, size=size, n=n):
            key = size[has] + rng.normal(0, 0.1, int(has.sum()))
            out = np.zeros(n)
            out[np.flatnonzero(has)[np.argsort(key)]] = np.sort(u)
            return out

        q = {"tumor": by_size(_stratified(rng, n), np.ones(n, bool))}
        for cls, p in (("edema", p_edema(t, grade)), ("cavity", P_CAVITY[t])):
            has = np.zeros(n, bool)
            has[rng.permutation(n)[: int(round(n * p))]] = True
            q[cls] = by_size(_stratified(rng, int(has.sum())), has)
            for s, h in zip(members, has):
                setattr(s, f"has_{cls}", bool(h))
        for i, s in enumerate(members):
            s.volume_quantiles = tuple(round(float(q[c][i]), 6) for c in ("tumor", "edema", "cavity"))


def participants_table(specs: list[SubjectSpec]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        [{"participant_id": s.participant_id, "tumor_type": s.tumor_type, "sex": s.sex, "age": s.age,
          "tumor_region": s.tumor_region, "tumor_grade": s.tumor_grade, "acquisition": s.acquisition}
         for s in specs]
    )
