"""The ``imsct`` command line: one entry point, one subcommand per step."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


def _naming(args):
    from .bids import Naming

    if getattr(args, "naming", None) == "ivadomed":
        return Naming.ivadomed()
    if getattr(args, "config", None):
        from .config import load_config

        return Naming.from_config(load_config(args.config)["inputs"])
    return Naming()


def cmd_phantom(args) -> int:
    from concurrent.futures import ProcessPoolExecutor

    from rich.progress import Progress

    from .phantom import generate_subject, plan_cohort, write_dataset_files
    from .phantom.followup import write_sessions

    out = Path(args.out_dir)
    weighting = {k: v for k, v in (("t2w", args.t2w_power), ("t1w", args.t1w_power)) if v}
    specs = plan_cohort(args.subjects, args.seed, args.block_fraction, args.narrow_fraction, weighting)
    if args.only:
        wanted = set(args.only)
        unknown = wanted - {s.participant_id for s in specs}
        if unknown:
            print(f"error: --only {sorted(unknown)} not in a cohort of {args.subjects}", file=sys.stderr)
            return 2
        todo = [s for s in specs if s.participant_id in wanted]
    else:
        todo = specs
    naming = _naming(args)
    followup = set(args.followup or [])
    if followup - {s.participant_id for s in specs}:
        print(f"error: --followup {sorted(followup - {s.participant_id for s in specs})} not in the cohort",
              file=sys.stderr)
        return 2
    if not args.only:
        write_dataset_files(out, specs, args.seed, args.size, naming)
    t0 = time.perf_counter()

    def job(s):  # (function, arguments) writing one subject
        if s.participant_id in followup:
            return write_sessions, (out, s, args.seed, args.size, naming, args.growth, args.interval_days)
        return generate_subject, (out, s, args.seed, args.size, naming, args.qc)

    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("phantom", total=len(todo))
        if args.jobs > 1 and len(todo) > 1:
            with ProcessPoolExecutor(args.jobs) as pool:
                futs = [pool.submit(fn, *a) for fn, a in map(job, todo)]
                for f in futs:
                    f.result()
                    progress.advance(task)
        else:
            for fn, a in map(job, todo):
                fn(*a)
                progress.advance(task)
    dt = time.perf_counter() - t0
    print(f"wrote {len(todo)} subject(s) to {out} in {dt:.1f} s ({dt / max(len(todo), 1):.2f} s/subject)")
    return 0


def cmd_discover(args) -> int:
    from .bids import discover
    from .io import write_tsv

    cohort, excluded = discover(args.bids_dir, _naming(args))
    write_tsv(cohort, args.out)
    excl_path = Path(args.excluded) if args.excluded else Path(args.out).with_name("excluded.tsv")
    write_tsv(excluded, excl_path)
    print(f"{len(cohort)} subject(s)/session(s) in {args.out}; {len(excluded)} excluded (see {excl_path})")
    return 0


def cmd_register(args) -> int:
    from .preprocess.register import RegistrationParams, register_files

    params = RegistrationParams(seed=args.seed, max_rotation_deg=args.max_rotation_deg,
                                max_displacement_mm=args.max_displacement_mm)
    res = register_files(args.fixed, args.moving, args.out, args.fixed_discs, args.moving_discs,
                         args.transform, args.qc, params)
    if args.figure:
        from .preprocess.qc import registration_figure

        registration_figure(args.fixed, args.out, args.figure, args.qc)
    t = res.qc["transform"]
    print(f"{res.method}{' (flagged: ' + '; '.join(res.qc['gate_reasons']) + ')' if res.flagged else ''}: "
          f"rotation {t['rotation_deg']:.2f} deg, displacement {t['displacement_mm']:.2f} mm, "
          f"{res.qc['seconds']:.1f} s -> {args.out}")
    return 0


def cmd_apply_transform(args) -> int:
    import numpy as np

    from .io import load_image, save_nifti
    from .preprocess.transforms import read_itk, resample_to

    ref, mov = load_image(args.ref), load_image(args.moving)
    m = read_itk(args.transform)
    out = resample_to(np.asarray(mov.dataobj), mov.affine, ref.shape, ref.affine, m, order=0 if args.nearest else 1)
    save_nifti(out.astype(np.uint8 if args.nearest else np.float32), ref.affine, args.out)
    print(f"wrote {args.out}")
    return 0


def cmd_cord_mask(args) -> int:
    from .preprocess.pipeline import cord_mask_file

    cord_mask_file(args.centerline, args.out, args.diameter_mm, args.ref)
    print(f"wrote {args.out}")
    return 0


def cmd_splits(args) -> int:
    import pandas as pd

    from .splits import make_splits, split_table, write_splits

    cohort = pd.read_csv(args.cohort, sep="\t", dtype=str)
    splits = make_splits(split_table(cohort), args.n_splits, args.seed, tuple(args.fractions))
    paths = write_splits(splits, args.out)
    print(f"wrote {len(paths)} splits and summary.tsv to {args.out}")
    return 0


def cmd_implant(args) -> int:
    from .phantom.implant import write_implanted_cohort

    t0 = time.perf_counter()
    truths = write_implanted_cohort(args.out_dir, args.subjects, args.seed, args.shared_data, _naming(args))
    print(f"wrote {len(truths)} implanted subject(s) to {args.out_dir} in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_train(args) -> int:
    import re

    import pandas as pd

    from .config import load_config
    from .paths import working_grid_paths
    from .preprocess.pipeline import participant_keys
    from .training.jobs import run_training

    full = load_config(args.config)
    index = args.split_index
    if index is None:
        m = re.search(r"split-(\d+)", Path(args.split).name)
        if m is None:
            raise ValueError(f"{args.split}: cannot tell the split index from the name (split-XX.tsv); "
                             "give --split-index")
        index = int(m.group(1))
    split = pd.read_csv(args.split, sep="\t", dtype=str)
    spacing = full["preprocess"]["spacing_mm"]
    sets = {}
    for w in ("train", "val"):
        sets[w] = {}
        for pid in split.loc[split["set"] == w, "participant_id"]:
            keys = participant_keys(args.preprocessed, pid)  # one per session
            if not keys:
                raise FileNotFoundError(f"{args.preprocessed}: no preprocessed folder for {pid}")
            sets[w] |= {k: working_grid_paths(args.preprocessed, k, spacing) for k in keys}
    training = full["training"]
    summary = run_training(args.model, index, sets["train"], sets["val"], args.out, training, spacing,
                           threads=training["threads"], device=args.device or training["device"],
                           cord_model=args.cord_model, memory_format=training["memory_format"])
    print(f"{args.model} model: best epoch {summary['best_epoch']}, "
          f"validation loss {summary['best_val_loss']:.4f} -> {args.out}")
    return 0


NO_T1W = "none"  # a `--t1` entry for a subject without a T1w


def t1w_paths(t2: list[str], t1: list[str] | None) -> list[str | None]:
    """The T1w of each T2w (None: T2w only): ``--t1`` left out = no subject has one; otherwise one entry
    per T2w, in the same order, ``none`` for a subject without one."""
    if t1 is None:
        return [None] * len(t2)
    if len(t1) != len(t2):
        raise ValueError(f"--t2 names {len(t2)} image(s) but --t1 {len(t1)}: give one T1w per T2w in the same "
                         f"order ('{NO_T1W}' for a subject without one), or leave --t1 out to segment on T2w alone")
    return [None if p.lower() == NO_T1W else p for p in t1]


SEGMENT_THREADS = 2


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be >= 0")
    return value


def cmd_segment(args) -> int:
    """One subject or many: the model sessions are opened once and serve every pair; a subject that
    fails is reported and skipped, the others are still segmented. A subject without a T1w is
    segmented on its T2w alone."""
    from .inference.predictor import Predictor, SegmentOptions, write_segmentation
    from .io import ImageError, load_scan

    t1_paths = t1w_paths(args.t2, args.t1)
    from .inference.postprocess import parse_min_volumes

    try:
        min_vol = parse_min_volumes(args.min_volume)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    opts = SegmentOptions(cascade=False if args.no_cascade else None, blend=args.blend, tta=args.tta,
                          register=not args.no_register, threshold=args.threshold,
                          cord_threshold=args.cord_threshold, min_volume_mm3=min_vol,
                          exclusive=None if args.classes is None else args.classes == "exclusive")
    # one subject: its scans are checked before the models load, and an error stops the command
    def scans(t2_path, t1_path):
        return load_scan(t2_path), None if t1_path is None else load_scan(t1_path)

    first = scans(args.t2[0], t1_paths[0]) if len(args.t2) == 1 else None
    predictor = Predictor(args.model, device=args.device, threads=args.threads)
    failed = []
    t0 = time.perf_counter()
    for t2_path, t1_path in zip(args.t2, t1_paths):
        try:
            seg = predictor.segment(*(first or scans(t2_path, t1_path)), opts)
        except (ImageError, ValueError, RuntimeError, OSError) as exc:
            if first is not None:
                raise
            failed.append(t2_path)
            print(f"skipped {t2_path}: {exc}", file=sys.stderr)
            continue
        paths = write_segmentation(seg, t2_path, args.out)
        secs = seg.provenance["seconds"]
        note = " (no cord found: whole field of view)" if seg.provenance["cord_fallback_whole_fov"] else ""
        note += " (T2w only)" if seg.provenance["t1w_missing"] else ""
        print(f"wrote {len(paths)} masks of {t2_path} to {args.out} in {sum(secs.values()):.1f} s{note}")
    done = len(args.t2) - len(failed)
    if len(args.t2) > 1:
        minutes = (time.perf_counter() - t0) / 60
        print(f"{done} of {len(args.t2)} subject(s) segmented, {done / minutes:.1f} per minute"
              + (f"; skipped: {', '.join(map(str, failed))}" if failed else ""))
    return 1 if failed else 0


def cmd_metrics(args) -> int:
    import json

    from .evaluation.metrics import compare_files

    m = compare_files(args.gt, args.pred, args.overlap_mm3)
    if args.json:
        print(json.dumps(m))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("metric", "value", title=f"{args.pred} vs {args.gt}")
    for k, v in m.items():
        table.add_row(k, "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v)))
    Console().print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .inference.modelfolder import BLENDS  # hashlib and json only: no cost at start-up

    p = argparse.ArgumentParser(prog="imsct", description=__doc__)
    p.add_argument("--version", action="version", version=f"imsct {__version__}")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    ph = sub.add_parser("phantom", help="generate a synthetic BIDS cohort of IMSCT spinal MRI")
    ph.add_argument("out_dir")
    ph.add_argument("--subjects", type=int, default=12)
    ph.add_argument("--seed", type=int, default=0)
    ph.add_argument("--size", choices=("full", "small"), default="full")
    ph.add_argument("--block-fraction", type=float, default=0.0,
                    help="share of subjects acquired as 3-D research blocks around the cord (0: the paper's cohort)")
    ph.add_argument("--narrow-fraction", type=float, default=0.0,
                    help="each subject's chance of lesions held within the cord's width (0: the cord always widens)")
    for c, what in (("t2w", "T2w (echo time; not blocks)"), ("t1w", "T1w")):
        ph.add_argument(f"--{c}-power", type=float, nargs=2, metavar=("LO", "HI"),
                        help=f"each subject's {what} tissue table raised to a power within [LO, HI] (default 1 1)")
    ph.add_argument("--qc", action="store_true", help="write a PNG montage per subject")
    ph.add_argument("--only", nargs="+", metavar="SUB", help="generate only these participant ids")
    ph.add_argument("--jobs", type=int, default=1, help="parallel processes")
    ph.add_argument("--naming", choices=("bids", "ivadomed"), default="bids")
    ph.add_argument("--config", help="workflow config whose `inputs` section sets the naming")
    ph.add_argument("--followup", nargs="+", metavar="SUB",
                    help="write these participants as sessions ses-01, ses-02, ... (same anatomy, lesions grown "
                         "by --growth; sub-*_sessions.tsv gives acq_time)")
    ph.add_argument("--growth", nargs="+", type=float, default=[1.0, 1.5],
                    help="lesion volume factor of each session of a --followup subject (default 1.0 1.5)")
    ph.add_argument("--interval-days", type=float, default=180.0, help="days between follow-up sessions")
    ph.set_defaults(func=cmd_phantom)

    im = sub.add_parser("implant", help="implant phantom lesions into the real SCT test scans (a BIDS test set)")
    im.add_argument("out_dir")
    im.add_argument("--subjects", type=int, default=6)
    im.add_argument("--seed", type=int, default=0)
    im.add_argument("--shared-data", default="../shared/data", help="folder holding sct_testing_data/")
    im.add_argument("--naming", choices=("bids", "ivadomed"), default="bids")
    im.add_argument("--config", help="workflow config whose `inputs` section sets the naming")
    im.set_defaults(func=cmd_implant)

    d = sub.add_parser("discover", help="index a BIDS dataset into a cohort table")
    d.add_argument("bids_dir")
    d.add_argument("--out", required=True, help="cohort TSV")
    d.add_argument("--excluded", help="TSV of excluded subjects (default: excluded.tsv beside --out)")
    d.add_argument("--config", help="workflow config whose `inputs` section sets the naming")
    d.add_argument("--naming", choices=("bids", "ivadomed"))
    d.set_defaults(func=cmd_discover)

    r = sub.add_parser("register", help="affine T1w-to-T2w registration with QC gate and disc-label fallback")
    r.add_argument("--fixed", required=True, help="T2w (the reference grid)")
    r.add_argument("--moving", required=True, help="T1w")
    r.add_argument("--out", required=True, help="moved T1w on the T2w grid")
    r.add_argument("--fixed-discs", help="disc labels on the T2w grid (SCT values)")
    r.add_argument("--moving-discs", help="disc labels on the T1w grid")
    r.add_argument("--transform", help="write the ITK affine (.mat, fixed->moving points, as ANTs)")
    r.add_argument("--qc", help="write the QC JSON (method, scores, gate, transform)")
    r.add_argument("--figure", help="write a QC PNG (edges and checkerboard)")
    r.add_argument("--seed", type=int, default=42)
    r.add_argument("--max-rotation-deg", type=float, default=10.0)
    r.add_argument("--max-displacement-mm", type=float, default=20.0)
    r.set_defaults(func=cmd_register)

    a = sub.add_parser("apply-transform", help="move an image or labels from T1w space onto the T2w grid")
    a.add_argument("--ref", required=True)
    a.add_argument("--moving", required=True)
    a.add_argument("--transform", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--nearest", action="store_true", help="nearest-neighbour (labels)")
    a.set_defaults(func=cmd_apply_transform)

    c = sub.add_parser("cord-mask", help="30 mm cord-localisation mask around a centerline")
    c.add_argument("--centerline", required=True, help="centerline mask, or CSV of voxel x,y,z (SCT RPI)")
    c.add_argument("--out", required=True)
    c.add_argument("--diameter-mm", type=float, default=30.0)
    c.add_argument("--ref", help="image whose grid a CSV centerline refers to")
    c.set_defaults(func=cmd_cord_mask)

    sp = sub.add_parser("splits", help="random train/validation/test splits (stratified; lumbar never in test)")
    sp.add_argument("cohort", help="cohort TSV (participant_id, tumor_type, tumor_region)")
    sp.add_argument("--n-splits", type=int, default=12)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--fractions", type=float, nargs=3, default=(0.6, 0.2, 0.2), metavar=("TRAIN", "VAL", "TEST"))
    sp.add_argument("--out", required=True, help="folder for split-XX.tsv and summary.tsv")
    sp.set_defaults(func=cmd_splits)

    t = sub.add_parser("train", help="train the cord or the tumor model on one split")
    t.add_argument("--model", choices=("cord", "tumor", "single"), required=True,
                   help="single = the single-step baseline: the tumor model on the whole image (paper 2.6.2)")
    t.add_argument("--split", required=True, help="split-XX.tsv")
    t.add_argument("--split-index", type=int, help="seed offset of the split (default: XX from the file name, "
                   "as the workflow)")
    t.add_argument("--preprocessed", required=True, help="folder of the preprocessing outputs (results/preprocess)")
    t.add_argument("--out", required=True, help="model folder (resumes from its last.pt)")
    t.add_argument("--config", help="workflow config (its `training` section; defaults: the paper's)")
    t.add_argument("--cord-model", help="cord model best.pt (tumor model cropping from predictions)")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"))
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("segment", help="segment tumor, edema and cavity of one subject with trained models "
                       "(T2w + T1w, or T2w alone)")
    g.add_argument("--t2", required=True, nargs="+", help="T2w image(s); several = several subjects")
    g.add_argument("--t1", nargs="+", help=f"gadolinium-enhanced T1w, one per T2w, same order; '{NO_T1W}' for a "
                   "subject without one; left out: every subject on its T2w alone (the sidecar says so)")
    g.add_argument("--model", required=True, nargs="+", help="model folder(s); several are averaged")
    g.add_argument("--out", required=True, help="output folder")
    g.add_argument("--no-cascade", action="store_true", help="tumor model on the whole image (single step)")
    g.add_argument("--no-register", action="store_true",
                   help="the T1w is already aligned with the T2w (e.g. registered earlier): skip registration")
    g.add_argument("--blend", choices=BLENDS,
                   help="merging of overlapping windows (default: the model folder's; the paper's: uniform)")
    g.add_argument("--tta", action=argparse.BooleanOptionalAction,
                   help="mirror test-time augmentation (default: the model folder's; the paper's: off)")
    g.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    g.add_argument("--threads", type=non_negative_int, default=SEGMENT_THREADS,
                   help="onnxruntime and registration threads (0: all cores)")
    g.add_argument("--threshold", type=float, help="tumor classes (default: the model folder's, 0.5)")
    g.add_argument("--cord-threshold", type=float, help="cord model (default: the model folder's)")
    g.add_argument("--min-volume", nargs="*", metavar="CLASS=CM3", help="e.g. tumor=0.2 edema=0.5")
    g.add_argument("--classes", choices=("independent", "exclusive"),
                   help="independent: each output thresholded on its own (the paper); exclusive: a voxel in several "
                        "of tumor, edema, cavity goes to the most specific (default: the model folder's)")
    g.set_defaults(func=cmd_segment)

    m = sub.add_parser("metrics", help="compare a predicted mask with a ground truth (the paper's metrics)")
    m.add_argument("gt", help="ground-truth mask (nonzero = foreground)")
    m.add_argument("pred", help="predicted mask on the same grid")
    m.add_argument("--overlap-mm3", type=float, default=6.0, help="overlap for a lesion to count as detected")
    m.add_argument("--json", action="store_true", help="print one JSON object")
    m.set_defaults(func=cmd_metrics)
    return p


# Optional dependencies (pyproject.toml extras): the module a command imports -> (what, extra).
EXTRAS = {"torch": ("PyTorch", "train"), "onnx": ("ONNX", "train"), "snakemake": ("Snakemake", "workflow"),
          "bids": ("pybids", "dev")}


def missing_module_message(command: str, exc: ModuleNotFoundError) -> str | None:
    """One line saying what to install for a module a command could not import (None: imsct's own)."""
    top = (exc.name or "").partition(".")[0]
    if not top or top == __package__:
        return None
    if top in EXTRAS:
        what, extra = EXTRAS[top]
        return f'imsct {command} needs {what}: pip install "imsct[{extra}]"'
    return (f"imsct {command} needs the Python module {top!r}, a dependency of imsct that is not installed: "
            f"install imsct again (pip install imsct)")


def main(argv=None) -> int:
    return run(build_parser().parse_args(argv))


def run(args) -> int:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ModuleNotFoundError as exc:
        message = missing_module_message(args.command, exc)
        if message is None or args.verbose:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, OSError, RuntimeError) as exc:
        if args.verbose:  # the traceback, for a bug report
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


def console_main() -> int:
    """The ``imsct`` console script: :func:`main`, with one default a process of its own can set.
    ``imsct segment`` registers on ``--threads`` ITK threads (all cores for 0, as onnxruntime; unless
    ``IMSCT_ITK_THREADS`` says otherwise): a user waiting for a subject wants it fast, at the price of
    a registration reproducible to rounding rather than to the bit (the workflow keeps one thread; the
    sidecar records the count). ITK reads the count once per process, which is why this is not done in
    :func:`main`, which other code (and the tests) call in a process that may register again. Parsing
    imports nothing that registers."""
    import os

    args = build_parser().parse_args(sys.argv[1:])
    if args.command == "segment" and "IMSCT_ITK_THREADS" not in os.environ:
        os.environ["IMSCT_ITK_THREADS"] = str(args.threads if args.threads > 0 else os.cpu_count() or 1)
    return run(args)


if __name__ == "__main__":
    sys.exit(console_main())
