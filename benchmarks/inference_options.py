#!/usr/bin/env python
"""Inference options measured on a finished demo run: each split's models re-run on that split's
test subjects with other ``SegmentOptions`` (mirror test-time augmentation, Gaussian blending of the
windows, another binarisation threshold: ``thr0.3`` thresholds every output at 0.3; other smallest
kept objects: ``min:cavity=0`` keeps cavities of any size, ``min:tumor=0.1+edema=0.2`` in cm3 as
``imsct segment --min-volume``; ``base`` is what the model folders say, so on the demo's folders the
paper's floors are ``min:edema=0.5+cavity=0.5``), Dice per class
on the T2w's own grid, mean over a split's subjects then over splits (as
``results/evaluation/summary.md``; the ``base`` row reproduces its Table 4 Dice).

    python benchmarks/inference_options.py [--results results]
        [--variants base,plain,tta,gauss,tta+gauss,thr0.3,min:cavity=0]
        [--out FILE.tsv]

``--set val`` measures on each split's validation subjects instead, to choose a setting without
looking at the test subjects. Inputs come from the run's own tables (``cohort/cohort.tsv``: the T2w
and label paths, ``splits/``) and its layout (``imsct.paths.Layout``: registered T1w, model
folders), so any labelled cohort works.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# base: the model folders' own settings (their `inference` entry: what the workflow ran); plain: the
# paper's (no TTA, uniform windows) whatever the folders say
VARIANTS = {"base": {}, "plain": {"tta": False, "blend": "uniform"}, "tta": {"tta": True},
            "gauss": {"blend": "gaussian"}, "tta+gauss": {"tta": True, "blend": "gaussian"}}


def variant_options(name: str) -> dict:
    """``SegmentOptions`` keywords of a variant: one of VARIANTS, ``thr<t>`` (every sigmoid output
    binarised at t instead of the model folder's threshold) or ``min:<class>=<cm3>[+...]`` (smallest
    kept object per class)."""
    if name in VARIANTS:
        return VARIANTS[name]
    if name.startswith("min:"):
        from imsct.inference.postprocess import parse_min_volumes

        try:
            return {"min_volume_mm3": parse_min_volumes(name[4:].split("+"))}
        except ValueError as e:
            raise SystemExit(f"variant {name}: {e}") from None
    if name.startswith("thr"):
        t = float(name[3:])
        if not 0 < t < 1:
            raise SystemExit(f"variant {name}: the threshold must lie in (0, 1)")
        return {"threshold": t}
    raise SystemExit(f"variant {name!r}: not one of {', '.join(VARIANTS)}, thr<t> or min:<class>=<cm3>")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results", help="the workflow's results folder (splits, models, preprocess)")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"comma-separated, of {', '.join(VARIANTS)}, thr<t> (e.g. thr0.3) or min:<class>=<cm3>[+...]")
    p.add_argument("--set", default="test", choices=("test", "val"),
                   help="which subjects of each split: test (as Table 4), or val to choose a setting on the "
                        "validation subjects, as nnU-Net chooses its postprocessing on its cross-validation")
    p.add_argument("--out", help="per-subject rows (TSV)")
    args = p.parse_args(argv)

    import nibabel as nib
    import numpy as np
    import pandas as pd

    from imsct.bids import scan_key
    from imsct.classes import CLASSES, LESIONS
    from imsct.evaluation.metrics import compare, voxel_volume_mm3
    from imsct.inference.predictor import Predictor, SegmentOptions
    from imsct.io import load_scan
    from imsct.paths import Layout
    from imsct.splits import split_members

    layout = Layout(args.results)
    cohort = pd.read_csv(layout.cohort(), sep="\t", dtype=str, keep_default_na=False)
    scans = {scan_key(r.subject, None if r.session == "n/a" else r.session): r for r in cohort.itertuples()}
    variants = {v: SegmentOptions(cascade=True, register=False, **variant_options(v)) for v in args.variants.split(",")}
    rows = []
    for split_file in sorted(Path(layout.results, "splits").glob("split-*.tsv")):
        split = split_file.stem.split("-")[1]
        predictor = Predictor(Path(layout.model_folder(split)).parent, threads=2)
        for key in split_members(pd.read_csv(split_file, sep="\t"), scans, args.set):
            s = scans[key]
            t2, t1 = load_scan(s.t2w), load_scan(layout.registered_t1w(key))
            gt = {c: np.asarray(nib.load(getattr(s, c)).dataobj) > 0 for c in LESIONS}
            gt["wholetumor"] = gt["tumor"] | gt["edema"] | gt["cavity"]
            voxel = voxel_volume_mm3(t2.affine)
            for name, opts in variants.items():
                seg = predictor.segment(t2, t1, opts)
                rows += [{"split": split, "subject": f"sub-{key}", "variant": name, "class": c,
                          "dice": compare(gt[c], seg.masks[c], voxel)["dice"]} for c in CLASSES]
    d = pd.DataFrame(rows)
    if args.out:
        d.to_csv(args.out, sep="\t", index=False)
    mean = d.groupby(["variant", "split", "class"])["dice"].mean().groupby(["variant", "class"]).mean().unstack()
    print((100 * mean[list(CLASSES)]).round(1).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
