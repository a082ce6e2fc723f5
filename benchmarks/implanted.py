"""Do phantom-trained models work on real anatomy? Real scans with implanted lesions.

Builds a small BIDS dataset from the real T2w/T1w pair of ``../shared/data/sct_testing_data`` with
tumor, edema and cavity drawn by the phantom's lesion model and written into both scans
(:func:`imsct.phantom.implant.write_implanted_cohort`), segments every subject with the given model
folders through ``imsct segment``'s code path (registration included), and prints Dice per class
beside the workflow's phantom test Dice (``results/evaluation/summary.json``) when it exists.

    python benchmarks/implanted.py results/models/split-*/onnx [--n 8] [--seed 7 [8 9 ...]] [--summary SUMMARY_JSON]

With several seeds (several draws of lesions into the same real pair), it prints each draw's mean
and the mean over draws: one draw of 8 lesions moves the whole-tumor Dice by several hundredths.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="model folder(s) (averaged, as imsct segment does)")
    p.add_argument("--n", type=int, default=8, help="implanted subjects")
    p.add_argument("--seed", type=int, nargs="+", default=[7], help="one implanted draw per seed")
    p.add_argument("--shared", default=str(REPO.parent / "shared" / "data"), help="folder holding sct_testing_data/")
    p.add_argument("--summary", default=str(REPO / "results/evaluation/summary.json"),
                   help="the workflow's evaluation summary, for the phantom Dice beside")
    p.add_argument("--keep", help="write the implanted dataset(s) here instead of a temporary folder")
    args = p.parse_args(argv)

    from imsct.classes import CLASSES, LESIONS
    from imsct.evaluation.metrics import compare, voxel_volume_mm3
    from imsct.inference.predictor import Predictor, SegmentOptions
    from imsct.io import load_image
    from imsct.phantom.implant import write_implanted_cohort

    pred = Predictor(args.models)
    draws = {}
    seeds = list(dict.fromkeys(args.seed))  # a repeated seed is the same draw
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(args.keep or tmp) / (f"seed-{seed}" if len(seeds) > 1 else "")
            bids = root / "implanted"
            truths = write_implanted_cohort(bids, args.n, seed, args.shared)
            rows = []
            for truth in truths:
                sub = truth.get("participant_id") or truth.get("subject")
                anat = bids / sub / "anat"
                t2 = load_image(anat / f"{sub}_T2w.nii.gz")
                seg = pred.segment(t2, load_image(anat / f"{sub}_ce-gad_T1w.nii.gz"), SegmentOptions())
                lab = bids / "derivatives/labels" / sub / "anat"
                gt = {c: np.asanyarray(load_image(lab / f"{sub}_T2w_label-{c}_mask.nii.gz").dataobj) > 0
                      for c in LESIONS}
                gt["wholetumor"] = gt["tumor"] | gt["edema"] | gt["cavity"]
                voxel = voxel_volume_mm3(t2.affine)
                row = {"subject": sub, "type": truth.get("tumor_type", "?")}
                for c in CLASSES:
                    row[c] = compare(gt[c], seg.masks[c] > 0, voxel)["dice"]
                rows.append(row)
                print(f"seed {seed} {sub} {row['type']:<17}" + " ".join(
                    f"{c} {'  n/a' if row[c] is None else f'{row[c]:.3f}'}" for c in CLASSES), flush=True)
        draws[seed] = {c: float(np.mean(v)) if (v := [r[c] for r in rows if r[c] is not None]) else None
                       for c in CLASSES}
    phantom = {}
    if Path(args.summary).is_file():
        phantom = json.loads(Path(args.summary).read_text()).get("dice_mean", {})

    def cell(v):
        return "n/a" if v is None else f"{v:.3f}"

    columns = {f"seed {s}": d for s, d in draws.items()}
    if len(draws) > 1:  # the mean over draws of each draw's mean; a class absent from a whole draw is skipped
        columns["mean"] = {c: float(np.mean(v)) if (v := [d[c] for d in draws.values() if d[c] is not None])
                           else None for c in CLASSES}
    print(f"\nDice per draw: mean over its {args.n} implanted real-scan subjects that hold the class "
          f"(models: {', '.join(args.models)})")
    print(f"{'class':<12}" + "".join(f"{k:>10}" for k in columns) + f"{'phantom test':>14}")
    for c in CLASSES:
        print(f"{c:<12}" + "".join(f"{cell(d[c]):>10}" for d in columns.values()) + f"{cell(phantom.get(c)):>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
