#!/usr/bin/env python
"""Inference options measured on a finished demo run: each split's models re-run on that split's
test subjects with other ``SegmentOptions`` (mirror test-time augmentation, Gaussian blending of the
windows), Dice per class on the T2w's own grid, mean over a split's subjects then over splits (as
``results/evaluation/summary.md``; the ``base`` row reproduces its Table 4 Dice).

    python benchmarks/inference_options.py [--results results] [--resources resources/synthetic]
        [--variants base,tta,gauss,tta+gauss] [--out FILE.tsv]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

VARIANTS = {"base": {}, "tta": {"tta": True}, "gauss": {"blend": "gaussian"},
            "tta+gauss": {"tta": True, "blend": "gaussian"}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results", help="the workflow's results folder (splits, models, preprocess)")
    p.add_argument("--resources", default="resources/synthetic", help="the BIDS dataset with derivatives/labels")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    p.add_argument("--out", help="per-subject rows (TSV)")
    args = p.parse_args(argv)

    import nibabel as nib
    import numpy as np
    import pandas as pd

    from imsct.classes import CLASSES, LESIONS
    from imsct.evaluation.metrics import compare, voxel_volume_mm3
    from imsct.inference.predictor import Predictor, SegmentOptions
    from imsct.io import load_scan

    res, rsc = Path(args.results), Path(args.resources)
    variants = {v: SegmentOptions(cascade=True, register=False, **VARIANTS[v]) for v in args.variants.split(",")}
    rows = []
    for split_file in sorted((res / "splits").glob("split-*.tsv")):
        split = split_file.stem.split("-")[1]
        table = pd.read_csv(split_file, sep="\t")
        predictor = Predictor(res / f"models/split-{split}/onnx", threads=2)
        for sub in table.loc[table["set"] == "test", "participant_id"]:
            t2 = load_scan(rsc / sub / "anat" / f"{sub}_T2w.nii.gz")
            t1 = load_scan(res / "preprocess" / sub / f"{sub}_space-T2w_desc-registered_T1w.nii.gz")
            gt = {c: np.asarray(nib.load(rsc / "derivatives/labels" / sub / "anat" /
                                         f"{sub}_T2w_label-{c}_mask.nii.gz").dataobj) > 0 for c in LESIONS}
            gt["wholetumor"] = gt["tumor"] | gt["edema"] | gt["cavity"]
            voxel = voxel_volume_mm3(t2.affine)
            for name, opts in variants.items():
                seg = predictor.segment(t2, t1, opts)
                rows += [{"split": split, "subject": sub, "variant": name, "class": c,
                          "dice": compare(gt[c], seg.masks[c], voxel)["dice"]} for c in CLASSES]
    d = pd.DataFrame(rows)
    if args.out:
        d.to_csv(args.out, sep="\t", index=False)
    mean = d.groupby(["variant", "split", "class"])["dice"].mean().groupby(["variant", "class"]).mean().unstack()
    print((100 * mean[list(CLASSES)]).round(1).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
