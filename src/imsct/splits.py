"""Random train/validation/test splits (paper section 2.4.3): stratified by tumor type; subjects with
a lumbar tumor are only ever in training or validation (the authors kept them out of the test set).

Pure functions of (subjects, seed): the workflow calls them at parse time to know every split's test
subjects (no checkpoint), and a rule writes the same result to files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .io import write_tsv

SETS = ("train", "val", "test")


def _allocate(n: int, fractions) -> list[int]:
    """Integer sizes for train/val/test summing to n (largest remainder), every set non-empty when
    n allows it."""
    raw = np.asarray(fractions, dtype=float) * n
    sizes = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - sizes))[: n - sizes.sum()]:
        sizes[i] += 1
    return sizes.tolist()


def split_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per participant, sorted, with the columns splitting needs (the same table whether it
    comes from the phantom plan or a discovered cohort, so parse time and the rule agree)."""
    cols = [c for c in ("participant_id", "tumor_type", "tumor_region") if c in df.columns]
    out = df[cols].drop_duplicates("participant_id").sort_values("participant_id").reset_index(drop=True)
    if "tumor_type" not in out:
        out["tumor_type"] = "unknown"
    if "tumor_region" not in out:
        out["tumor_region"] = ""
    out["tumor_type"] = out["tumor_type"].fillna("unknown").astype(str)
    out["tumor_region"] = out["tumor_region"].fillna("").astype(str)
    return out


def _apportion(total: int, weights, caps, rng: np.random.Generator) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights``, none above its cap (largest
    remainder; ties broken at random)."""
    weights, caps = np.asarray(weights, float), np.asarray(caps, int)
    total = int(min(total, caps.sum()))
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(weights), int)
    raw = total * weights / weights.sum()
    out = np.minimum(np.floor(raw).astype(int), caps)
    while out.sum() < total:
        room = out < caps
        order = np.lexsort((rng.random(len(raw)), -(raw - out)))  # largest remainder first
        out[[i for i in order if room[i]][0]] += 1
    return out


def make_split(table: pd.DataFrame, seed: int, fractions=(0.6, 0.2, 0.2), key: str = "participant_id",
               strata: str = "tumor_type", region: str = "tumor_region") -> pd.DataFrame:
    """One split: a copy of ``table[[key, strata, region]]`` with a ``set`` column.

    The test and validation set sizes come from the fractions of the whole cohort, then are shared
    among tumor types in proportion to their sizes (so the test set keeps the paper's proportions, and
    a small cohort still gets a test set: per-type rounding alone gave none for 8 subjects). Lumbar
    subjects are never in the test set.
    """
    if abs(sum(fractions) - 1) > 1e-6 or len(fractions) != 3:
        raise ValueError(f"split fractions must be three numbers summing to 1, got {list(fractions)}")
    rng = np.random.default_rng(seed)
    out = table[[key, strata, region]].copy() if region in table else table[[key, strata]].assign(**{region: ""})
    out["set"] = ""
    groups = [(name, rng.permutation(g.index[(g[region] != "lumbar").to_numpy()]),
               g.index[(g[region] == "lumbar").to_numpy()]) for name, g in out.groupby(strata, sort=True)]
    sizes = [len(o) + len(lu) for _, o, lu in groups]
    _, n_val, n_test = _allocate(len(out), fractions)
    n_test_per = _apportion(n_test, sizes, [len(o) for _, o, _ in groups], rng)
    rests = []
    for (_, other, lumbar), k in zip(groups, n_test_per):
        out.loc[other[:k], "set"] = "test"
        rests.append(rng.permutation(np.concatenate([other[k:], lumbar]).astype(int)))
    n_left = sum(len(r) for r in rests)
    n_val_per = _apportion(min(n_val, n_left - 1), [len(r) for r in rests], [len(r) for r in rests], rng)
    for rest, k in zip(rests, n_val_per):
        out.loc[rest[:k], "set"] = "val"
        out.loc[rest[k:], "set"] = "train"
    return out


def make_splits(table: pd.DataFrame, n_splits: int, seed: int, fractions=(0.6, 0.2, 0.2), **kw) -> list[pd.DataFrame]:
    if n_splits < 1:
        raise ValueError(f"n_splits must be at least 1, got {n_splits}")
    return [make_split(table, seed * 1000 + i, fractions, **kw) for i in range(n_splits)]


def write_splits(splits: list[pd.DataFrame], out_dir) -> list[Path]:
    """``split-XX.tsv`` per split and ``summary.tsv`` (counts per set and tumor type)."""
    out_dir = Path(out_dir)
    paths = []
    rows = []
    for i, df in enumerate(splits):
        p = out_dir / f"split-{i:02d}.tsv"
        write_tsv(df, p)
        paths.append(p)
        for (s, t), n in df.groupby(["set", "tumor_type"]).size().items():
            rows.append({"split": i, "set": s, "tumor_type": t, "n": int(n)})
    write_tsv(pd.DataFrame(rows), out_dir / "summary.tsv")
    return paths


def participant_of(key: str) -> str:
    """The participant (``sub-01``) of a subject key (``01`` or ``01_ses-02``): sessions follow
    their participant into its set."""
    return f"sub-{key.split('_ses-')[0]}"


def split_members(split: pd.DataFrame, keys, which: str) -> list[str]:
    """Subject keys (sessions included) of one set (train, val, test) of a split table."""
    pids = set(split.loc[split["set"] == which, "participant_id"])
    return [k for k in keys if participant_of(k) in pids]
