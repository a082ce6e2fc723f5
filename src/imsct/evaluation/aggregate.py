"""Aggregation over subjects and splits, as the paper reports it (Table 4): the mean over each
split's test subjects, then the mean and standard deviation across splits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..classes import CLASSES

TABLE_METRICS = ("dice", "precision", "recall", "detection_tpr", "detection_fdr", "rel_volume_diff",
                 "abs_volume_diff")
LABELS = {"dice": "Dice", "precision": "Precision", "recall": "Recall", "detection_tpr": "Lesion TPR",
          "detection_fdr": "Lesion FDR", "rel_volume_diff": "Relative volume difference",
          "abs_volume_diff": "Absolute volume difference", "seconds": "Inference time (s)"}


def _numeric(df: pd.DataFrame, cols) -> pd.DataFrame:
    return df.assign(**{c: pd.to_numeric(df[c], errors="coerce") for c in cols})


def across_splits(df: pd.DataFrame, by: list[str], metrics=TABLE_METRICS) -> pd.DataFrame:
    """Mean per split over subjects (undefined values skipped), then mean, std and number of splits
    across splits, for each group of ``by``. Index: ``by`` + metric; columns mean, std, n_splits."""
    df = _numeric(df, metrics)
    per_split = df.groupby(["split", *by], dropna=False)[list(metrics)].mean()
    long = (per_split.stack(future_stack=True).rename("value").reset_index()
            .rename(columns={f"level_{len(by) + 1}": "metric"}))
    g = long.groupby([*by, "metric"], dropna=False)["value"]
    return pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n_splits": g.count()})


def fmt(mean: float, std: float, percent: bool) -> str:
    if not np.isfinite(mean):
        return "n/a"
    k = 100.0 if percent else 1.0
    s = f"{mean * k:.1f}" if percent else f"{mean:.2f}"
    if np.isfinite(std):
        s += f" ± {std * k:.1f}" if percent else f" ± {std:.2f}"
    return s


def table4(df: pd.DataFrame, mode: str = "cascade") -> pd.DataFrame:
    """Rows = metrics, columns = the four classes, cells ``mean ± std`` in percent (Table 4's
    layout)."""
    a = across_splits(df[df["mode"] == mode], ["class"])
    out = pd.DataFrame(index=[LABELS[m] for m in TABLE_METRICS], columns=list(CLASSES))
    for (cls, metric), r in a.iterrows():
        out.loc[LABELS[metric], cls] = fmt(r["mean"], r["std"], True)
    return out.fillna("n/a")


def per_group(df: pd.DataFrame, by: str, mode: str = "cascade", metric: str = "dice") -> pd.DataFrame:
    """``metric`` per value of the subject column ``by`` (rows: tumor type, acquisition) and class
    (columns), mean ± std across splits, percent; first column the number of test cases."""
    sub = df[df["mode"] == mode]
    sub = sub.assign(**{by: sub[by].fillna("n/a") if by in sub else "n/a"})
    a = across_splits(sub, [by, "class"], (metric,))
    out = a.reset_index().pivot(index=by, columns="class", values=["mean", "std"])
    table = pd.DataFrame(index=out.index, columns=[c for c in CLASSES if c in out["mean"].columns])
    for t in table.index:
        for c in table.columns:
            table.loc[t, c] = fmt(out.loc[t, ("mean", c)], out.loc[t, ("std", c)], True)
    n = sub.drop_duplicates(["split", "subject"]).groupby(by).size()
    table.insert(0, "test cases", n.reindex(table.index).fillna(0).astype(int))
    return table


def per_type(df: pd.DataFrame, mode: str = "cascade", metric: str = "dice") -> pd.DataFrame:
    """``metric`` per tumor type (rows) and class (columns), mean ± std across splits, percent."""
    return per_group(df, "tumor_type", mode, metric)


def per_acquisition(df: pd.DataFrame, mode: str = "cascade", metric: str = "dice") -> pd.DataFrame:
    """``metric`` per acquisition (rows; the phantoms' ``sagittal`` clinical series and ``block``
    research volumes, or a cohort's own ``acquisition`` column, else ``n/a``) and class: a mixed
    cohort's test cases do not all look alike, and a mean over them hides which ones fail."""
    return per_group(df, "acquisition", mode, metric)


def seconds_per_epoch(train_logs: list[str]) -> dict[str, float]:
    """Mean training seconds per epoch (the training pass, validation excluded: the two models'
    validation sets differ in size) of the cascade's tumor model and of the single-step model, from
    their ``log.tsv`` files (``.../split-XX/{tumor,single}/log.tsv``)."""
    from pathlib import Path

    out: dict[str, list] = {}
    for p in train_logs:
        kind = Path(p).parent.name
        log = pd.read_csv(p, sep="\t")
        if len(log):
            col = "train_seconds" if "train_seconds" in log else "seconds"
            out.setdefault("cascade" if kind == "tumor" else kind, []).append(float(log[col].mean()))
    return {k: float(np.mean(v)) for k, v in out.items()}


def cascade_vs_single(df: pd.DataFrame, train_logs: list[str] | None = None) -> pd.DataFrame:
    """Dice per class, inference time per subject and training seconds per epoch, cascaded vs
    single-step (paper section 3.3), on the splits where the single-step model was trained (the same
    test subjects for both)."""
    splits = set(df.loc[df["mode"] == "single", "split"])
    df = df[df["split"].isin(splits)]
    epochs = seconds_per_epoch(train_logs or [])
    rows = {}
    for mode in ("cascade", "single"):
        sub = df[df["mode"] == mode]
        if sub.empty:
            continue
        d = across_splits(sub, ["class"], ("dice",))
        row = {f"Dice {c}": fmt(d.loc[(c, "dice"), "mean"], d.loc[(c, "dice"), "std"], True)
               for c in CLASSES if (c, "dice") in d.index}
        t = across_splits(sub[sub["class"] == "wholetumor"], [], ("seconds",))
        row[LABELS["seconds"]] = fmt(t["mean"].iloc[0], t["std"].iloc[0], False)
        row["Training time per epoch (s)"] = f"{epochs[mode]:.1f}" if mode in epochs else "n/a"
        row["Splits"] = ", ".join(sorted(splits))
        rows[mode] = row
    return pd.DataFrame(rows)


def class_rules(df: pd.DataFrame) -> pd.DataFrame:
    """Dice per class with each sigmoid output thresholded on its own (the paper) and with exclusive
    classes (most specific wins), for every mode that has both."""
    rows = {}
    for mode in sorted(m for m in df["mode"].unique() if "-" not in m):
        for sub_mode in (mode, *[m for m in df["mode"].unique() if m.startswith(mode + "-")]):
            sub = df[df["mode"] == sub_mode]
            if sub.empty:
                continue
            rule = "exclusive" if bool(sub["exclusive"].astype(str).str.lower().eq("true").all()) else "independent"
            d = across_splits(sub, ["class"], ("dice",))
            rows[f"{mode}, {rule}"] = {f"Dice {c}": fmt(d.loc[(c, "dice"), "mean"], d.loc[(c, "dice"), "std"], True)
                                       for c in CLASSES if (c, "dice") in d.index}
    return pd.DataFrame(rows)


def cascade_summary(df: pd.DataFrame) -> dict:
    """Cord Dice and the share of subjects whose every structure lay inside the cascade crop
    (paper: 99.4%), over all test cases of all splits."""
    sub = df[(df["mode"] == "cascade") & (df["class"] == "wholetumor")]
    inc = (pd.to_numeric(sub["crop_contains_all"], errors="coerce") if "crop_contains_all" in sub
           else pd.Series(dtype=float))
    cd = pd.to_numeric(sub["cord_dice"], errors="coerce") if "cord_dice" in sub else pd.Series(dtype=float)
    return {"test_cases": int(len(sub)), "crop_inclusion_rate": float(inc.mean()) if inc.notna().any() else None,
            "cord_dice_mean": float(cd.mean()) if cd.notna().any() else None,
            "cord_dice_std": float(cd.std()) if cd.notna().sum() > 1 else None,
            "cord_not_found": int(sub["cord_fallback"].astype(bool).sum()) if "cord_fallback" in sub else 0}


def _mean_dice(df: pd.DataFrame, mode: str, cls: str) -> float | None:
    """Mean over splits of each split's mean test Dice (Table 4's figure), as a fraction."""
    sub = df[(df["mode"] == mode) & (df["class"] == cls)]
    if sub.empty:
        return None
    v = across_splits(sub, [], ("dice",))["mean"]
    return float(v.iloc[0]) if len(v) and np.isfinite(v.iloc[0]) else None


def to_markdown(table: pd.DataFrame, index_name: str = "") -> str:
    """A GitHub Markdown table, written here to avoid the optional `tabulate` dependency of pandas."""
    cols = [index_name, *map(str, table.columns)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] * len(cols)) + "|"]
    for idx, r in table.iterrows():
        lines.append("| " + " | ".join([str(idx), *map(str, r.values)]) + " |")
    return "\n".join(lines) + "\n"


