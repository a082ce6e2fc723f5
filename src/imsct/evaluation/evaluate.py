"""Per-subject evaluation of the workflow's predictions (on the T2w's own grid): the paper's metrics
for tumor, edema, cavity and the whole tumor, cord localisation Dice, whether the cascade crop held
every ground-truth structure, and the inference times from the prediction sidecars."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..classes import CLASSES, OUTPUTS
from ..io import load_image
from ..paths import prediction_file
from .metrics import DEFAULT_OVERLAP_MM3, compare, ground_truth_masks, load_mask, voxel_volume_mm3


def prediction_paths(pred_dir, base: str) -> dict[str, Path]:
    return {c: Path(prediction_file(pred_dir, base, c)) for c in OUTPUTS}


def crop_contains(crop: list[list[int]] | None, working_labels: dict[str, str]) -> dict:
    """Share of each ground-truth structure (on the working grid) inside the cascade crop: the region
    the tumor model saw (``[start, stop]`` per axis, may reach past the image; None = everything)."""
    out = {}
    for name, path in working_labels.items():
        m = load_mask(path)
        inside = np.zeros_like(m)
        if crop is None:
            inside[...] = True
        else:
            inside[tuple(slice(max(a, 0), max(b, 0)) for a, b in crop)] = True
        n = int(m.sum())
        out[name] = 1.0 if n == 0 else float((m & inside).sum() / n)
    return out


def evaluate_subject(gt: dict[str, str], pred_dir, base: str, cord_gt: str | None = None,
                     working_labels: dict[str, str] | None = None,
                     overlap_mm3: float = DEFAULT_OVERLAP_MM3) -> tuple[pd.DataFrame, dict]:
    """Metrics of one subject's predictions in ``pred_dir`` (:func:`imsct.paths.prediction_file`).

    ``gt`` maps tumor, edema and cavity to ground-truth masks on the T2w grid (the whole tumor is
    their union); ``cord_gt`` is the 30 mm cord mask on the same grid; ``working_labels`` the same
    structures on the working grid, where the cascade crop recorded in the sidecar lives. Returns one
    row per class and a dict of subject-level values (cord Dice, crop inclusion, seconds)."""
    preds = prediction_paths(pred_dir, base)
    ref = load_image(preds["wholetumor"])
    voxel = voxel_volume_mm3(ref.affine)
    g = ground_truth_masks(gt, ref)
    rows = []
    for c in CLASSES:
        rows.append({"class": c, **compare(g[c], load_mask(preds[c], ref), voxel, overlap_mm3)})
    side = json.loads(Path(prediction_file(pred_dir, base, "wholetumor", ".json")).read_text())
    info = {"cascade": bool(side["cascade"]), "exclusive": bool(side.get("exclusive", False)),
            "cord_found": bool(side["cord_found"]), "cord_fallback": bool(side["cord_fallback_whole_fov"]),
            "seconds": float(sum(v for k, v in side["seconds"].items() if k != "register")),
            "cord_dice": None, "crop_contains_all": None}
    if cord_gt is not None:
        info["cord_dice"] = compare(load_mask(cord_gt, ref), load_mask(preds["cord"], ref), voxel)["dice"]
    if working_labels is not None and side["cascade"]:
        shares = crop_contains(side.get("network_input_region", side["crop"]), working_labels)
        info.update({f"crop_share_{k}": v for k, v in shares.items()})
        info["crop_contains_all"] = all(v >= 1.0 for v in shares.values())
    return pd.DataFrame(rows), info


def evaluate_split(split: str, subjects: dict[str, dict], pred_dirs: dict[str, str],
                   overlap_mm3: float = DEFAULT_OVERLAP_MM3) -> pd.DataFrame:
    """Long table (one row per subject x mode x class) for one split; ``subjects`` maps a subject key
    to {gt: {...}, cord_gt, working_labels, tumor_type, acquisition}; ``pred_dirs`` maps each inference
    mode to its prediction folder (:meth:`imsct.paths.Layout.prediction_dir`)."""
    frames = []
    for key, s in subjects.items():
        for mode, pred_dir in pred_dirs.items():
            variant = "-" in mode  # <mode>-<class rule>: tumor classes only, the crop is its mode's
            rows, info = evaluate_subject(s["gt"], pred_dir, f"sub-{key}",
                                          None if variant else s.get("cord_gt"),
                                          None if variant else s.get("working_labels"), overlap_mm3)
            info.pop("cascade")
            frames.append(rows.assign(split=split, subject=key, mode=mode, exclusive=info.pop("exclusive"),
                                      tumor_type=s.get("tumor_type", "n/a"),
                                      acquisition=s.get("acquisition", "n/a"), **info))
    cols = ["split", "subject", "tumor_type", "acquisition", "mode", "class"]
    df = pd.concat(frames, ignore_index=True)
    return df[cols + [c for c in df.columns if c not in cols]]
