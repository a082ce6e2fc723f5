"""Do phantom-trained models work on real anatomy? Real scans with implanted lesions.

Builds a small BIDS dataset from the real T2w/T1w pair of ``../shared/data/sct_testing_data`` with
tumor, edema and cavity drawn by the phantom's lesion model and written into both scans
(:func:`imsct.phantom.implant.write_implanted_cohort`), segments every subject with the given model
folders through ``imsct segment``'s code path (registration included), and prints Dice per class
beside the workflow's phantom test Dice (``results/evaluation/summary.json``) when it exists.

    python benchmarks/implanted.py results/models/split-*/onnx [--n 8] [--seed 7] [--summary SUMMARY_JSON]
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
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--shared", default=str(REPO.parent / "shared" / "data"), help="folder holding sct_testing_data/")
    p.add_argument("--summary", default=str(REPO / "results/evaluation/summary.json"),
                   help="the workflow's evaluation summary, for the phantom Dice beside")
    p.add_argument("--keep", help="write the implanted dataset and predictions here instead of a temporary folder")
    args = p.parse_args(argv)

    from imsct.classes import CLASSES, LESIONS
    from imsct.evaluation.metrics import compare, voxel_volume_mm3
    from imsct.inference.predictor import Predictor, SegmentOptions
    from imsct.io import load_image
    from imsct.phantom.implant import write_implanted_cohort

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        bids = root / "implanted"
        truths = write_implanted_cohort(bids, args.n, args.seed, args.shared)
        pred = Predictor(args.models)
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
            print(f"{sub} {row['type']:<17}" + " ".join(
                f"{c} {'  n/a' if row[c] is None else f'{row[c]:.3f}'}" for c in CLASSES), flush=True)
    mean = {c: float(np.mean([r[c] for r in rows if r[c] is not None])) if any(r[c] is not None for r in rows)
            else None for c in CLASSES}
    phantom = {}
    if Path(args.summary).is_file():
        phantom = json.loads(Path(args.summary).read_text()).get("dice_mean", {})
    print(f"\nDice, mean over {len(rows)} implanted real-scan subjects (models: {', '.join(args.models)})")
    print(f"{'class':<12}{'implanted real':>16}{'phantom test':>14}")
    for c in CLASSES:
        ph = phantom.get(c)
        print(f"{c:<12}{'n/a' if mean[c] is None else f'{mean[c]:.3f}':>16}{'n/a' if ph is None else f'{ph:.3f}':>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
