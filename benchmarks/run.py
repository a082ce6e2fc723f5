#!/usr/bin/env python
"""Speed targets of imsct, printed as a table (targets from the issues; not timed tests).

    python benchmarks/run.py [--quick] [--pybids] [--training-only cpu|cuda] [--dry-run-only] [--segment-only]
    python benchmarks/run.py --phantom-volumes [BIDS_DIR]

Rows: phantom generation (full and small subjects, one core), discovery of a 1,000-subject dataset,
`snakemake -n` on the paper configuration (343 subjects), plain and through the SLURM profile. A
second table compares the phantom's labelled lesion volumes with the paper's Table 2 (the
paper-size cohort of config/paper.yaml: 343 subjects, seed 2021, full size), computed without
rendering the images, or measured on the masks of a written cohort (``--phantom-volumes BIDS_DIR``,
e.g. after ``imsct phantom DIR --subjects 343 --seed 2021 --size full --jobs 2``).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from imsct.bids import Naming, discover  # noqa: E402
from imsct.phantom.cohort import generate_subject, plan_cohort  # noqa: E402


def bench_phantom(size: str, n: int, tmp: Path) -> float:
    specs = plan_cohort(n, 123)
    t0 = time.perf_counter()
    for s in specs:
        generate_subject(tmp / size, s, 123, size, Naming())
    return (time.perf_counter() - t0) / n


def phantom_volume_table(bids_dir: str | None = None, jobs: int = 2) -> Table:
    """Realised (labelled) tumor / edema / cavity volumes per tumor type against Table 2."""
    import numpy as np

    from imsct.phantom.cohort import cohort_volumes, dataset_volumes, table2_comparison

    t0 = time.perf_counter()
    if bids_dir:
        vols, src = dataset_volumes(bids_dir), f"masks of {bids_dir}"
    else:
        vols, src = cohort_volumes(343, 2021, "full", jobs=jobs), "343 subjects, seed 2021, full size, no rendering"
    cmp = table2_comparison(vols)
    astro = vols[vols["tumor_type"] == "astrocytoma"]
    n_high = int((astro["tumor_grade"] == "high").sum())
    title = (f"phantom lesion volumes vs Table 2 ({src}; {time.perf_counter() - t0:.0f} s): "
             f"edema in {np.mean(vols['edema'] > 0):.0%}, cavity in {np.mean(vols['cavity'] > 0):.0%} "
             f"(paper 51 %, 67 %); high-grade astrocytomas {n_high}/{len(astro)} (paper 36/101)")
    table = Table(title=title)
    for col in ("tumor type", "class", "n", "phantom mean ± std (cm3)", "Table 2 mean ± std", "ratio mean",
                "ratio std"):
        table.add_column(col)
    for r in cmp.to_dict("records"):
        table.add_row(r["tumor_type"], r["class"], str(r["n"]), f"{r['mean']:.1f} ± {r['std']:.1f}",
                      f"{r['paper_mean']} ± {r['paper_std']}", f"{r['mean_ratio']:.2f}", f"{r['std_ratio']:.2f}")
    return table


def fake_dataset(root: Path, n: int) -> None:
    """Empty files with the contract's names: discovery only reads names."""
    naming = Naming()
    lines = ["participant_id\ttumor_type"]
    for i in range(1, n + 1):
        sub = f"{i:04d}"
        anat = root / f"sub-{sub}" / "anat"
        lab = root / naming.labels_dir / f"sub-{sub}" / "anat"
        anat.mkdir(parents=True)
        lab.mkdir(parents=True)
        for key in ("t2w", "t1w"):
            (anat / naming.image_name(key, sub)).touch()
        stems = {"t2w_stem": f"sub-{sub}_T2w", "t1w_stem": f"sub-{sub}_ce-gad_T1w"}
        for _key, pattern in naming.labels.items():
            (lab / pattern.format(**stems)).touch()
        lines.append(f"sub-{sub}\tependymoma")
    (root / "participants.tsv").write_text("\n".join(lines) + "\n")


