"""The cohort's HTML page (``report.html``): self-contained (figures embedded as PNG), flagged scans
(the models disagree) first: the volumetry table, follow-up with growth plots, and a sagittal panel
per scan with the masks (superior up, anterior left)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..evaluation.report import COLOURS, TITLES, _img, _png, _table, write_page
from ..io import load_image
from ..viz import busiest_sagittal_slice, normalize_intensity, overlay_masks, sagittal_view, scale_bar


def scan_panel(record: dict):
    """T2w alone and with the masks (whole tumor outlined by its classes), in the sagittal slice with
    the most whole tumor; with probability maps, the whole-tumor probability as a third panel."""
    import matplotlib.pyplot as plt

    t2 = load_image(record["t2w"])
    masks = {c: np.asanyarray(load_image(record["masks"][c]).dataobj) > 0 for c in ("edema", "cavity", "tumor")}
    x = busiest_sagittal_slice(np.asanyarray(load_image(record["masks"]["wholetumor"]).dataobj) > 0, t2.affine)
    s2, asp, _ = sagittal_view(np.asanyarray(t2.dataobj), t2.affine, x)
    ext = (0, s2.shape[1] * asp[1], 0, s2.shape[0] * asp[0])
    prob = record.get("probabilities", {}).get("wholetumor")
    fig, axes = plt.subplots(1, 3 if prob else 2, figsize=(7.5 if prob else 5, 4))
    for k, ax in enumerate(axes):
        ax.imshow(normalize_intensity(s2), cmap="gray", extent=ext, interpolation="nearest")
        if k == 1:
            overlay_masks(ax, masks, t2.affine, x, COLOURS, ext)
        if k == 2:
            p = sagittal_view(np.asanyarray(load_image(prob).dataobj), t2.affine, x)[0]
            ax.imshow(np.ma.masked_less(p, 0.05), cmap="magma", vmin=0, vmax=1, extent=ext, alpha=0.8,
                      interpolation="nearest")
        ax.set_title(("T2w", "masks", "whole-tumor probability")[k], fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        scale_bar(ax)
    fig.suptitle(f"sub-{record['key']}  (sagittal; superior up, anterior left)", fontsize=9)
    return fig


def _order(volumes: pd.DataFrame) -> list[str]:
    """Scan keys: flagged first, then skipped, then the rest, each in key order."""
    per_scan = volumes.groupby("key", sort=True).agg(flagged=("flagged", "any"), status=("status", "first"))
    rank = np.where(per_scan["flagged"], 0, np.where(per_scan["status"] != "ok", 1, 2))
    return list(per_scan.index[np.argsort(rank, kind="stable")])


def build_report(volumes_tsv, followup_tsv, records: list[str], growth_pngs: list[str], out_html,
                 models: list[str], threshold: float) -> Path:
    """Write the page from the tables, the segmentation records and the growth plots."""
    from .. import __version__

    vol = pd.read_csv(volumes_tsv, sep="\t", dtype={"key": str})
    fol = pd.read_csv(followup_tsv, sep="\t")
    recs = {r["key"]: r for r in (json.loads(Path(p).read_text()) for p in records)}
    order = _order(vol)
    vol = vol.set_index("key").loc[order].reset_index()
    scans = vol.drop_duplicates("key")
    n_ok, n_flag = int((scans["status"] == "ok").sum()), int(scans["flagged"].sum())
    summary = (f"<p>{len(scans)} scan(s) of {vol['participant_id'].nunique()} participant(s); {n_ok} segmented, "
               f"{len(scans) - n_ok} skipped; {n_flag} flagged (the split models' whole-tumor masks agree with a "
               f"mean pairwise Dice below {threshold}). Ensemble of {len(models)} model folder(s).</p>")
    flagged = scans[scans["flagged"]]
    if len(flagged):
        summary += "<h3>Flagged</h3><ul>" + "".join(f"<li>sub-{html.escape(k)}</li>" for k in flagged["key"]) + "</ul>"
    skipped = scans[scans["status"] != "ok"]
    if len(skipped):
        summary += "<h3>Skipped</h3>" + _table(skipped[["key", "status"]], index=False)
    cols = ["key", "class", "volume_cm3", "si_extent_mm", "n_lesions", "vertebral_levels", "cord_volume_cm3",
            "agreement_dice", "flagged"]
    table = _table(vol.loc[vol["status"] == "ok", cols], index=False)
    growth = "".join(_img(base64.b64encode(Path(p).read_bytes()).decode(), Path(p).stem, "growth")
                     for p in sorted(growth_pngs))
    follow = (_table(fol, index=False) if len(fol) else "<p>No participant has two segmented sessions.</p>") + growth
    panels = "".join(_img(_png(scan_panel(recs[k]), dpi=80), f"sub-{k}" + (" (flagged)" if f else ""), "scan-panel")
                     for k, f in zip(scans["key"], scans["flagged"]) if recs.get(k, {}).get("status") == "ok")
    sections = {"Summary": summary, "Volumetry": table, "Follow-up": follow, "Scans": panels}
    legend = " ".join(f'<span style="color:{COLOURS[c]}">■ {TITLES[c]}</span>' for c in ("tumor", "edema", "cavity"))
    return write_page("imsct apply report", "imsct: segmentation of a new cohort",
                      f"imsct {__version__}. Masks: {legend}", sections, out_html)
