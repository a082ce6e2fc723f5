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


def make_split(table: pd.DataFrame, seed: int, fractions=(0.6, 0.2, 0.2), key: str = "participant_id",
               strata: str = "tumor_type", region: str = "tumor_region") -> pd.DataFrame:
    """One split: a copy of ``table[[key, strata, region]]`` with a ``set`` column.

    Per tumor type, non-lumbar subjects are shuffled and cut by the fractions, with the test share
    computed on the whole type (so the test set keeps the paper's proportions); lumbar subjects are
    shared between train and validation in the train:val ratio.
    """
    if abs(sum(fractions) - 1) > 1e-6 or len(fractions) != 3:
        raise ValueError(f"split fractions must be three numbers summing to 1, got {list(fractions)}")
    rng = np.random.default_rng(seed)
    out = table[[key, strata, region]].copy() if region in table else table[[key, strata]].assign(**{region: ""})
    out["set"] = ""
    for _, group in out.groupby(strata, sort=True):
        idx = group.index.to_numpy()
        lumbar = idx[(group[region] == "lumbar").to_numpy()]
        other = idx[(group[region] != "lumbar").to_numpy()]
        n_test = min(_allocate(len(idx), fractions)[2], len(other))
        other = rng.permutation(other)
        out.loc[other[:n_test], "set"] = "test"
        rest = rng.permutation(np.concatenate([other[n_test:], lumbar]))
        tv = np.asarray(fractions[:2]) / sum(fractions[:2])
        n_train, _ = _allocate(len(rest), [tv[0], tv[1]])
        out.loc[rest[:n_train], "set"] = "train"
        out.loc[rest[n_train:], "set"] = "val"
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