def write_tables(split_tsvs: list[str], out: dict[str, str], train_logs: list[str] | None = None) -> dict:
    """Read the per-split evaluation tables; write the long table (``metrics``), Table 4 (``table4``),
    per tumor type (``per_type``), per acquisition (``per_acquisition``, where given), cascade vs
    single (``cascade``), all of them as Markdown (``markdown``) and the cascade summary (``summary``,
    JSON)."""
    from ..io import write_json, write_text, write_tsv

    df = pd.concat([pd.read_csv(p, sep="\t", dtype={"split": str, "subject": str}) for p in split_tsvs],
                   ignore_index=True)
    t4, pt, cs = table4(df), per_type(df), cascade_vs_single(df, train_logs)
    rules = class_rules(df)
    summary = {"splits": int(df["split"].nunique()), **cascade_summary(df)}
    write_tsv(df, out["metrics"])
    write_tsv(t4.rename_axis("metric").reset_index(), out["table4"])
    write_tsv(pt.rename_axis("tumor_type").reset_index(), out["per_type"])
    pa = per_acquisition(df)
    if "per_acquisition" in out:
        write_tsv(pa.rename_axis("acquisition").reset_index(), out["per_acquisition"])
    write_tsv(cs.rename_axis("measure").reset_index(), out["cascade"])
    if "postprocess" in out:
        write_tsv(rules.rename_axis("measure").reset_index(), out["postprocess"])
    summary["dice_mean"] = {c: _mean_dice(df, "cascade", c) for c in CLASSES}
    write_json(summary, out["summary"])
    inc = summary["crop_inclusion_rate"]
    md = [f"# Evaluation over {summary['splits']} split(s), {summary['test_cases']} test cases\n",
          "Mean over each split's test subjects, then mean ± std across splits (percent).\n",
          "## Table 4: cascaded model\n", to_markdown(t4, "metric"),
          "\n## Dice per tumor type\n", to_markdown(pt, "tumor type"),
          "\n## Dice per acquisition\n", to_markdown(pa, "acquisition"),
          "\n## Cascade vs single step\n", to_markdown(cs, "measure"),
          "\n## Class rule: each output thresholded on its own (paper) vs exclusive classes\n",
          to_markdown(rules, "measure"),
          f"\nCascade crop held every ground-truth structure in "
          f"{'n/a' if inc is None else f'{100 * inc:.1f}%'} of test cases (paper: 99.4%); "
          f"cord not found in {summary['cord_not_found']}.\n"]
    write_text("".join(md), out["markdown"])
    return summary