def bench_registration(tmp: Path, quick: bool) -> list[tuple]:
    """Real T1w->T2w pair (cord Dice of the moved T1w mask) and full-size phantoms (disc error)."""
    import nibabel as nib
    import numpy as np

    from imsct.io import load_image
    from imsct.phantom.subject import make_subject
    from imsct.preprocess.register import register
    from imsct.preprocess.transforms import point_labels, resample_to

    data = REPO.parent / "shared" / "data" / "sct_testing_data"
    t2, t1 = load_image(data / "t2/t2.nii.gz"), load_image(data / "t1/t1w.nii.gz")
    seg1 = nib.load(data / "t1/t1w_seg-manual.nii.gz")
    seg2 = np.asanyarray(nib.load(data / "t2/t2_seg-manual.nii.gz").dataobj) > 0
    times, dices = [], []
    for _ in range(2):
        t0 = time.perf_counter()
        res = register(t2, t1)
        times.append(time.perf_counter() - t0)
        moved = resample_to(np.asanyarray(seg1.dataobj), seg1.affine, t2.shape, t2.affine, res.matrix) > 0.5
        dices.append(2 * (moved & seg2).sum() / (moved.sum() + seg2.sum()))
    rows = [("registration, real t1w->t2 (first call, incl. ANTs start-up)", f"{times[0]:.2f} s", "<= 5 s",
             f"cord Dice {dices[0]:.3f} (scanner 0.852; target >= 0.90)"),
            ("registration, real t1w->t2 (warm)", f"{times[1]:.2f} s", "<= 5 s",
             f"same Dice on repeat: {dices[0] == dices[1]}; method {res.method}")]
    errs, secs = [], []
    for s in [s for s in plan_cohort(12, 77) if not s.large_motion][: 2 if quick else 5]:
        d = make_subject(s, 77, "full")
        t0 = time.perf_counter()
        res = register(nib.Nifti1Image(d.t2w, d.t2w_affine), nib.Nifti1Image(d.t1w, d.t1w_affine),
                       nib.Nifti1Image(d.labels["discs"], d.t2w_affine), nib.Nifti1Image(d.t1w_discs, d.t1w_affine))
        secs.append(time.perf_counter() - t0)
        m = np.asarray(d.truth["motion"]["t1w_from_t2w_world"])
        pts = np.array(list(point_labels(d.labels["discs"], d.t2w_affine).values()))
        diff = pts @ (res.matrix[:3, :3] - m[:3, :3]).T + res.matrix[:3, 3] - m[:3, 3]
        errs.append(np.median(np.linalg.norm(diff, axis=1)))
    rows.append(("registration, full-size phantom", f"{np.mean(secs):.1f} s", "-",
                 f"{len(secs)} subjects; median disc error {np.median(errs):.2f} mm (target <= 1.5)"))
    return rows


