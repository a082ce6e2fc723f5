#!/usr/bin/env python
"""T2w-only segmentation (paper 4.5.2): Dice per class with both contrasts vs T2w alone, for a tumor
model trained without and with modality dropout.

On one split of a phantom cohort (``imsct phantom``; the T1w moved onto the T2w with its known motion,
as registration is not what this measures): the cord model, then two tumor models with the same seed,
epochs and recipe (the config's ``training`` section) but for ``training.tumor.modality_dropout`` (0,
the paper, and ``--dropout``), both exported to model folders and run through ``Predictor.segment``
(the code of ``imsct segment``) on the split's test subjects, with their T1w and without (``t1=None``).
Dice is on the T2w's own grid, with the workflow's postprocessing; a class absent from both the truth
and the prediction of a subject is left out of its mean (n/a), as in the workflow's evaluation.

    python benchmarks/t2w_only.py [--config config/config.yaml] [--subjects 20] [--seed 42] [--split 0]
        [--epochs 20] [--cord-epochs 12] [--dropout 0.5] [--out DIR] [--json FILE]

The defaults are the demo's (``config/config.yaml``: 40 small subjects, 3 splits, split 0). ``--out``
keeps the cohort and models; a rerun with the same ``--out`` resumes training from the checkpoints.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

MODES = (("T2w+T1w", True), ("T2w only", False))


def prepare(cfg: dict, args, root: Path) -> tuple[dict, list[str]]:
    """The cohort, its preprocessing (known motion) and the split: (working-grid paths by key, test keys)."""
    from imsct.bids import Naming, discover
    from imsct.cli import main as imsct
    from imsct.phantom.known_motion import preprocess_known_motion
    from imsct.splits import make_splits, split_members, split_table

    bids = root / "bids"
    if not (bids / "participants.tsv").is_file():
        assert imsct(["phantom", str(bids), "--subjects", str(args.subjects), "--seed", str(args.seed),
                      "--size", args.size, "--jobs", str(args.jobs)]) == 0
    cohort, _ = discover(bids, Naming())
    spacing = cfg["preprocess"]["spacing_mm"]
    paths = {}
    for pid in cohort["participant_id"]:
        d = root / "preprocess" / pid
        done = (d / "grid.json").is_file()
        paths[pid[4:]] = ({k: str(d / f"res_{k}.nii.gz") for k in ("t2w", "t1w", "tumor", "edema", "cavity", "cord")}
                          if done else preprocess_known_motion(bids, pid, d, spacing,
                                                               cfg["preprocess"]["cord_mask_diameter_mm"]))
    sp = cfg["splits"]
    split = make_splits(split_table(cohort), sp["n"], sp["seed"], tuple(sp["fractions"]))[args.split]
    sets = {w: split_members(split, sorted(paths), w) for w in ("train", "val", "test")}
    print(f"cohort {len(paths)} subjects; split {args.split}: {len(sets['train'])} train, {len(sets['val'])} "
          f"validation, {len(sets['test'])} test ({', '.join(sets['test'])})", flush=True)
    return paths, sets


def train_models(cfg: dict, args, root: Path, paths: dict, sets: dict, key: str = "modality_dropout",
                 values: tuple | None = None) -> dict[float, Path]:
    """Cord model once, then a tumor model per value of ``training.tumor.<key>`` (default: modality
    dropout 0 and ``--dropout``), same seed and recipe otherwise; each exported. Returns {value: model
    folder}."""
    from imsct.training.export import write_model_folder
    from imsct.training.jobs import run_training

    training = copy.deepcopy(cfg["training"])
    training["cord"]["max_epochs"] = args.cord_epochs
    training["tumor"]["max_epochs"] = args.epochs
    spacing = cfg["preprocess"]["spacing_mm"]
    train, val = ({k: paths[k] for k in sets[w]} for w in ("train", "val"))
    kw = {"threads": args.threads, "device": args.device}
    t0 = time.perf_counter()
    cord = root / "models" / "cord"
    run_training("cord", args.split, train, val, cord, training, spacing, **kw)
    print(f"cord model: {time.perf_counter() - t0:.0f} s", flush=True)
    folders = {}
    for p in values or (0.0, args.dropout):
        t0 = time.perf_counter()
        recipe = copy.deepcopy(training)
        recipe["tumor"][key] = p
        out = root / "models" / (f"tumor-dropout-{p:g}" if key == "modality_dropout" else f"tumor-{key}-{p}")
        s = run_training("tumor", args.split, train, val, out, recipe, spacing, cord_model=str(cord / "best.pt"), **kw)
        folders[p] = write_model_folder(cord / "best.pt", out / "best.pt", out / "onnx", f"{args.split:02d}", recipe,
                                        tuple(spacing), cfg["postprocess"]).parent
        print(f"tumor model, {key} {p}: {s['epochs_run']} epochs, best {s['best_epoch']}, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    return folders


def measure(folders: dict[float, Path], root: Path, test: list[str], threads: int, modes=MODES) -> list[dict]:
    """Dice per class and subject, for each model and each contrast set (``modes``)."""
    from imsct.classes import CLASSES, LESIONS
    from imsct.evaluation.metrics import compare, voxel_volume_mm3
    from imsct.inference.predictor import Predictor, SegmentOptions
    from imsct.io import load_image

    rows = []
    for p, folder in folders.items():
        pred = Predictor(folder, threads=threads)
        for key in test:
            sub = f"sub-{key}"
            t2 = load_image(root / "bids" / sub / "anat" / f"{sub}_T2w.nii.gz")
            lab = root / "bids/derivatives/labels" / sub / "anat"
            gt = {c: np.asanyarray(load_image(lab / f"{sub}_T2w_label-{c}_mask.nii.gz").dataobj) > 0 for c in LESIONS}
            gt["wholetumor"] = gt["tumor"] | gt["edema"] | gt["cavity"]
            for mode, with_t1 in modes:
                t1 = load_image(root / "preprocess" / sub / "t1_on_t2.nii.gz") if with_t1 else None
                seg = pred.segment(t2, t1, SegmentOptions(register=False))
                assert seg.provenance["t1w_missing"] is not with_t1
                voxel = voxel_volume_mm3(t2.affine)
                rows.append({"dropout": p, "contrasts": mode, "subject": key,
                             **{c: compare(gt[c], seg.masks[c] > 0, voxel)["dice"] for c in CLASSES}})
    return rows


def table(rows: list[dict], modes=MODES) -> list[dict]:
    """Mean Dice per model x contrasts (None where no subject has a value)."""
    from imsct.classes import CLASSES

    out = []
    for p in dict.fromkeys(r["dropout"] for r in rows):
        for mode, _ in modes:
            sel = [r for r in rows if r["dropout"] == p and r["contrasts"] == mode]
            mean = {c: (float(np.mean(v)) if (v := [r[c] for r in sel if r[c] is not None]) else None) for c in CLASSES}
            out.append({"modality_dropout": p, "contrasts": mode, "subjects": len(sel), **mean})
    return out


def report(args, sets: dict, seconds: float, columns: list[tuple[str, str]], summary: list[dict],
           rows: list[dict]) -> None:
    """Print the Dice table of a one-split comparison (``columns``: (header, key) of the rows' labels,
    then Dice per class) and write ``--json`` (arguments, table and per-subject rows)."""
    from imsct.classes import CLASSES

    print(f"\nDice, mean over the {len(sets['test'])} test subjects of split {args.split} ({args.subjects} phantom "
          f"subjects, seed {args.seed}; tumor {args.epochs} epochs, cord {args.cord_epochs}; {seconds:.0f} s in all)")
    widths = [max(len(h), 10) + 2 for h, _ in columns]
    print("".join(f"{h:<{w}}" for (h, _), w in zip(columns, widths)) + "".join(f"{c:>12}" for c in CLASSES))
    for r in summary:
        labels = (f"{v:g}" if isinstance(v := r[k], float) else str(v) for _, k in columns)
        print("".join(f"{v:<{w}}" for v, w in zip(labels, widths))
              + "".join(f"{'n/a' if r[c] is None else f'{r[c]:.3f}':>12}" for c in CLASSES))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "table": summary, "subjects": rows}, indent=1))


def experiment_parser(description: str) -> argparse.ArgumentParser:
    """The options every one-split model comparison takes (this benchmark's and recipe.py's)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", default=str(REPO / "config/config.yaml"), help="its training, splits, preprocess "
                   "and postprocess sections are used (default: the demo's)")
    p.add_argument("--subjects", type=int, help="phantom subjects (default: the config's synthetic.subjects)")
    p.add_argument("--seed", type=int, help="phantom seed (default: the config's)")
    p.add_argument("--size", choices=("small", "full"), help="phantom size (default: the config's)")
    p.add_argument("--split", type=int, default=0)
    p.add_argument("--epochs", type=int, help="tumor model epochs (default: the config's)")
    p.add_argument("--cord-epochs", type=int, help="cord model epochs (default: the config's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--jobs", type=int, default=2, help="processes generating the phantom")
    p.add_argument("--out", help="keep cohort, models and checkpoints here (default: a temporary folder)")
    p.add_argument("--json", help="write the per-subject rows and the table here")
    return p


