#!/usr/bin/env python
"""One setting of the tumor model's recipe, measured: Dice per class of tumor models that differ only
in ``training.tumor.<key>`` (e.g. ``lesion_oversampling`` 0 vs 0.33, ``loss`` dice vs dice_bce).

Same procedure as ``benchmarks/t2w_only.py``, whose functions it uses: one split of a phantom cohort
(the T1w moved onto the T2w with its known motion), the cord model once, then a tumor model per value
with the same seed, epochs and recipe (the config's ``training`` section), each exported and run
through ``Predictor.segment`` (the code of ``imsct segment``) on the split's test subjects with both
contrasts; Dice on the T2w's own grid after the workflow's postprocessing, a class absent from both
truth and prediction left out of a subject's mean.

    python benchmarks/recipe.py [--key lesion_oversampling] [--values 0 0.33] [--config config/config.yaml]
        [--split 0] [--subjects N] [--epochs N] [--cord-epochs N] [--out DIR] [--json FILE]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import t2w_only  # noqa: E402  (sets the thread environment and the package path)

BOTH = (("T2w+T1w", True),)


def main(argv=None) -> int:
    p = t2w_only.experiment_parser(__doc__.splitlines()[0])
    p.add_argument("--key", default="lesion_oversampling", help="the training.tumor setting that varies")
    p.add_argument("--values", nargs="+", default=["0", "0.33"], help="its values (YAML scalars)")
    args = p.parse_args(argv)

    from imsct.config import load_config

    cfg = t2w_only.experiment_config(p, args)
    values = [yaml.safe_load(v) for v in args.values]
    for v in values:  # the schema checks each value before hours of training
        try:
            load_config(args.config, {"training": {"tumor": {args.key: v}}})
        except Exception as exc:
            p.error(f"--key {args.key} --values {v!r}: {exc}")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        paths, sets = t2w_only.prepare(cfg, args, root)
        folders = t2w_only.train_models(cfg, args, root, paths, sets, args.key, tuple(values))
        rows = t2w_only.measure(folders, root, sets["test"], args.threads, BOTH)
    summary = t2w_only.table(rows, BOTH)
    for r in (*rows, *summary):
        r[args.key] = r.pop("dropout" if "dropout" in r else "modality_dropout")
    t2w_only.report(args, sets, time.perf_counter() - t0, [(args.key, args.key)], summary, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
