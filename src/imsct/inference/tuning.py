"""Postprocessing floors chosen on a split's validation subjects (``postprocess.tune``; not in the
paper, off in ``paper.yaml``).

The paper removes objects smaller than 0.2 cm3 (tumor) and 0.5 cm3 (edema, cavity), sizes set for
its clinical cohort. A cohort whose lesions are smaller (the demo's phantoms, real scans with a
short field of view) loses whole edemas and syringes to them. nnU-Net settles its postprocessing on
its cross-validation rather than by hand; here each split's exported models segment that split's
validation subjects (never its test subjects), and for each class the smallest kept object is the
candidate with the best mean validation Dice, the configured floor unless another beats it by
``min_gain`` (and then, of the candidates within ``min_gain`` of the best, the one nearest the
configured floor). By default only floors at or below the configured one are tried (``direction:
lower``): a split's few validation subjects can show that true lesions smaller than the floor exist,
but not that none lies just above it (raising the edema floor to 1 cm3 on 8 validation subjects cost
test Dice on both demo cohorts measured, README). The classes are taken one after the other in the
exclusive rule's order (tumor, cavity, edema, then whole tumor), each with the floors already
chosen: exact for the paper's independent outputs, where a class's mask depends only on its own
floor, and a greedy search under the exclusive rule. The choice is written into the model folder's
``model.json`` (``postprocess``), so the workflow's inference and ``imsct segment`` apply it, and
the scores behind it beside it (``postprocess.tuning``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .postprocess import EXCLUSIVE_ORDER, binarize, postprocess_binary

log = logging.getLogger(__name__)

TUNE_ORDER = (*EXCLUSIVE_ORDER, "wholetumor")


@dataclass
class ValidationCase:
    """One validation subject: the thresholded outputs and the truth, cropped to where either holds a
    voxel (with one voxel of background around it, so that hole filling and connectivity are those
    of the whole image)."""

    key: str
    binary: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]
    voxel_mm3: float


def validation_case(key: str, binary: dict, truth: dict, voxel_mm3: float) -> ValidationCase:
    any_voxel = np.zeros(next(iter(binary.values())).shape, bool)
    for m in (*binary.values(), *truth.values()):
        any_voxel |= m
    if not any_voxel.any():
        box = tuple(slice(0, 0) for _ in any_voxel.shape)
    else:
        idx = np.nonzero(any_voxel)
        box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx)
    crop = {}
    for name, masks in (("binary", binary), ("truth", truth)):
        crop[name] = {c: np.pad(m[box], 1) for c, m in masks.items()}  # the background margin
    return ValidationCase(key, crop["binary"], crop["truth"], voxel_mm3)


def mean_dice(cases: list[ValidationCase], cls: str, floors_mm3: dict, fill_holes: bool,
              exclusive: bool) -> tuple[float | None, int]:
    """Mean Dice of class ``cls`` over the cases with these floors, and how many cases it is defined on
    (Dice is undefined where truth and prediction are both empty: such a case counts as the
    evaluation counts it, not at all)."""
    from ..evaluation.metrics import dice

    values = []
    for case in cases:
        masks = postprocess_binary(case.binary, case.voxel_mm3, fill_holes, floors_mm3, exclusive)
        d = dice(case.truth[cls], masks[cls])
        if d is not None:
            values.append(d)
    return (float(np.mean(values)) if values else None), len(values)


def choose_min_volumes(cases: list[ValidationCase], configured_mm3: dict, candidates_cm3, classes,
                       min_gain: float, fill_holes: bool = True, exclusive: bool = False,
                       direction: str = "lower") -> tuple[dict, list]:
    """The floors (mm3 per class) with the best mean validation Dice, class by class in
    :data:`TUNE_ORDER`; a class keeps its configured floor unless a candidate beats it by at least
    ``min_gain``, and where the Dice is undefined on every case; it then takes, of the candidates
    that gain ``min_gain`` and lie within ``min_gain`` of the best, the one nearest the configured
    floor. ``direction`` lower: only candidates
    at or below the configured floor. Returns the floors and one row per class and candidate (cm3,
    mean Dice, cases, chosen)."""
    if direction not in ("lower", "both"):
        raise ValueError(f"postprocess.tune.direction: {direction!r} is not lower or both")
    floors = {c: float(v) for c, v in configured_mm3.items()}
    rows = []
    for cls in (c for c in TUNE_ORDER if c in classes):
        configured = round(floors.get(cls, 0.0), 6)
        values = sorted({round(float(v) * 1000.0, 6) for v in candidates_cm3} | {configured})
        if direction == "lower":
            values = [v for v in values if v <= configured]
        scores = {v: mean_dice(cases, cls, floors | {cls: v}, fill_holes, exclusive) for v in values}
        base = scores[configured][0]
        best = configured
        if base is not None:
            # of the candidates that gain min_gain, the one nearest the configured floor among those within
            # min_gain of the best (smaller differences are taken for noise, as the one-standard-error rule
            # takes the simplest model near the best); ties go to the larger floor
            gaining = [v for v in values if scores[v][0] is not None and scores[v][0] >= base + min_gain - 1e-12]
            if gaining:
                top = max(scores[v][0] for v in gaining)
                near = [v for v in gaining if scores[v][0] == top or top - scores[v][0] < min_gain]
                best = min(near, key=lambda v: (abs(v - configured), -v))
        floors[cls] = best
        rows += [{"class": cls, "min_volume_cm3": v / 1000.0, "dice": scores[v][0], "cases": scores[v][1],
                  "configured": v == configured, "chosen": v == best} for v in values]
        log.info("%s: smallest kept object %g cm3 (validation Dice %s; configured %g cm3: %s)", cls, best / 1000,
                 _fmt(scores[best][0]), configured / 1000, _fmt(base))
    return floors, rows


def _fmt(v):
    return "undefined" if v is None else f"{v:.4f}"


def tune_model_folder(folder, subjects: dict, settings: dict, threads: int = 2) -> dict:
    """Choose the floors of a model folder on validation subjects and write them into its
    ``model.json``. ``subjects``: key -> {"t2w", "t1w" (registered onto the T2w, or None), "gt":
    {tumor, edema, cavity: paths on the T2w's grid}}; ``settings``: the config's ``postprocess.tune`` (candidates_cm3,
    classes, min_gain). Returns the model folder's new ``postprocess`` entry."""
    from ..evaluation.metrics import ground_truth_masks, voxel_volume_mm3
    from ..io import load_scan, write_json
    from .predictor import Predictor, SegmentOptions

    folder = Path(folder)
    predictor = Predictor(folder, threads=threads)
    post = predictor.post
    opts = SegmentOptions(register=False, soft=True)
    cases = []
    for key, s in subjects.items():
        t2 = load_scan(s["t2w"])
        seg = predictor.segment(t2, load_scan(s["t1w"]) if s.get("t1w") else None, opts)
        prob = np.stack([seg.probabilities[c] for c in predictor.meta[0]["tumor"]["classes"]])
        cases.append(validation_case(key, binarize(prob, post["threshold"]), ground_truth_masks(s["gt"], t2),
                                     voxel_volume_mm3(t2.affine)))
    exclusive = bool(post.get("exclusive", False))
    if not cases:  # a tiny cohort's split: said in the log and in model.json, the configured floors kept
        log.warning("%s: postprocess.tune: the split has no validation subjects; the configured floors are kept",
                    folder)
    floors, rows = choose_min_volumes(cases, post["min_volume_mm3"], settings["candidates_cm3"], settings["classes"],
                                      float(settings["min_gain"]), post["fill_holes"], exclusive,
                                      settings.get("direction", "lower"))
    meta = dict(predictor.meta[0])  # model.json as read (and its ONNX hashes checked) by the predictor
    meta["postprocess"] = {**post, "min_volume_mm3": floors,
                           "tuning": {"configured_mm3": post["min_volume_mm3"], "subjects": sorted(subjects),
                                      "rule": "exclusive" if exclusive else "independent",
                                      "candidates_cm3": [float(v) for v in settings["candidates_cm3"]],
                                      "min_gain": float(settings["min_gain"]),
                                      "direction": settings.get("direction", "lower"), "scores": rows}}
    write_json(meta, folder / "model.json")
    log.info("%s: floors chosen on %d validation subjects: %s", folder, len(subjects),
             json.dumps({c: round(v / 1000, 4) for c, v in floors.items()}))
    return meta["postprocess"]