def experiment_config(p: argparse.ArgumentParser, args) -> dict:
    """The config, with the options left out filled from it (in ``args``) and the split checked."""
    from imsct.config import load_config

    cfg = load_config(args.config)
    syn, tr = cfg["synthetic"], cfg["training"]
    args.subjects = args.subjects or syn["subjects"]
    args.seed = syn["seed"] if args.seed is None else args.seed
    args.size = args.size or syn["size"]
    args.epochs = args.epochs or tr["tumor"]["max_epochs"] or tr["max_epochs"]
    args.cord_epochs = args.cord_epochs or tr["cord"]["max_epochs"] or tr["max_epochs"]
    if not 0 <= args.split < cfg["splits"]["n"]:
        p.error(f"--split {args.split}: the config has splits 0..{cfg['splits']['n'] - 1}")
    return cfg


def main(argv=None) -> int:
    p = experiment_parser(__doc__.splitlines()[0])
    p.add_argument("--dropout", type=float, default=0.5, help="modality dropout of the second tumor model")
    args = p.parse_args(argv)


    cfg = experiment_config(p, args)
    if not 0 < args.dropout <= 1:
        p.error(f"--dropout {args.dropout}: must be in (0, 1]")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        paths, sets = prepare(cfg, args, root)
        folders = train_models(cfg, args, root, paths, sets)
        rows = measure(folders, root, sets["test"], args.threads)
    summary = table(rows)
    report(args, sets, time.perf_counter() - t0, [("modality dropout", "modality_dropout"), ("contrasts", "contrasts")],
           summary, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
