"""Do phantom-trained models work on real anatomy? Real scans with implanted lesions.

Builds a small BIDS dataset from the real T2w/T1w pair of ``../shared/data/sct_testing_data`` with
tumor, edema and cavity drawn by the phantom's lesion model and written into both scans
(:func:`imsct.phantom.implant.write_implanted_cohort`), segments every subject with the given model
folders through ``imsct segment``'s code path (registration included), and prints Dice per class
beside the workflow's phantom test Dice (``results/evaluation/summary.json``) when it exists.

    python benchmarks/implanted.py results/models/split-*/onnx [--n 8] [--seed 7 [8 9 ...]] [--summary SUMMARY_JSON]
                                   [--t2w-only] [--tta | --no-tta] [--min-volume CLASS=CM3 ...]

With several seeds (several draws of lesions into the same real pair), it prints each draw's mean
and the mean over draws: one draw of 8 lesions moves the whole-tumor Dice by several hundredths.
``--t2w-only`` segments every subject a second time from its T2w alone (the T1w channel zeros, as
``imsct segment`` without ``--t1``) and prints those Dice beside: how much the real T1w helps or
misleads phantom-trained models. ``--tta`` / ``--no-tta`` segment with mirror test-time augmentation or
without it (``imsct segment --tta``; default: as the model folders say). ``--min-volume`` overrides the
postprocessing's smallest kept object per class as ``imsct segment --min-volume`` does (``cavity=0``:
no cavity removed; the implants' cavities, squeezed into the real pair's 53 mm of cord, are 0.4-1.0
cm3, near the paper's 0.5 cm3 floor).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _dice_row(pred, bids: Path, truth: dict, with_t1: bool = True, tta: bool | None = None,
              min_volume_mm3: dict | None = None) -> dict:
    """Segment one implanted subject as ``imsct segment`` does (registration included; ``with_t1``
    False: from its T2w alone); Dice per class against its implanted labels (None where the class is
    absent from both)."""
    from imsct.classes import CLASSES, LESIONS
    from imsct.evaluation.metrics import compare, voxel_volume_mm3
    from imsct.inference.predictor import SegmentOptions
    from imsct.io import load_image

    sub = truth.get("participant_id") or truth.get("subject")
    anat = bids / sub / "anat"
    t2 = load_image(anat / f"{sub}_T2w.nii.gz")
    t1 = load_image(anat / f"{sub}_ce-gad_T1w.nii.gz") if with_t1 else None
    seg = pred.segment(t2, t1, SegmentOptions(tta=tta, min_volume_mm3=min_volume_mm3 or {}))
    lab = bids / "derivatives/labels" / sub / "anat"
    gt = {c: np.asanyarray(load_image(lab / f"{sub}_T2w_label-{c}_mask.nii.gz").dataobj) > 0 for c in LESIONS}
    gt["wholetumor"] = gt["tumor"] | gt["edema"] | gt["cavity"]
    voxel = voxel_volume_mm3(t2.affine)
    return {"subject": sub, "type": truth.get("tumor_type", "?"),
            **{c: compare(gt[c], seg.masks[c] > 0, voxel)["dice"] for c in CLASSES}}


def _mean_defined(values) -> float | None:
    """Mean of the values that are defined (a class absent from a subject or a whole draw is skipped)."""
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def _cell(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="model folder(s) (averaged, as imsct segment does)")
    p.add_argument("--n", type=int, default=8, help="implanted subjects")
    p.add_argument("--seed", type=int, nargs="+", default=[7], help="one implanted draw per seed")
    p.add_argument("--shared", default=str(REPO.parent / "shared" / "data"), help="folder holding sct_testing_data/")
    p.add_argument("--summary", default=str(REPO / "results/evaluation/summary.json"),
                   help="the workflow's evaluation summary, for the phantom Dice beside")
    p.add_argument("--keep", help="write the implanted dataset(s) here instead of a temporary folder")
    p.add_argument("--t2w-only", action="store_true",
                   help="also segment every subject from its T2w alone and print those Dice beside")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction,
                   help="mirror test-time augmentation on or off (imsct segment --tta / --no-tta; default: the "
                        "model folders')")
    p.add_argument("--min-volume", nargs="*", metavar="CLASS=CM3",
                   help="smallest object kept per class, as imsct segment --min-volume (default: the model folders')")
    args = p.parse_args(argv)

    from imsct.classes import CLASSES
    from imsct.inference.postprocess import parse_min_volumes
    from imsct.inference.predictor import Predictor
    from imsct.phantom.implant import write_implanted_cohort

    try:
        min_volume = parse_min_volumes(args.min_volume)
    except ValueError as e:
        p.error(str(e))
    pred = Predictor(args.models)
    modes = {"": True, " T2w only": False} if args.t2w_only else {"": True}
    draws = {}
    seeds = list(dict.fromkeys(args.seed))  # a repeated seed is the same draw
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            bids = Path(args.keep or tmp) / (f"seed-{seed}" if len(seeds) > 1 else "") / "implanted"
            truths = write_implanted_cohort(bids, args.n, seed, args.shared)
            rows = {mode: [] for mode in modes}
            for truth in truths:
                for mode, with_t1 in modes.items():
                    rows[mode].append(row := _dice_row(pred, bids, truth, with_t1, args.tta, min_volume))
                    print(f"seed {seed}{mode} {row['subject']} {row['type']:<17}"
                          + " ".join(f"{c} {_cell(row[c]):>5}" for c in CLASSES), flush=True)
        for mode in modes:
            draws.setdefault(mode, {})[seed] = {c: _mean_defined(r[c] for r in rows[mode]) for c in CLASSES}
    phantom = {}
    if Path(args.summary).is_file():
        phantom = json.loads(Path(args.summary).read_text()).get("dice_mean", {})

    columns = {}
    for mode, per_seed in draws.items():
        columns.update({f"seed {s}{mode}": d for s, d in per_seed.items()})
        if len(per_seed) > 1:  # the mean over draws of each draw's mean; a class absent from a whole draw is skipped
            columns[f"mean{mode}"] = {c: _mean_defined(d[c] for d in per_seed.values()) for c in CLASSES}
    tta = {True: "; mirror TTA", False: "; no TTA", None: ""}[args.tta]
    tta += "".join(f"; {c} kept from {v / 1000:g} cm3" for c, v in min_volume.items())
    print(f"\nDice per draw: mean over its {args.n} implanted real-scan subjects that hold the class "
          f"(models: {', '.join(args.models)}{tta})")
    width = max(10, *(len(k) + 2 for k in columns))
    print(f"{'class':<12}" + "".join(f"{k:>{width}}" for k in columns) + f"{'phantom test':>14}")
    for c in CLASSES:
        print(f"{c:<12}" + "".join(f"{_cell(d[c]):>{width}}" for d in columns.values())
              + f"{_cell(phantom.get(c)):>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
