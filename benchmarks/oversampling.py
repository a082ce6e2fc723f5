#!/usr/bin/env python
"""The effect of ``training.tumor.lesion_oversampling`` (not in the paper; nnU-Net's foreground
oversampling): Dice per class of two tumor models that differ only in it.

Same procedure as ``benchmarks/t2w_only.py``, whose functions it uses: one split of a phantom cohort
(the T1w moved onto the T2w with its known motion), the cord model once, then a tumor model per value
with the same seed, epochs and recipe (the config's ``training`` section), each exported and run
through ``Predictor.segment`` (the code of ``imsct segment``) on the split's test subjects with both
contrasts; Dice on the T2w's own grid after the workflow's postprocessing, a class absent from both
truth and prediction left out of a subject's mean.

    python benchmarks/oversampling.py [--config config/config.yaml] [--values 0 0.33] [--split 0]
        [--subjects N] [--epochs N] [--cord-epochs N] [--out DIR] [--json FILE]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import t2w_only  # noqa: E402  (sets the thread environment and the package path)

BOTH = (("T2w+T1w", True),)


def main(argv=None) -> int:
    p = t2w_only.experiment_parser(__doc__.splitlines()[0])
    p.add_argument("--values", type=float, nargs="+", default=[0.0, 0.33], help="lesion_oversampling values")
    args = p.parse_args(argv)

    from imsct.classes import CLASSES

    cfg = t2w_only.experiment_config(p, args)
    if any(not 0 <= v < 1 for v in args.values):
        p.error(f"--values {args.values}: each must be in [0, 1)")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        paths, sets = t2w_only.prepare(cfg, args, root)
        folders = t2w_only.train_models(cfg, args, root, paths, sets, "lesion_oversampling", tuple(args.values))
        rows = t2w_only.measure(folders, root, sets["test"], args.threads, BOTH)
    for r in rows:
        r["lesion_oversampling"] = r.pop("dropout")
    summary = []
    for v in args.values:
        sel = [r for r in rows if r["lesion_oversampling"] == v]
        summary.append({"lesion_oversampling": v, "subjects": len(sel), **{
            c: (float(np.mean(x)) if (x := [r[c] for r in sel if r[c] is not None]) else None) for c in CLASSES}})
    print(f"\nDice, mean over the {len(sets['test'])} test subjects of split {args.split} ({args.subjects} phantom "
          f"subjects, seed {args.seed}; tumor {args.epochs} epochs, cord {args.cord_epochs}; "
          f"{time.perf_counter() - t0:.0f} s in all)")
    print(f"{'lesion_oversampling':<21}" + "".join(f"{c:>12}" for c in CLASSES))
    for r in summary:
        print(f"{r['lesion_oversampling']:<21g}"
              + "".join(f"{'n/a' if r[c] is None else f'{r[c]:.3f}':>12}" for c in CLASSES))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "table": summary, "subjects": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