def _random_crop(rng, in_channels: int, out_channels: int, size, windows):
    """A training crop of noise with a lesion block in its middle third (every class)."""
    import numpy as np

    from imsct.training.data import Crop

    y = np.zeros((out_channels, *size), np.uint8)
    y[(slice(None), *(slice(n // 3, n - n // 3) for n in size))] = 1
    return Crop(rng.standard_normal((in_channels, *size)).astype(np.float16), y, windows)


def bench_training(quick: bool, device: str = "cpu", epochs: int = 2) -> list[tuple]:
    """Training seconds per epoch through the training loop itself (:func:`imsct.training.loop.train`:
    augmentation on the device, lesion oversampling, the configured loss,
    validation and the per-epoch checkpoint), with the models and recipes of ``config/config.yaml``
    (demo) and ``config/paper.yaml``, on random crops of the sizes those models see: the cord model's
    single patch, and tumor crops two patches long superior-inferior (a few windows each, as on
    full-size phantoms), in both tensor layouts (``training.memory_format``) and in fp32 and bf16 autocast
    (``training.precision``; bf16 channels-last only on CPU). The last epoch's figures
    are reported (the first warms up)."""
    import numpy as np
    import pandas as pd

    from imsct.config import load_config
    from imsct.crops import paper_to_array, sliding_patches
    from imsct.training.jobs import _config
    from imsct.training.loop import train

    configs = [("demo", REPO / "config/config.yaml")] + ([] if quick else [("paper", REPO / "config/paper.yaml")])
    rng = np.random.default_rng(0)
    rows = []
    for label, path in configs:
        cfg = load_config(path)
        common = {**cfg["training"], "threads": 2, "device": device, "seed": 0,
                  "spacing_mm": cfg["preprocess"]["spacing_mm"], "max_epochs": epochs}
        variants = [("contiguous", "fp32"), ("channels_last", "fp32"), ("channels_last", "bf16")]
        if device != "cpu":  # and the layout CUDA's auto picks, in bf16
            variants.append(("contiguous", "bf16"))
        for kind, (layout, precision) in [(k, v) for k in ("cord", "tumor") for v in variants]:
            section = {**cfg["training"][kind], "max_epochs": epochs}
            tc = _config(kind, section, {**common, "memory_format": layout, "precision": precision})
            patch = paper_to_array(section["patch"])
            if kind == "cord":
                size, windows = patch, [tuple(slice(0, n) for n in patch)]
                n_train = 2 if label == "paper" and device == "cpu" else 8
            else:
                stride = paper_to_array(section["stride"])
                size = (patch[0], patch[1], 2 * patch[2])  # array order rl, ap, si
                windows = sliding_patches(size, patch, stride)
                n_train = 4 if label == "paper" and device == "cpu" else 16

            crops = [_random_crop(rng, tc.in_channels, tc.out_channels, size, windows) for _ in range(n_train + 1)]
            with tempfile.TemporaryDirectory() as out:
                summary = train(tc, crops[:-1], crops[-1:], out)
                last = pd.read_csv(Path(out) / "log.tsv", sep="\t").iloc[-1]
            where = f"{summary['device']}{'' if summary['device'].startswith('cuda') else ', 2 threads'}"
            where += f", {layout}, {'bf16 autocast' if summary['precision'] == 'bf16' else 'fp32'}"
            samples = n_train * len(windows)
            rows.append((f"training epoch, {kind} model, {label} ({tc.base_filters} filters, {tc.downsamplings} "
                         f"downsamplings, patch {'x'.join(map(str, section['patch']))}, batch {tc.batch_size})",
                         f"{last['train_samples_per_s']:.2f} samples/s", "-",
                         f"{last['train_seconds']:.1f} s for {samples} samples ({where}); epoch with validation "
                         f"{last['seconds']:.1f} s; {summary['parameters']:,} parameters"))
    return rows


def _paper_size_model_folder(tmp: Path) -> Path:
    """Paper-size cord (8 filters) and tumor (16 filters) models with random weights, exported; the
    time does not depend on the weights."""
    from dataclasses import asdict

    import torch

    from imsct.models.unet3d import ModifiedUNet3D
    from imsct.training.export import write_model_folder
    from imsct.training.jobs import _config

    cfg = {"lr": 1e-3, "max_epochs": 1, "patience": 1, "min_delta": 0.0, "seed": 0, "threads": 2, "device": "cpu",
           "augment": {"rotation_deg": 0, "scale": 0, "translation": 0},
           "cord": {"base_filters": 8, "downsamplings": 4, "dropout": 0.3, "patch": [512, 256, 32], "batch_size": 1},
           "tumor": {"base_filters": 16, "downsamplings": 4, "dropout": 0.3, "patch": [128, 128, 32],
                     "stride": [64, 64, 32], "batch_size": 8, "safety_factor": {"si": 1.2, "ap": 1.2, "rl": 1.0},
                     "crop_from": "prediction"}}
    (tmp / "pt").mkdir(exist_ok=True)
    for kind in ("cord", "tumor"):
        tc = _config(kind, cfg[kind], cfg)
        torch.manual_seed(0)
        model = ModifiedUNet3D(tc.in_channels, tc.out_channels, tc.base_filters, tc.downsamplings)
        c = asdict(tc)
        c["class_names"] = list(tc.class_names)
        torch.save({"model": model.state_dict(), "epoch": 0, "config": c}, tmp / "pt" / f"{kind}.pt")
    write_model_folder(tmp / "pt/cord.pt", tmp / "pt/tumor.pt", tmp / "paper_onnx", "bench", cfg)
    return tmp / "paper_onnx"


PEAK_MEMORY = """
import resource, sys, nibabel as nib
from imsct.inference.predictor import Predictor, SegmentOptions
t2, t1 = nib.load(sys.argv[1]), nib.load(sys.argv[2])
Predictor(sys.argv[3], threads=2).segment(t2, t1, SegmentOptions(cascade=sys.argv[4] == "cascade"))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def _si_extent(d) -> float:
    import numpy as np

    corners = np.array([[i, j, k, 1] for i in (0, d.t2w.shape[0] - 1) for j in (0, d.t2w.shape[1] - 1)
                        for k in (0, d.t2w.shape[2] - 1)]) @ d.t2w_affine.T
    return float(np.ptp(corners[:, 2]))


def _typical_full_phantom():
    """Of six full-size phantoms (seed 5, no large motion), the one closest to the median 300 mm
    superior-inferior field of view."""
    from imsct.phantom.subject import make_subject

    subjects = [make_subject(s, 5, "full") for s in [s for s in plan_cohort(12, 5) if not s.large_motion][:6]]
    return min(subjects, key=lambda d: abs(_si_extent(d) - 300))


def _cli_pairs(t2: Path, t1: Path) -> dict[str, tuple]:
    """What `imsct segment` is timed on from the shell: a full-size phantom and the real pair."""
    data = REPO.parent / "shared/data/sct_testing_data"
    return {"full-size phantom": (t2, t1), "real pair (sct_testing_data)": (data / "t2/t2.nii.gz",
                                                                           data / "t1/t1w.nii.gz")}


def bench_segment_cli(tmp: Path) -> list[tuple]:
    """Only the `imsct segment` rows as a user runs it (real pair and a typical full-size phantom)."""
    import nibabel as nib

    folder = _paper_size_model_folder(tmp)
    d = _typical_full_phantom()
    p2, p1 = tmp / "t2.nii.gz", tmp / "t1.nii.gz"
    nib.save(nib.Nifti1Image(d.t2w.astype("float32"), d.t2w_affine), p2)
    nib.save(nib.Nifti1Image(d.t1w.astype("float32"), d.t1w_affine), p1)
    rows = bench_segment_command(folder, _cli_pairs(p2, p1), tmp)
    return rows + [bench_segment_many(folder, tmp)]


def bench_segment_many(folder: Path, tmp: Path, n: int = 4) -> tuple:
    """Several full-size phantoms in one `imsct segment` call (sessions opened once): subjects per
    minute, as the command prints it, and the wall time of the whole command."""
    import re

    import nibabel as nib

    from imsct.phantom.subject import make_subject

    t2s, t1s = [], []
    for s in [s for s in plan_cohort(n + 4, 9) if not s.large_motion][:n]:
        d = make_subject(s, 9, "full")
        t2s.append(tmp / "many" / f"{s.participant_id}_T2w.nii.gz")
        t1s.append(tmp / "many" / f"{s.participant_id}_T1w.nii.gz")
        t2s[-1].parent.mkdir(exist_ok=True)
        nib.save(nib.Nifti1Image(d.t2w.astype("float32"), d.t2w_affine), t2s[-1])
        nib.save(nib.Nifti1Image(d.t1w.astype("float32"), d.t1w_affine), t1s[-1])
    exe = shutil.which("imsct", path=str(Path(sys.executable).parent)) or "imsct"
    t0 = time.perf_counter()
    r = subprocess.run([exe, "segment", "--t2", *map(str, t2s), "--t1", *map(str, t1s), "--model", str(folder),
                        "--out", str(tmp / "many-out")], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    rate = re.search(r"([\d.]+) per minute", r.stdout)
    return (f"imsct segment, {n} full-size phantoms in one call", f"{n / wall * 60:.1f} subjects/min"
            if r.returncode == 0 else "FAILED", "-",
            f"whole command {wall:.0f} s; the command's own count (after loading): "
            f"{rate.group(1) if rate else '?'}/min")


def bench_segment(tmp: Path) -> list[tuple]:
    """`imsct segment` with paper-size models on a full-size phantom of typical extent (the one of
    six closest to the median 300 mm superior-inferior field of view): registration, single-step vs
    cascaded, onnxruntime vs PyTorch, peak memory."""
    import nibabel as nib
    import numpy as np
    import torch

    from imsct.crops import center_crop_pad, paper_to_array, tumor_network_input
    from imsct.inference.predictor import Predictor, SegmentOptions
    from imsct.inference.sliding import run_padded
    from imsct.preprocess.cordmask import tube_mask
    from imsct.preprocess.register import register
    from imsct.preprocess.resample import canonical_grid, resample_image, zscore
    from imsct.training.loop import load_model

    folder = _paper_size_model_folder(tmp)
    d = _typical_full_phantom()
    t2 = nib.Nifti1Image(d.t2w.astype(np.float32), d.t2w_affine)
    t1 = nib.Nifti1Image(d.t1w.astype(np.float32), d.t1w_affine)
    register(t2, t1)  # ANTs start-up outside the timing
    t0 = time.perf_counter()
    register(t2, t1)
    reg_s = time.perf_counter() - t0

    pred = Predictor(folder, threads=2)
    seg = pred.segment(t2, t1, SegmentOptions(cascade=False, register=False))
    secs = {k: v for k, v in seg.provenance["seconds"].items() if k != "register"}
    single = sum(secs.values())
    shape, aff = canonical_grid(t2.shape, t2.affine, (1.0, 1.0, 2.0))
    # Cascaded: random weights find no cord, so the crop is taken where a trained cord model puts it:
    # the 30 mm tube around the true centerline, grown by the safety factor.
    cord = resample_image(tube_mask(d.labels["centerline"], d.t2w_affine), d.t2w_affine, shape, aff, "mask")
    w2 = zscore(resample_image(d.t2w, d.t2w_affine, shape, aff))
    x, _, box = tumor_network_input(w2, w2, cord, (1.0, 1.2, 1.2), (32, 128, 128))
    t0 = time.perf_counter()
    pred.tumor_probability(x, "uniform", False)
    tumor_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred.cord_probability(w2)
    cord_s = time.perf_counter() - t0
    casc = cord_s + tumor_s + secs.get("resample", 0) + secs.get("postprocess", 0)

    # the same two stages with PyTorch (2 threads)
    torch.set_num_threads(2)
    cm, _ = load_model(tmp / "pt/cord.pt")
    tm, _ = load_model(tmp / "pt/tumor.pt")

    def torch_net(model):
        def run(a):
            with torch.inference_mode():
                return model(torch.from_numpy(a)).numpy()
        return run

    t0 = time.perf_counter()
    run_padded(torch_net(cm), center_crop_pad(w2[None], (32, 256, 512))[0], 16)
    cord_t = time.perf_counter() - t0
    meta = pred.meta[0]["tumor"]
    from imsct.inference.sliding import sliding_window

    t0 = time.perf_counter()
    sliding_window(torch_net(tm), x, paper_to_array(meta["patch_si_ap_rl"]), paper_to_array(meta["stride_si_ap_rl"]),
                   4, meta["size_multiple"])
    tumor_t = time.perf_counter() - t0

    # peak memory of a whole `segment` (registration included) in a fresh process
    p2, p1 = tmp / "t2.nii.gz", tmp / "t1.nii.gz"
    nib.save(t2, p2)
    nib.save(t1, p1)
    peak = {}
    for mode in ("single", "cascade"):
        r = subprocess.run([sys.executable, "-c", PEAK_MEMORY, str(p2), str(p1), str(folder), mode],
                           capture_output=True, text=True)
        peak[mode] = float(r.stdout.split()[-1]) if r.returncode == 0 else float("nan")
    ext = f"T2w {d.t2w.shape}, {_si_extent(d):.0f} mm S-I; working grid {list(shape)}"
    return [
        ("segment: registration (warm)", f"{reg_s:.1f} s", "-", ext),
        ("segment: single-step, paper-size models (onnxruntime)", f"{single:.1f} s", "-",
         ", ".join(f"{k} {v:.2f}" for k, v in secs.items())),
        ("segment: cascaded, paper-size models (onnxruntime)", f"{casc:.1f} s", "<= 3 s",
         f"crop {[b.stop - b.start for b in box]}: cord {cord_s:.2f}, tumor {tumor_s:.2f}; "
         f"speed-up x{single / casc:.1f} (target >= 3)"),
        ("segment: cascaded incl. registration", f"{casc + reg_s:.1f} s", "<= 3 s (paper: 22 s)",
         "registration + cascaded inference"),
        ("segment: cord + tumor stages with PyTorch", f"{cord_t + tumor_t:.1f} s", "-",
         f"cord {cord_t:.2f} (onnxruntime {cord_s:.2f}), tumor crop {tumor_t:.2f} (onnxruntime {tumor_s:.2f})"),
        ("segment: peak memory (RSS), fresh process", f"{peak['cascade']:.0f} MB", "-",
         f"single-step {peak['single']:.0f} MB; random weights find no cord, so both run the whole field of view"),
        *bench_segment_command(folder, _cli_pairs(p2, p1), tmp),
    ]


def bench_segment_command(folder: Path, pairs: dict[str, tuple], tmp: Path) -> list[tuple]:
    """`imsct segment` as a user runs it: the whole command from the shell (interpreter start, imports,
    registration, paper-size models), wall seconds and peak memory (GNU time)."""
    exe = shutil.which("imsct", path=str(Path(sys.executable).parent)) or "imsct"
    rows = []
    for name, (t2, t1) in pairs.items():
        if not Path(t2).exists():
            continue
        out = tmp / "cli" / name.split()[0]
        cmd = ["/usr/bin/time", "-f", "%e %M", exe, "segment", "--t2", str(t2), "--t1", str(t1), "--model",
               str(folder), "--out", str(out)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        wall, rss = (r.stderr.strip().splitlines() or ["nan nan"])[-1].split()[:2]
        ok = r.returncode == 0
        steps = ""
        if ok:  # where the time went: the pipeline's steps (sidecar), the rest is start-up, imports, writing
            import json

            side = json.loads(next(out.glob("*_label-cord_mask.json")).read_text())
            secs = side["seconds"]
            steps = "; " + ", ".join(f"{k} {v:.1f}" for k, v in secs.items())
            steps += f", start-up + imports + writing {float(wall) - sum(secs.values()):.1f}"
            # random weights put the cord anywhere: the crop the tumor model ran on says how typical it was
            steps += f"; tumor model on {[b - a for a, b in side['network_input_region']]} voxels" + (
                " (random cord model: whole field of view, an upper bound)" if side["cord_fallback_whole_fov"]
                or side["crop"] == [[0, n] for n in side["working_shape"]] else "")
        rows.append((f"imsct segment from the shell, {name}", f"{float(wall):.1f} s" if ok else "FAILED",
                     "<= 2 s, <= 1.5 GB", f"peak {float(rss) / 1024:.0f} MB; paper-size models, 2 threads{steps}"))
    return rows


def bench_dry_run(tmp: Path) -> list[tuple]:
    """The paper DAG's dry-run, plain and through the SLURM profile (one after the other), and the job
    count the profile submits; the demo's dry-run for scale."""
    import re

    exe = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"
    cfg = ["--config", f"results={tmp}/results", f"resources={tmp}/resources"]
    runs = {
        "snakemake -n -q --configfile config/paper.yaml": ["-n", "-q", "--configfile", "config/paper.yaml", *cfg],
        "snakemake -n --profile profiles/slurm (paper DAG)": ["-n", "--profile", "profiles/slurm", *cfg],
        "snakemake -n -q (demo, config/config.yaml)": ["-n", "-q", "--cores", "2", *cfg],
    }
    rows = []
    for name, args in runs.items():
        t0, ru0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        r = subprocess.run([exe, *args], cwd=REPO, capture_output=True, text=True)
        t, ru1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
        total = re.search(r"^total\s+(\d+)", r.stdout, re.M)
        # CPU beside wall: the difference is waiting (a loaded machine, or the SLURM plugin's
        # `scontrol show config` at import, which retries for MessageTimeout when no controller answers)
        note = f"CPU {cpu:.1f} s, load {os.getloadavg()[0]:.1f}"
        if total and "profile" in name:
            note += f"; {int(total.group(1)) - 1} SLURM jobs (target <= 300)"
        rows.append((name, f"{t:.1f} s" if r.returncode == 0 else "FAILED", "<= 5 s" if "paper" in name else "~1 s",
                     note))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer phantom subjects")
    ap.add_argument("--dry-run-only", action="store_true", help="only the dry-run rows (paper DAG, SLURM profile)")
    ap.add_argument("--segment-only", action="store_true", help="only `imsct segment` from the shell (real pair, "
                    "full-size phantom; paper-size models)")
    ap.add_argument("--pybids", action="store_true", help="also time pybids on the 1,000-subject dataset")
    ap.add_argument("--training-only", metavar="DEVICE", help="only the training rows, on DEVICE (cpu|cuda); "
                    "with --quick the demo models alone")
    ap.add_argument("--phantom-volumes", nargs="?", const="", metavar="BIDS_DIR",
                    help="only the phantom volumes vs Table 2 (from a written cohort's masks if BIDS_DIR is given)")
    args = ap.parse_args()
    if args.dry_run_only:
        with tempfile.TemporaryDirectory() as d:
            return print_table(bench_dry_run(Path(d)))
    if args.segment_only:
        with tempfile.TemporaryDirectory() as d:
            return print_table(bench_segment_cli(Path(d)))
    if args.training_only:
        return print_table(bench_training(args.quick, args.training_only))
    if args.phantom_volumes is not None:
        return Console(width=200).print(phantom_volume_table(args.phantom_volumes or None))
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        n_full = 4 if args.quick else 12
        t = bench_phantom("full", n_full, tmp)
        rows.append(("phantom, full-size subject (both contrasts, labels, written)", f"{t:.2f} s", "<= 1 s",
                     f"{n_full} subjects, 1 process; 343 on 2 cores: {343 * t / 2 / 60:.1f} min"))
        t = bench_phantom("small", 12, tmp)
        rows.append(("phantom, small subject", f"{t:.2f} s", "seconds per demo cohort", "12 subjects"))
        fake_dataset(tmp / "big", 1000)
        t0 = time.perf_counter()
        cohort, _ = discover(tmp / "big")
        t = time.perf_counter() - t0
        assert len(cohort) == 1000
        rows.append(("discovery, 1,000 subjects", f"{t:.2f} s", "<= 3 s", "imsct.bids.discover"))
        if args.pybids:
            import bids

            t0 = time.perf_counter()
            layout = bids.BIDSLayout(tmp / "big", validate=False, indexer=bids.BIDSLayoutIndexer(index_metadata=False))
            n = len(layout.get(suffix="T2w", extension=".nii.gz"))
            rows.append(("pybids index + query, 1,000 subjects", f"{time.perf_counter() - t0:.2f} s", "-", f"{n} T2w"))
        rows += bench_registration(tmp, quick=args.quick)
        rows += bench_training(quick=args.quick)
        rows += bench_segment(tmp)
        rows += bench_dry_run(tmp)
    print_table(rows)
    Console(width=200).print(phantom_volume_table())


def print_table(rows) -> None:
    table = Table(title="imsct benchmarks (this machine)")
    for col in ("what", "measured", "target", "notes"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
