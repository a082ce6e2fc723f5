"""The run's HTML report (``results/report/index.html``): self-contained (figures embedded as PNG),
readable by a radiologist: sagittal views with superior up and anterior left, one colour per class
throughout, mm scales.

Sections: cohort (Tables 1-2 analogues), registration QC, training curves, Table 4, per tumor type,
Dice box plots, volume agreement (Bland-Altman), cascade vs single step, and Fig. 3-style panels of
the best, median and worst test case of each class.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..bids import subject_session  # noqa: E402
from ..classes import CLASSES, LESIONS  # noqa: E402
from ..io import atomic_path, load_image  # noqa: E402
from ..paths import prediction_file  # noqa: E402
from ..viz import busiest_sagittal_slice, normalize_intensity, overlay_masks, sagittal_view, scale_bar  # noqa: E402

COLOURS = {"tumor": "#e41a1c", "edema": "#ffb000", "cavity": "#1e90ff", "wholetumor": "#9b59b6"}
TITLES = {"tumor": "Tumor core", "edema": "Edema", "cavity": "Cavity", "wholetumor": "Whole tumor"}
SECTIONS = ("Cohort", "Registration QC", "Training", "Table 4", "Per tumor type", "Per acquisition",
            "Dice per class", "Volume agreement", "Cascade vs single step", "Class rule", "Postprocessing", "Examples")


@dataclass
class ReportInputs:
    participants: str  # participants.tsv (or the cohort table) with participant_id, tumor_type, ...
    grids: list[str]  # preprocessing grid JSONs (label volumes)
    registration: str  # registration summary TSV
    training_logs: dict[str, dict[str, str]]  # split -> {cord, tumor} -> log.tsv
    evaluation: dict[str, str]  # metrics, table4, per_type, per_acquisition, cascade, summary
    subjects: dict[str, dict] = field(default_factory=dict)  # key -> {t2w, t1w, gt: {...}}
    predictions: dict[str, str] = field(default_factory=dict)  # split -> the cascade's prediction folder
    model_folders: dict[str, str] = field(default_factory=dict)  # split -> the cascade's model.json


def _png(fig, dpi: int = 90) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _img(b64: str, alt: str, kind: str = "figure") -> str:
    return (f'<figure class="{kind}"><img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}"/>'
            f'<figcaption>{html.escape(alt)}</figcaption></figure>')


def _table(df: pd.DataFrame, index: bool = True) -> str:
    return df.to_html(index=index, classes="t", border=0, na_rep="n/a", float_format=lambda v: f"{v:.3g}")


def _read_table(path) -> pd.DataFrame:
    """An evaluation table as written, every cell text: ``n/a`` read as NaN would label a row "NaN", and a
    column of numbers would turn the split "00" into 0."""
    return pd.read_csv(path, sep="\t", index_col=0, keep_default_na=False, dtype=str)


def _mean_sd(s: pd.Series) -> str:
    s = pd.to_numeric(s, errors="coerce").dropna()
    return "n/a" if s.empty else f"{s.mean():.1f} ± {s.std():.1f}" if len(s) > 1 else f"{s.mean():.1f}"


def cohort_section(participants: pd.DataFrame, grids: list[str]) -> str:
    """Tables 1-2 analogues: participants per tumor type (the cohort table's sessions counted once) and
    label volumes per scan (subject and session)."""
    p = participants.drop_duplicates("participant_id").copy()
    p["tumor_type"] = p.get("tumor_type", pd.Series("n/a", index=p.index)).fillna("n/a")
    rows = {}
    for t, g in p.groupby("tumor_type"):
        r = {"subjects": len(g)}
        if "age" in g:
            r["age (years)"] = _mean_sd(g["age"])
        if "sex" in g:
            r["sex F/M"] = f"{(g['sex'] == 'F').sum()}/{(g['sex'] == 'M').sum()}"
        if "tumor_region" in g:
            r["region"] = ", ".join(f"{k} {v}" for k, v in g["tumor_region"].value_counts().items())
        rows[t] = r
    demo = pd.DataFrame(rows).T
    vols = []
    for gpath in grids:
        g = json.loads(Path(gpath).read_text())
        if "label_volumes_mm3" in g:
            scan = subject_session(gpath) or Path(gpath).name
            vols.append({"scan": scan, "participant_id": scan.partition("_ses-")[0],
                         **{k: v / 1000 for k, v in g["label_volumes_mm3"].items() if k in LESIONS}})
    out = "<h3>Subjects per tumor type (Table 1 analogue)</h3>" + _table(demo)
    if vols:
        v = pd.DataFrame(vols).merge(p[["participant_id", "tumor_type"]], on="participant_id", how="left")
        stats = v.groupby("tumor_type")[list(LESIONS)].agg(
            lambda s: f"{s.median():.2f} [{s.quantile(.25):.2f}-{s.quantile(.75):.2f}]; {int((s > 0).sum())} with")
        out += ("<h3>Label volumes, cm³: median [IQR]; subjects with the structure (Table 2 analogue)</h3>"
                + _table(stats.rename(columns=TITLES)))
    return out


def registration_section(reg: pd.DataFrame) -> str:
    counts = reg["method"].value_counts().rename("subjects").to_frame()
    flagged = reg[reg["flagged"].astype(str).str.lower() == "true"]
    s = reg[["score_scanner", "score_affine"]].apply(pd.to_numeric, errors="coerce")
    text = (f"<p>{len(reg)} subjects registered; {len(flagged)} flagged (fallback used). Normalised mutual "
            f"information, median: {s['score_scanner'].median():.4f} with the scanner alignment, "
            f"{s['score_affine'].median():.4f} after registration.</p>")
    out = text + _table(counts)
    if len(flagged):
        cols = [c for c in ("subject", "method", "gate_reasons", "disc_error_mm") if c in flagged]
        out += "<h3>Flagged subjects</h3>" + _table(flagged[cols], index=False)
    return out


def training_section(logs: dict[str, dict[str, str]]) -> str:
    kinds = [k for k in ("cord", "tumor", "single") if any(k in paths for paths in logs.values())]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds) + 1.2, 3.8))
    # one colour per split in every panel (tab10 would give split 10 split 0's colour), one legend
    # beside the panels: inside each, twelve splits' entries covered the curves
    cmap = plt.cm.tab10 if len(logs) <= 10 else plt.cm.tab20
    lines = {}
    for ax, kind in zip(axes, kinds):
        for k, (split, paths) in enumerate(sorted(logs.items())):
            if kind not in paths or not Path(paths[kind]).is_file():
                continue
            h = pd.read_csv(paths[kind], sep="\t")
            c = cmap(k % cmap.N)
            ax.plot(h["epoch"], h["train_loss"], color=c, lw=1, ls="--")
            lines[split] = ax.plot(h["epoch"], h["val_loss"], color=c, lw=1.5)[0]
        name = "single-step tumor" if kind == "single" else kind
        ax.set(title=f"{name} model", xlabel="epoch", ylabel="loss")
    fig.suptitle("Loss per split (dashed: training, solid: validation)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 1.1 / fig.get_figwidth(), 1))
    fig.legend(list(lines.values()), [f"split {s}" for s in sorted(lines)], fontsize=7, loc="center right",
               ncol=1 if len(lines) <= 12 else 2)
    return _img(_png(fig), "Training and validation loss per split")


def dice_boxplot(df: pd.DataFrame):
    d = df[df["mode"] == "cascade"]
    fig, ax = plt.subplots(figsize=(7, 4))
    data = [pd.to_numeric(d.loc[d["class"] == c, "dice"], errors="coerce").dropna() for c in CLASSES]
    bp = ax.boxplot(data, patch_artist=True, widths=0.5, showfliers=False)
    ax.set_xticks(range(1, len(CLASSES) + 1), [TITLES[c] for c in CLASSES])
    for patch, c in zip(bp["boxes"], CLASSES):
        patch.set(facecolor=COLOURS[c], alpha=0.45)
    rng = np.random.default_rng(0)
    for i, (vals, c) in enumerate(zip(data, CLASSES), start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(vals)), vals, s=10, color=COLOURS[c], edgecolor="k", lw=0.3)
    ax.set(ylabel="Dice", ylim=(-0.02, 1.02), title="Dice per class: every test case of every split (cascade)")
    return fig


def bland_altman(df: pd.DataFrame):
    d = df[df["mode"] == "cascade"]
    fig, axes = plt.subplots(1, len(CLASSES), figsize=(4 * len(CLASSES), 3.6))
    for ax, c in zip(axes, CLASSES):
        s = d[d["class"] == c]
        g, p = s["volume_gt_mm3"].astype(float) / 1000, s["volume_pred_mm3"].astype(float) / 1000
        mean, diff = (g + p) / 2, p - g
        ax.scatter(mean, diff, s=12, color=COLOURS[c], edgecolor="k", lw=0.3)
        if len(diff):
            m, sd = diff.mean(), diff.std() if len(diff) > 1 else 0.0
            for y, ls in ((m, "-"), (m + 1.96 * sd, "--"), (m - 1.96 * sd, "--")):
                ax.axhline(y, color="k", ls=ls, lw=0.8)
            ax.text(0.02, 0.95, f"bias {m:+.2f} cm³\nLoA ±{1.96 * sd:.2f}", transform=ax.transAxes, va="top",
                    fontsize=7)
        ax.set(title=TITLES[c], xlabel="mean volume (cm³)", ylabel="prediction − truth (cm³)")
    fig.suptitle("Volume agreement (Bland-Altman; lines: bias and 95% limits of agreement)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def postprocess_section(model_jsons: dict[str, str]) -> str:
    """The smallest kept object per class and split, as each cascade model folder applies it: the
    configured floors, or those chosen on the split's validation subjects (postprocess.tune)."""
    if not model_jsons:
        return "<p>n/a</p>"
    rows, tuned = {}, False
    for split, path in sorted(model_jsons.items()):
        post = json.loads(Path(path).read_text())["postprocess"]
        tuning = post.get("tuning")
        row = {TITLES[c]: post["min_volume_mm3"].get(c, 0.0) / 1000 for c in CLASSES}
        if tuning:
            tuned = True
            scores = pd.DataFrame(tuning["scores"])
            gain = []
            for c, g in scores.groupby("class", sort=False):
                chosen, configured = g.loc[g["chosen"], "dice"], g.loc[g["configured"], "dice"]
                if not g.loc[g["chosen"], "configured"].iloc[0]:
                    gain.append(f"{TITLES[c]} {100 * (chosen.iloc[0] - configured.iloc[0]):+.1f}")
            n, tuned_classes = len(tuning["subjects"]), ", ".join(TITLES[c].lower() for c in scores["class"].unique())
            row["set by"] = f"{n} validation subject{'' if n == 1 else 's'} ({tuned_classes}; the rest configured)"
            row["validation Dice gained (points)"] = ", ".join(gain) or "none (configured kept)"
        else:
            row["set by"] = "configuration"
        rows[f"split {split}"] = row
    text = ("<p>Objects smaller than these (cm³) are removed from each class (paper section 2.5: 0.2 tumor, "
            "0.5 edema and cavity). ")
    if tuned:
        text += ("Chosen per split on its validation subjects (<code>postprocess.tune</code>; not in the paper): "
                 "the configured floor, unless a candidate (by default only smaller ones) gains at least "
                 "<code>min_gain</code> mean validation Dice; then, of the candidates within <code>min_gain</code> "
                 "of the best, the one nearest the configured floor; chosen for the configured class rule, and "
                 "applied to the other rule's masks too.</p>")
    else:
        text += "From <code>postprocess.min_volume_cm3</code>.</p>"
    return text + _table(pd.DataFrame.from_dict(rows, orient="index"))


def example_panel(case: dict, pred_dir: Path, title: str):
    """One row: T2w, T1w, ground truth, prediction, in the sagittal slice with the most ground truth."""
    t2 = load_image(case["t2w"])

    def data(path) -> np.ndarray:
        return np.asanyarray(load_image(path).dataobj)

    gt = {c: (data(case["gt"][c]) > 0).astype(np.uint8) for c in LESIONS}
    pr = {c: (data(prediction_file(pred_dir, f"sub-{case['key']}", c)) > 0).astype(np.uint8) for c in LESIONS}
    x = busiest_sagittal_slice(gt["tumor"] | gt["edema"] | gt["cavity"], t2.affine)

    def sag(a: np.ndarray) -> np.ndarray:
        return sagittal_view(a, t2.affine, x)[0]

    s2, asp, _ = sagittal_view(np.asanyarray(t2.dataobj), t2.affine, x)
    s1 = sag(data(case["t1w"]))
    ext = (0, s2.shape[1] * asp[1], 0, s2.shape[0] * asp[0])
    fig, axes = plt.subplots(1, 4, figsize=(10, 4.2))
    for ax, (name, base, overlay) in zip(axes, (("T2w", s2, None), ("T1w (Gd)", s1, None),
                                                ("ground truth", s2, gt), ("prediction", s2, pr))):
        ax.imshow(normalize_intensity(base), cmap="gray", extent=ext, interpolation="nearest")
        if overlay:
            overlay_masks(ax, {c: overlay[c] for c in LESIONS}, t2.affine, x, COLOURS, ext)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        scale_bar(ax)
    axes[-1].legend(handles=[Patch(color=COLOURS[c], label=TITLES[c]) for c in LESIONS], fontsize=7,
                    loc="upper right", framealpha=0.7)
    fig.suptitle(title + "  (sagittal; superior up, anterior left)", fontsize=10)
    return fig


def examples_section(df: pd.DataFrame, subjects: dict[str, dict], pred_dirs: dict[str, str]) -> str:
    d = df[(df["mode"] == "cascade")].copy()
    d["dice"] = pd.to_numeric(d["dice"], errors="coerce")
    out = []
    for c in CLASSES:
        s = d[(d["class"] == c)].dropna(subset=["dice"]).sort_values("dice")
        if s.empty:
            continue
        picks = {"worst": s.iloc[0], "median": s.iloc[len(s) // 2], "best": s.iloc[-1]}
        out.append(f"<h3>{TITLES[c]}</h3>")
        for label, r in picks.items():
            key = str(r["subject"])
            if key not in subjects:
                continue
            case = {"key": key, **subjects[key]}
            pred_dir = pred_dirs[str(r["split"])]
            title = f"{TITLES[c]}, {label}: sub-{key}, split {r['split']}, {r['tumor_type']}, Dice {r['dice']:.2f}"
            out.append(_img(_png(example_panel(case, pred_dir, title), dpi=80), title, "Fig3-panel"))
    return "".join(out)


CSS = ("body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;"
       "color:#222}\n"
       "h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}\n"
       "table.t{border-collapse:collapse;font-size:.85em;margin:.5em 0}"
       "table.t td,table.t th{border:1px solid #ddd;padding:3px 8px;text-align:right}\n"
       "table.t th{background:#f4f4f4}figure{margin:1em 0}figure img{max-width:100%}"
       "figcaption{font-size:.8em;color:#555}\n"
       "nav a{margin-right:1em}")


def build_report(inp: ReportInputs, out_html, figures_dir=None) -> Path:
    """Write the report; with ``figures_dir``, also the main figures as PNG files (for
    ``snakemake --report``)."""
    from .. import __version__

    ev = inp.evaluation
    df = pd.read_csv(ev["metrics"], sep="\t", dtype={"split": str, "subject": str})
    summary = json.loads(Path(ev["summary"]).read_text())
    pngs = {"dice_boxplot": _png(dice_boxplot(df)), "volume_bland_altman": _png(bland_altman(df))}
    if figures_dir is not None:
        for name, b64 in pngs.items():
            with atomic_path(Path(figures_dir) / f"{name}.png") as tmp:
                tmp.write_bytes(base64.b64decode(b64))
    inc = summary.get("crop_inclusion_rate")
    cd = summary.get("cord_dice_mean")
    sections = {
        "Cohort": cohort_section(pd.read_csv(inp.participants, sep="\t", dtype=str), inp.grids),
        "Registration QC": registration_section(pd.read_csv(inp.registration, sep="\t")),
        "Training": training_section(inp.training_logs),
        "Table 4": ("<p>Cascaded model, test cases; mean over each split's test subjects, then mean ± std across "
                    f"{summary['splits']} split(s), in percent (paper Table 4).</p>"
                    + _table(_read_table(ev["table4"]))),
        "Per tumor type": "<p>Dice (%), cascaded model.</p>" + _table(_read_table(ev["per_type"])),
        "Per acquisition": (
            "<p>Dice (%), cascaded model, per acquisition (synthetic cohort: clinical sagittal series and 3-D "
            "research blocks; per participant, a cohort's own <code>acquisition</code> column in participants.tsv, "
            "else n/a).</p>"
            + (_table(_read_table(ev["per_acquisition"])) if ev.get("per_acquisition") else "<p>n/a</p>")),
        "Dice per class": _img(pngs["dice_boxplot"], "Dice per class across test cases and splits"),
        "Volume agreement": _img(pngs["volume_bland_altman"], "Predicted vs ground-truth volume"),
        "Cascade vs single step": (
            _table(_read_table(ev["cascade"]))
            + "<p>The cascade crop held every ground-truth structure in "
              f"{'n/a' if inc is None else f'{100 * inc:.1f}%'} "
              f"of {summary['test_cases']} test cases (paper: 99.4%); cord localisation Dice against the 30 mm mask "
              f"{'n/a' if cd is None else f'{cd:.3f}'}; cord not found in {summary['cord_not_found']} case(s).</p>"),
        "Class rule": (
            "<p>Dice (%) with each sigmoid output thresholded at 0.5 on its own (the paper, section 2.5) and "
            "with exclusive classes (a voxel above threshold in several of tumor, edema and cavity goes to the "
            "most specific: tumor, then cavity, then edema); <code>postprocess.exclusive</code> picks the one "
            "the model folders use.</p>"
            + (_table(_read_table(ev["postprocess"])) if ev.get("postprocess") else "<p>n/a</p>")),
        "Postprocessing": postprocess_section(inp.model_folders),
        "Examples": examples_section(df, inp.subjects, inp.predictions),
    }
    return write_page("imsct report", "imsct: intramedullary spinal cord tumor segmentation",
                      f"imsct {__version__}; {summary['test_cases']} test cases over {summary['splits']} split(s), "
                      f"{df['subject'].nunique()} distinct subjects (random splits may test a subject more than "
                      "once).", sections, out_html)


def write_page(title: str, heading: str, intro_html: str, sections: dict[str, str], out_html) -> Path:
    """One self-contained HTML page: a heading, an introduction, a navigation bar and the sections
    (title -> HTML), written atomically."""
    nav = "".join(f'<a href="#s{i}">{html.escape(k)}</a>' for i, k in enumerate(sections))
    body = "".join(f'<h2 id="s{i}">{html.escape(k)}</h2>{v}' for i, (k, v) in enumerate(sections.items()))
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}"
           f"</style></head><body><h1>{html.escape(heading)}</h1><p>{intro_html}</p><nav>{nav}</nav>{body}</body></html>")
    out = Path(out_html)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(doc, encoding="utf-8")
    return out
