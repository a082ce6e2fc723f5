"""Follow-up (``followup.tsv``): where a participant has several segmented sessions, the volume change
per class between consecutive sessions (ordered by ``acq_time`` from ``sub-*_sessions.tsv`` when
given, else by session label): absolute, percent and, with acquisition times, per year; and a growth
plot per participant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..classes import CLASSES

COLUMNS = ["participant_id", "class", "from_session", "to_session", "from_cm3", "to_cm3", "change_cm3",
           "change_percent", "days", "change_cm3_per_year", "change_percent_per_year"]
DAYS_PER_YEAR = 365.25


def read_sessions(paths: list[str]) -> pd.DataFrame:
    """``participant_id, session_id, acq_time`` (datetime, NaT where missing) from sessions files."""
    frames = []
    for p in paths:
        t = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False, na_values=["n/a"])
        t["participant_id"] = Path(p).name.split("_sessions")[0]
        frames.append(t)
    out = pd.concat(frames) if frames else pd.DataFrame(columns=["participant_id", "session_id"])
    out["acq_time"] = pd.to_datetime(out.get("acq_time"), errors="coerce")
    return out[["participant_id", "session_id", "acq_time"]]


def session_volumes(volumes: pd.DataFrame, sessions: pd.DataFrame) -> pd.DataFrame:
    """Segmented sessions' volumes, one row per session and class, with acq_time, in time order."""
    v = volumes[(volumes["status"] == "ok") & volumes["session_id"].notna()]
    v = v[["participant_id", "session_id", "class", "volume_cm3"]].merge(
        sessions, on=["participant_id", "session_id"], how="left")
    if "acq_time" not in v:
        v["acq_time"] = pd.NaT
    return v.sort_values(["participant_id", "class", "acq_time", "session_id"], na_position="last")


def followup_table(volumes: pd.DataFrame, sessions: pd.DataFrame) -> pd.DataFrame:
    """Consecutive-session changes per participant and class."""
    rows = []
    for (pid, cls), g in session_volumes(volumes, sessions).groupby(["participant_id", "class"], sort=False):
        g = g.to_dict("records")
        for a, b in zip(g, g[1:]):
            change = float(b["volume_cm3"]) - float(a["volume_cm3"])
            pct = 100 * change / float(a["volume_cm3"]) if float(a["volume_cm3"]) > 0 else np.nan
            days = (b["acq_time"] - a["acq_time"]).total_seconds() / 86400 \
                if pd.notna(a["acq_time"]) and pd.notna(b["acq_time"]) else np.nan
            years = days / DAYS_PER_YEAR if days and np.isfinite(days) else np.nan
            rows.append({"participant_id": pid, "class": cls, "from_session": a["session_id"],
                         "to_session": b["session_id"], "from_cm3": a["volume_cm3"], "to_cm3": b["volume_cm3"],
                         "change_cm3": round(change, 4), "change_percent": round(pct, 2), "days": days,
                         "change_cm3_per_year": round(change / years, 4) if np.isfinite(years) else np.nan,
                         "change_percent_per_year": round(pct / years, 2) if np.isfinite(years) else np.nan})
    df = pd.DataFrame(rows, columns=COLUMNS)
    order = {c: i for i, c in enumerate(CLASSES)}
    return df.sort_values(["participant_id", "class"], key=lambda s: s.map(order) if s.name == "class" else s,
                          kind="stable").reset_index(drop=True)


def growth_figure(volumes: pd.DataFrame, sessions: pd.DataFrame, participant_id: str):
    """Volume per class against time (days since the first session, or session order) of one
    participant; a figure (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..evaluation.report import COLOURS, TITLES

    v = session_volumes(volumes, sessions)
    v = v[v["participant_id"] == participant_id]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    timed = v["acq_time"].notna().all() and len(v)
    for cls in CLASSES:
        g = v[v["class"] == cls]
        x = (g["acq_time"] - v["acq_time"].min()).dt.days if timed else np.arange(len(g))
        ax.plot(x, g["volume_cm3"].astype(float), "o-", color=COLOURS[cls], label=TITLES[cls])
    if not len(v):
        ax.text(0.5, 0.5, "no segmented session", ha="center", transform=ax.transAxes)
    ax.set(xlabel="days since first session" if timed else "session", ylabel="volume (cm³)",
           title=f"{participant_id}: volume per session")
    if not timed and len(v):
        labels = v.drop_duplicates("session_id")["session_id"]
        ax.set_xticks(range(len(labels)), labels)
    ax.legend(fontsize=7)
    return fig
