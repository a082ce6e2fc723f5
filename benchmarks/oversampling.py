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

import argparse
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
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(t2w_only.REPO / "config/config.yaml"))
    p.add_argument("--values", type=float, nargs="+", default=[0.0, 0.33], help="lesion_oversampling values")
    p.add_argument("--subjects", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--size", choices=("small", "full"))
    p.add_argument("--split", type=int, default=0)
    p.add_argument("--epochs", type=int)
    p.add_argument("--cord-epochs", type=int)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out")
    p.add_argument("--json")
    args = p.parse_args(argv)

    from imsct.classes import CLASSES
    from imsct.config import load_config

    cfg = load_config(args.config)
    syn, tr = cfg["synthetic"], cfg["training"]
    args.subjects = args.subjects or syn["subjects"]
    args.seed = syn["seed"] if args.seed is None else args.seed
    args.size = args.size or syn["size"]
    args.epochs = args.epochs or tr["tumor"]["max_epochs"] or tr["max_epochs"]
    args.cord_epochs = args.cord_epochs or tr["cord"]["max_epochs"] or tr["max_epochs"]
    if any(not 0 <= v < 1 for v in args.values):
        p.error(f"--values {args.values}: each must be in [0, 1)")
    if not 0 <= args.split < cfg["splits"]["n"]:
        p.error(f"--split {args.split}: the config has splits 0..{cfg['splits']['n'] - 1}")
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
