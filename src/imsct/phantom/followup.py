"""Follow-up sessions of a phantom subject, for longitudinal tests (volumetry over time).

A follow-up is the same subject drawn again (same anatomy, lesion site and acquisition draws) with
every lesion class's planned volume multiplied by a growth factor: the class's volume quantile moves
along its log-normal (``volume_cm3``) by ``ln(growth) / sigma``, so the drawn volume grows by
``growth`` exactly until the class's upper bound clips it. The written labels (and the truth JSON)
hold the volumes actually realised. Sessions go to ``sub-<label>/ses-<NN>/`` with
``sub-<label>_sessions.tsv`` giving each session's ``acq_time``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from ..bids import Naming
from ..classes import LESIONS
from ..io import write_tsv
from .lesions import lognormal_params, volume_distribution
from .subject import SubjectSpec, make_subject

BASELINE = datetime(2020, 1, 15, 9, 0, 0)


def grown_spec(spec: SubjectSpec, growth: float) -> SubjectSpec:
    """The subject with each lesion class's planned volume multiplied by ``growth``."""
    if growth <= 0:
        raise ValueError(f"growth must be positive, got {growth}")
    if spec.volume_quantiles is None:
        raise ValueError(f"{spec.participant_id}: a follow-up needs the cohort plan's volume quantiles")
    q = []
    for u, cls in zip(spec.volume_quantiles, LESIONS):
        _, sigma = lognormal_params(*volume_distribution(spec.tumor_type, spec.tumor_grade, cls))
        z = ndtri(np.clip(u, 1e-6, 1 - 1e-6)) + np.log(growth) / sigma
        q.append(round(float(ndtr(z)), 6))
    return dataclasses.replace(spec, volume_quantiles=tuple(q))


def write_sessions(out, spec: SubjectSpec, seed: int, size: str, naming: Naming, growth: list[float],
                   interval_days: float = 180.0) -> pd.DataFrame:
    """Write ``len(growth)`` sessions (``ses-01``, ...) of one subject, session k with the lesions
    grown by ``growth[k]`` (1.0: as planned) and acquired ``k * interval_days`` after the first; returns
    (and writes) the sessions table."""
    from .cohort import write_subject

    rows = []
    for k, g in enumerate(growth):
        session = f"{k + 1:02d}"
        write_subject(Path(out), make_subject(grown_spec(spec, g), seed, size), naming, session)
        rows.append({"session_id": f"ses-{session}", "growth": g,
                     "acq_time": (BASELINE + timedelta(days=k * interval_days)).isoformat(timespec="seconds")})
    table = pd.DataFrame(rows)
    write_tsv(table, Path(out) / spec.participant_id / f"{spec.participant_id}_sessions.tsv")
    return table
