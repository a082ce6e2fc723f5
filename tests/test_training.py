"""Splits, the modified 3D U-Net, and training: learning, determinism, resume after kill -9."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import TINY, split_sets  # noqa: E402

from imsct.crops import (
    center_crop_pad,
    cord_bbox,
    extract,
    safety_to_array,
    sliding_patches,
    tumor_region,
    tumor_region_size,
    uncrop,
)
from imsct.models.unet3d import ModifiedUNet3D, count_parameters
from imsct.phantom.cohort import participants_table, plan_cohort
from imsct.splits import make_split, make_splits, split_table, write_splits
from imsct.training.augment import augment_windows, random_affine_mm, theta_from_mm


# ---------------------------------------------------------------- splits
def test_splits_obey_lumbar_rule_and_stratification_over_many_seeds():
    table = split_table(participants_table(plan_cohort(343, 1)))
    for seed in range(40):
        s = make_split(table, seed)
        assert set(s["set"]) == {"train", "val", "test"}
        assert not ((s["tumor_region"] == "lumbar") & (s["set"] == "test")).any()
        frac = s["set"].value_counts(normalize=True)
        assert abs(frac["train"] - 0.6) < 0.03 and abs(frac["test"] - 0.2) < 0.02
        # stratified: each type's test share close to 20 %
        per_type = s.groupby("tumor_type")["set"].apply(lambda x: (x == "test").mean())
        assert (per_type - 0.2).abs().max() < 0.03


def test_splits_deterministic_and_written(tmp_path):
    table = split_table(participants_table(plan_cohort(30, 2)))
    a, b = make_splits(table, 12, 7), make_splits(table, 12, 7)
    assert all(x.equals(y) for x, y in zip(a, b))
    assert not a[0]["set"].equals(a[1]["set"])
    paths = write_splits(a, tmp_path)
    assert [p.name for p in paths] == [f"split-{i:02d}.tsv" for i in range(12)]
    back = pd.read_csv(paths[3], sep="\t")
    assert list(back["set"]) == list(a[3]["set"])
    summary = pd.read_csv(tmp_path / "summary.tsv", sep="\t")
    assert summary.groupby("split")["n"].sum().eq(30).all()
    with pytest.raises(ValueError, match="sum"):
        make_split(table, 0, (0.5, 0.2, 0.2))


# ---------------------------------------------------------------- network
@pytest.mark.parametrize("shape", [(17, 33, 45), (16, 64, 128), (5, 9, 33)])
def test_unet_output_shape_matches_odd_inputs(shape):
    m = ModifiedUNet3D(2, 4, base_filters=4, downsamplings=4).eval()
    with torch.no_grad():
        y = m(torch.randn(1, 2, *shape))
    assert y.shape == (1, 4, *shape)
    assert float(y.min()) >= 0 and float(y.max()) <= 1  # sigmoid


# Counted on ivadomed 2.6.1's Modified3DUNet (ivadomed/models.py at tag v2.6.1, instantiated with
# torch 2.13): Modified3DUNet(in_channel=2, out_channel=4, n_filters=16) has 7,125,216 trainable
# parameters and Modified3DUNet(in_channel=1, out_channel=1, n_filters=8) 1,781,192. (ivadomed builds the
# published 4-target tumor model with out_channel=5 and drops the first output after the sigmoid:
# 7,125,440 parameters, 224 of them an untrained extra 1x1x1 output channel that imsct leaves out.)
IVADOMED_TUMOR_PARAMETERS = 7_125_216
IVADOMED_CORD_PARAMETERS = 1_781_192


@pytest.mark.parametrize("kind, in_ch, out_ch, base, patch", [
    ("cord", 1, 1, 4, (16, 80, 128)),   # the demo's networks (array order rl, ap, si): the bottom
    ("tumor", 2, 4, 8, (16, 48, 64)),   # level is 2 voxels right-left
])
def test_bf16_weight_gradients_are_right(kind, in_ch, out_ch, base, patch):
    """Under CPU bfloat16 autocast every convolution's weight gradient is what its inputs and output
    gradient give, to bf16's precision. In torch 2.13 oneDNN's bf16 weight gradient of a 3x3x3
    convolution whose input is 2 voxels deep is garbage (relative error about 1, at times inf): the
    network's ``Conv3d`` runs those in fp32."""
    import torch

    from imsct.models.unet3d import Conv3d, ModifiedUNet3D

    torch.manual_seed(0)
    model = ModifiedUNet3D(in_ch, out_ch, base, 3, 0.3).eval().to(memory_format=torch.channels_last_3d)
    calls = {}

    def record(module, inputs, output):
        entry = [inputs[0].detach().bfloat16().float(), None]
        calls.setdefault(module, []).append(entry)
        output.register_hook(lambda g: entry.__setitem__(1, g.detach().bfloat16().float()))

    convs = [m for m in model.modules() if isinstance(m, Conv3d)]
    for m in convs:
        m.register_forward_hook(record)
    x = torch.randn(2, in_ch, *patch).contiguous(memory_format=torch.channels_last_3d)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the demo's
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            p = model(x)
        torch.nn.functional.binary_cross_entropy(p.float(), (torch.rand(p.shape) > 0.8).float()).backward()
    finally:
        torch.set_num_threads(threads)
    assert any(c[0].shape[2] == 2 for m in convs for c in calls[m])  # the bug's case is in this network
    errors = []
    for m in convs:
        ref = sum(torch.nn.grad.conv3d_weight(xi, m.weight.shape, gi, stride=m.stride, padding=m.padding)
                  for xi, gi in calls[m])
        errors.append(float((m.weight.grad - ref).norm() / ref.norm()))
    assert max(errors) < 0.02, errors


def test_unet_matches_ivadomed_published_topology():
    tumor = ModifiedUNet3D(2, 4, base_filters=16, downsamplings=4)
    cord = ModifiedUNet3D(1, 1, base_filters=8, downsamplings=4)
    assert count_parameters(tumor) == IVADOMED_TUMOR_PARAMETERS
    assert count_parameters(cord) == IVADOMED_CORD_PARAMETERS
    # four stride-2 convolutions: a 32-voxel right-left patch reaches 2 voxels at the bottom
    strided = [m for m in tumor.modules() if isinstance(m, torch.nn.Conv3d) and m.stride == (2, 2, 2)]
    assert len(strided) == 4 and tumor.size_multiple == 16
    # deep supervision: segmentation layers at 1/4 and 1/2 resolution plus the full-resolution one
    assert sorted(tumor.ds_levels) == [1, 2]
    # no affine instance norm and no biases, as in ivadomed: every parameter is a convolution kernel
    assert all(p.ndim == 5 for p in tumor.parameters())
    # the paper's bottom for a 128x128x32 patch is 8x8x2
    feats = []
    tumor.context[-1].register_forward_hook(lambda m, i, o: feats.append(o.shape))
    with torch.no_grad():
        tumor.eval()(torch.randn(1, 2, 32, 128, 128))
    assert feats[0] == (1, 256, 2, 8, 8)


def test_crop_helpers_round_trip():
    a = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    c, starts = center_crop_pad(a, (8, 4, 7))
    assert c.shape == (8, 4, 7)
    back = uncrop(c, starts, a.shape)
    assert np.array_equal(back[:, 1:5], a[:, 1:5])
    patches = sliding_patches((20, 30, 40), (16, 16, 16), (8, 8, 16))
    covered = np.zeros((20, 30, 40), bool)
    for p in patches:
        covered[p] = True
    assert covered.all()


def test_safety_factor_grows_superior_inferior_and_anterior_posterior_not_right_left():
    """ivadomed's (1.2, 1.2, 1.0) is height x width x depth of a sagittal image: SI x1.2, AP x1.2,
    RL x1.0. Array axes are (x RL, y AP, z SI); the box spans none of the image."""
    m = np.zeros((40, 60, 200), np.uint8)
    m[15:25, 20:40, 50:150] = 1  # RL 10, AP 20, SI 100 voxels
    sf = safety_to_array({"si": 1.2, "ap": 1.2, "rl": 1.0})
    assert sf == (1.0, 1.2, 1.2)
    box = cord_bbox(m, sf)
    assert box[0] == slice(15, 25)  # right-left unchanged
    assert box[1] == slice(18, 42)  # anterior-posterior 20 -> 24, about the centre
    assert box[2] == slice(40, 160)  # superior-inferior 100 -> 120, about the centre
    with pytest.raises(ValueError, match="si"):
        safety_to_array({"ap": 1.2, "rl": 1.0})


def test_tumor_region_takes_real_image_up_to_a_patch_and_pads_only_past_the_image():
    shape = (30, 100, 200)
    box = (slice(10, 18), slice(40, 60), slice(20, 180))  # RL 8, AP 20, SI 160
    patch = (16, 64, 64)
    starts, size = tumor_region(box, shape, patch), tumor_region_size(box, shape, patch)
    assert size == (16, 64, 160)  # max(box, patch)
    assert starts == (6, 18, 20)  # centred on the box
    # near the image border the region shifts inside the image instead of padding
    box2 = (slice(0, 6), slice(90, 100), slice(0, 50))
    s2 = tumor_region(box2, shape, patch)
    assert s2 == (0, 36, 0)
    # an image smaller than the patch is zero-padded, centred
    s3 = tumor_region(None, (10, 100, 200), patch)
    assert s3[0] == -3
    img = np.random.default_rng(0).normal(size=(10, 100, 200)).astype(np.float32)
    x = extract(img, s3, tumor_region_size(None, (10, 100, 200), patch))
    assert x.shape == (16, 100, 200) and np.array_equal(x[3:13], img) and not x[:3].any() and not x[13:].any()


def test_augmentation_is_the_papers_affine_one_axis_sagittal_scale_and_shift():
    """Rotation <= 5 deg about ONE axis, scaling +-10 % and translation +-3 % of the extent in the
    sagittal plane (array axes y AP, z SI) only, never right-left (x)."""
    extent = (64.0, 128.0, 96.0)
    mats, shifts, axes = random_affine_mm(3000, torch.Generator().manual_seed(0), extent_mm=extent)
    assert set(axes) == {0, 1, 2}
    assert torch.all(shifts[:, 0] == 0)
    assert torch.all(shifts[:, 1].abs() <= 0.03 * 128) and torch.all(shifts[:, 2].abs() <= 0.03 * 96)
    assert shifts[:, 1].abs().max() > 0.9 * 0.03 * 128
    factors = torch.linalg.norm(mats, dim=1)  # column norms: R orthonormal, so the scale per axis
    assert torch.allclose(factors[:, 0], torch.ones(3000, dtype=torch.float64))
    assert torch.all((factors[:, 1:] - 1).abs() <= 0.1 + 1e-9) and (factors[:, 1:] - 1).abs().max() > 0.09
    rot = mats / factors[:, None, :]
    for r, a in zip(rot, axes):
        assert torch.isclose(r[a, a], torch.tensor(1.0, dtype=torch.float64))  # the axis is fixed
        angle = math.degrees(math.acos(min(1.0, float(torch.trace(r) - 1) / 2)))
        assert angle <= 5.0 + 1e-6


def test_augmented_window_equals_the_window_of_the_augmented_crop():
    """Each patch sample transforms its whole crop, then cuts its window (ivadomed's sub-volume
    dataset); sampling only the window's voxels gives the same values."""
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(2, 24, 40, 32)).astype(np.float32))
    y = torch.zeros(1, 24, 40, 32)
    y[0, 8:16, 10:30, 6:26] = 1
    windows = sliding_patches((24, 40, 32), (16, 32, 16), (8, 8, 16))
    spacing = (2.0, 1.0, 1.0)
    got = augment_windows(x, y, windows, torch.Generator().manual_seed(3), spacing)
    mats, shifts, _ = random_affine_mm(len(windows), torch.Generator().manual_seed(3), extent_mm=(48.0, 40.0, 32.0))
    theta = theta_from_mm(mats, shifts, (24, 40, 32), spacing).float()
    for t, w, (xa, ya) in zip(theta, windows, got):
        grid = torch.nn.functional.affine_grid(t[None], [1, 3, 24, 40, 32], align_corners=False)
        full = torch.nn.functional.grid_sample(torch.cat([x, y])[None], grid, align_corners=False)[0]
        assert torch.allclose(xa, full[:2][(slice(None),) + w], atol=1e-5)
        assert torch.equal(ya, (full[2:][(slice(None),) + w] >= 0.5).float())
    # windows drew different transforms
    assert not torch.allclose(theta[0], theta[1])


# ---------------------------------------------------------------- training
def test_tiny_training_learns(tiny_models):
    out, cord, tumor, seconds = tiny_models  # seconds: see benchmarks (no timed assertions in tests)
    for kind, col in (("cord", "val_dice_cord"), ("tumor", "val_dice_wholetumor")):
        log = pd.read_csv(out / kind / "log.tsv", sep="\t")
        assert len(log) == TINY["max_epochs"]
        assert log["train_loss"].iloc[-1] < log["train_loss"].iloc[0]
        assert log[col].iloc[-3:].max() > log[col].iloc[0], log[[col]].T
        assert (out / kind / "loss.png").stat().st_size > 5000
    assert json.loads((out / "tumor" / "summary.json").read_text())["crop_from"] == "prediction"


def test_checkpoints_load_weights_only(tiny_models):
    from imsct.training.loop import load_model

    out = tiny_models[0]
    model, cfg = load_model(out / "tumor" / "best.pt")
    assert cfg["kind"] == "tumor" and cfg["class_names"] == ["tumor", "edema", "cavity", "wholetumor"]
    ck = torch.load(out / "tumor" / "last.pt", weights_only=True)
    assert ck["epoch"] == TINY["max_epochs"] - 1 and "optimizer" in ck


def test_cli_trains_as_the_workflow_seed_offset_by_split_and_sessions_kept(preprocessed_small, tmp_path):
    """``imsct train`` and the workflow's script call one function: the seed is offset by the split
    index (from the file name), and subjects are keyed with their sessions."""
    import yaml

    from imsct.cli import main
    from imsct.paths import working_grid_paths
    from imsct.splits import split_members
    from imsct.training.jobs import run_training

    train, val = split_sets(preprocessed_small)
    pre = tmp_path / "preprocess"
    for key, paths in preprocessed_small.items():
        for name, target in working_grid_paths(pre, key).items():
            if name in paths:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                Path(target).symlink_to(paths[name])
    rows = [{"participant_id": f"sub-{k}", "set": "train" if k in train else "val"} for k in preprocessed_small]
    split_file = tmp_path / "split-01.tsv"
    pd.DataFrame(rows).to_csv(split_file, sep="\t", index=False)
    recipe = {**TINY, "max_epochs": 1}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({"training": recipe}))
    assert main(["train", "--model", "cord", "--split", str(split_file), "--preprocessed", str(pre),
                 "--out", str(tmp_path / "cli"), "--config", str(tmp_path / "cfg.yaml")]) == 0
    spacing = (1.0, 1.0, 2.0)
    run_training("cord", "01", train, val, tmp_path / "wf1", recipe, spacing, threads=2, device="cpu")
    run_training("cord", "00", train, val, tmp_path / "wf0", recipe, spacing, threads=2, device="cpu")
    loss = {d: pd.read_csv(tmp_path / d / "log.tsv", sep="\t")["train_loss"].tolist() for d in ("cli", "wf1", "wf0")}
    assert loss["cli"] == loss["wf1"] and loss["cli"] != loss["wf0"]
    assert json.loads((tmp_path / "cli/summary.json").read_text())["config"]["seed"] == TINY["seed"] + 1
    # sessions follow their participant
    table = pd.DataFrame({"participant_id": ["sub-01", "sub-02"], "set": ["train", "test"]})
    keys = ["01", "01_ses-a", "01_ses-b", "02_ses-a", "10"]
    assert split_members(table, keys, "train") == ["01", "01_ses-a", "01_ses-b"]
    assert split_members(table, keys, "test") == ["02_ses-a"]


def test_same_seed_same_first_losses(preprocessed_small, tmp_path):
    from imsct.training.jobs import train_cord_model

    train, val = split_sets(preprocessed_small)
    cfg = {**TINY, "max_epochs": 2}
    train_cord_model(train, val, tmp_path / "a", cfg)
    train_cord_model(train, val, tmp_path / "b", cfg)
    a = pd.read_csv(tmp_path / "a/log.tsv", sep="\t")
    b = pd.read_csv(tmp_path / "b/log.tsv", sep="\t")
    assert a["train_loss"].tolist() == b["train_loss"].tolist()
    assert a["val_loss"].tolist() == b["val_loss"].tolist()


def test_tensor_layout_is_a_speed_setting_the_same_computation(preprocessed_small, tmp_path):
    """``memory_format``: channels-last on CPU under ``auto``; the contiguous layout computes the same
    first epoch up to floating-point summation order, and the layout is not part of the fingerprint."""
    import torch

    from imsct.training.jobs import train_cord_model
    from imsct.training.loop import TrainConfig, _fingerprint, memory_format

    cfg = TrainConfig(kind="cord", in_channels=1, out_channels=1, class_names=("cord",))
    samples = [(np.ones((1, 4, 4, 4), np.float32), np.zeros((1, 4, 4, 4), np.uint8))]
    other = TrainConfig(kind="cord", in_channels=1, out_channels=1, class_names=("cord",), memory_format="contiguous")
    assert _fingerprint(cfg, samples, samples) == _fingerprint(other, samples, samples)
    assert memory_format(cfg, torch.device("cpu")) == torch.channels_last_3d
    assert memory_format(cfg, torch.device("cuda")) == torch.contiguous_format
    with pytest.raises(ValueError, match="memory_format"):
        memory_format(TrainConfig(kind="cord", in_channels=1, out_channels=1, class_names=("cord",),
                                  memory_format="nhwc"), torch.device("cpu"))
    train, val = split_sets(preprocessed_small)
    logs = {}
    for layout in ("channels_last", "contiguous"):
        train_cord_model(train, val, tmp_path / layout, {**TINY, "max_epochs": 1, "memory_format": layout})
        logs[layout] = pd.read_csv(tmp_path / layout / "log.tsv", sep="\t").iloc[0]
        assert json.loads((tmp_path / layout / "summary.json").read_text())["config"]["memory_format"] == layout
    for col in ("train_loss", "val_loss"):
        assert logs["channels_last"][col] == pytest.approx(logs["contiguous"][col], rel=1e-4)


def test_precision_is_part_of_the_recipe_and_bf16_really_runs(preprocessed_small, tmp_path):
    """``precision``: fp32 and bf16 as asked, ``auto`` bf16 only where the device has it natively; bf16
    autocast changes the numbers (a little: same first epoch to a few percent) and the fingerprint, so
    a checkpoint trained in one precision is not resumed in the other."""
    import torch

    from imsct.training.jobs import train_cord_model
    from imsct.training.loop import TrainConfig, _fingerprint, autocast_bf16, native_bf16

    def cfg(precision):
        return TrainConfig(kind="cord", in_channels=1, out_channels=1, class_names=("cord",), precision=precision)

    cpu = torch.device("cpu")
    assert autocast_bf16(cfg("bf16"), cpu) and not autocast_bf16(cfg("fp32"), cpu)
    assert autocast_bf16(cfg("auto"), cpu) == native_bf16(cpu)
    with pytest.raises(ValueError, match="precision 'fp16'"):
        autocast_bf16(cfg("fp16"), cpu)
    samples = [(np.ones((1, 4, 4, 4), np.float32), np.zeros((1, 4, 4, 4), np.uint8))]
    assert _fingerprint(cfg("bf16"), samples, samples, True) != _fingerprint(cfg("fp32"), samples, samples, False)
    train, val = split_sets(preprocessed_small)
    logs = {}
    for precision in ("fp32", "bf16"):
        train_cord_model(train, val, tmp_path / precision, {**TINY, "max_epochs": 1, "precision": precision})
        logs[precision] = pd.read_csv(tmp_path / precision / "log.tsv", sep="\t").iloc[0]
        assert json.loads((tmp_path / precision / "summary.json").read_text())["precision"] == precision
    for col in ("train_loss", "val_loss"):
        assert logs["bf16"][col] != logs["fp32"][col]
        assert logs["bf16"][col] == pytest.approx(logs["fp32"][col], rel=0.05)


def test_a_non_finite_loss_stops_training_with_a_clear_error(tmp_path):
    """A loss that turns NaN (here a NaN input voxel) stops the job at once, naming the model, the
    epoch and the precision, instead of writing 'best' checkpoints of NaN weights."""
    from imsct.training.data import Crop
    from imsct.training.loop import TrainConfig, train

    rng = np.random.default_rng(0)
    win = [(slice(0, 8), slice(0, 8), slice(0, 8))]
    x, y = rng.standard_normal((1, 8, 8, 8)).astype(np.float16), (rng.random((1, 8, 8, 8)) > 0.5).astype(np.uint8)
    good = Crop(x, y, win)
    bad = Crop(good.x.copy(), good.y, win)
    bad.x[0, 3, 3, 3] = np.nan
    cfg = TrainConfig(kind="cord", in_channels=1, out_channels=1, class_names=("cord",), base_filters=2,
                      downsamplings=2, max_epochs=2, threads=1, precision="fp32",
                      augment={"rotation_deg": 0.0, "scale": 0.0, "translation": 0.0})
    with pytest.raises(FloatingPointError, match=r"cord model: training loss is nan in epoch 0 \(fp32"):
        train(cfg, [bad], [good], tmp_path / "nan")
    assert not (tmp_path / "nan/best.pt").exists()
    assert train(cfg, [good], [good], tmp_path / "ok")["epochs_run"] == 2


RUNNER = """
import json, sys
from imsct.training.jobs import train_cord_model
train, val, out, cfg = json.load(open(sys.argv[1]))
train_cord_model(train, val, out, cfg)
"""


def test_resume_after_kill_continues_at_the_right_epoch(preprocessed_small, tmp_path):
    """kill -9 a real training process after its first checkpoints; the rerun resumes from the last
    epoch with the same optimizer state, ending exactly as an uninterrupted run."""
    from imsct.training.jobs import train_cord_model

    train, val = split_sets(preprocessed_small)
    cfg = {**TINY, "max_epochs": 5, "threads": 1}
    args = tmp_path / "args.json"
    args.write_text(json.dumps([train, val, str(tmp_path / "killed"), cfg]))
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(args)], start_new_session=True)
    last = tmp_path / "killed" / "last.pt"
    deadline = time.time() + 120
    epoch = -1
    while time.time() < deadline and proc.poll() is None:
        if last.exists():
            try:
                epoch = torch.load(last, weights_only=True)["epoch"]
            except Exception:  # being replaced right now
                epoch = -1
            if epoch >= 1:
                break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 1 <= epoch < cfg["max_epochs"] - 1, "the process should be killed mid-run"
    killed_at = torch.load(last, weights_only=True)["epoch"]
    train_cord_model(train, val, tmp_path / "killed", cfg)  # rerun: resumes
    resumed = pd.read_csv(tmp_path / "killed/log.tsv", sep="\t")
    train_cord_model(train, val, tmp_path / "straight", cfg)
    straight = pd.read_csv(tmp_path / "straight/log.tsv", sep="\t")
    assert resumed["epoch"].tolist() == list(range(cfg["max_epochs"]))
    assert killed_at < cfg["max_epochs"] - 1
    np.testing.assert_allclose(resumed["train_loss"], straight["train_loss"], rtol=1e-6)
    a = torch.load(tmp_path / "killed/last.pt", weights_only=True)["optimizer"]["state"]
    b = torch.load(tmp_path / "straight/last.pt", weights_only=True)["optimizer"]["state"]
    for k in b:
        torch.testing.assert_close(a[k]["exp_avg"], b[k]["exp_avg"], rtol=1e-5, atol=1e-7)


def test_stale_checkpoint_is_not_resumed_and_lost_outputs_come_back(preprocessed_small, tmp_path, caplog):
    """A `last.pt` from other data (new splits) is not resumed; a rerun whose `best.pt` and `log.tsv`
    were deleted (as Snakemake does before rerunning a job) restores them without training again."""
    import logging

    from imsct.training.jobs import train_cord_model

    train, val = split_sets(preprocessed_small)
    cfg = {**TINY, "max_epochs": 2, "threads": 1}
    out = tmp_path / "cord"
    first = train_cord_model(train, val, out, cfg)
    best = torch.load(out / "best.pt", weights_only=True)["model"]
    (out / "best.pt").unlink()
    (out / "log.tsv").unlink()
    again = train_cord_model(train, val, out, cfg)
    assert again["best_epoch"] == first["best_epoch"] and len(pd.read_csv(out / "log.tsv", sep="\t")) == 2
    for k, v in torch.load(out / "best.pt", weights_only=True)["model"].items():
        torch.testing.assert_close(v, best[k])
    # other subjects (as after new splits): from scratch, with a warning
    keys = sorted(preprocessed_small)
    other_train = {k: preprocessed_small[k] for k in keys[2:]}
    other_val = {k: preprocessed_small[k] for k in keys[:2]}
    with caplog.at_level(logging.WARNING):
        train_cord_model(other_train, other_val, out, cfg)
    assert "from scratch" in caplog.text
    assert pd.read_csv(out / "log.tsv", sep="\t")["epoch"].tolist() == [0, 1]


# ---------------------------------------------------------------- export
def test_export_model_folder_parity_and_hashes(tiny_models, tmp_path):
    import onnx
    import onnxruntime as ort

    from imsct.inference.modelfolder import ModelFolderError, read_model_folder
    from imsct.training.export import write_model_folder
    from imsct.training.loop import load_model

    out = tiny_models[0]
    folder = tmp_path / "onnx"
    write_model_folder(out / "cord/best.pt", out / "tumor/best.pt", folder, "00", TINY)
    meta = read_model_folder(folder)
    assert meta["channels"] == ["T2w", "T1w"] and meta["tumor"]["classes"][-1] == "wholetumor"
    assert meta["tumor"]["parity"]["max_abs_diff"] <= 1e-4 and meta["cord"]["parity"]["max_abs_diff"] <= 1e-4
    assert meta["tumor"]["patch_si_ap_rl"] == TINY["tumor"]["patch"]
    # the ONNX model computes what the checkpoint computes, on a real preprocessed-size input
    model, _ = load_model(out / "tumor/best.pt")
    x = torch.randn(1, 2, 16, 32, 48)
    with torch.no_grad():
        ref = model(x).numpy()
    got = ort.InferenceSession(str(folder / "tumor.onnx")).run(None, {"input": x.numpy()})[0]
    assert np.abs(ref - got).max() <= 1e-4
    # upsampling is exported as broadcast + reshape, not ONNX Runtime's slow 5-D Resize
    ops = {n.op_type for n in onnx.load(str(folder / "tumor.onnx")).graph.node}
    assert "Resize" not in ops and {"Expand", "Reshape", "Conv"} <= ops
    # a tampered folder is refused
    data = bytearray((folder / "cord.onnx").read_bytes())
    data[-10] ^= 0xFF
    (folder / "cord.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelFolderError, match="SHA-256"):
        read_model_folder(folder)


def test_dice_bce_loss_is_the_paper_dice_plus_cross_entropy_and_punishes_confident_false_positives():
    from imsct.training.losses import bce, dice_loss, loss_function

    gen = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 4, 8, 8, 4, generator=gen)
    target = (torch.rand(2, 4, 8, 8, 4, generator=gen) > 0.7).float()
    ref = torch.nn.functional.binary_cross_entropy(pred, target)
    assert torch.allclose(bce(pred, target), ref, rtol=1e-5)
    assert loss_function("dice") is dice_loss
    assert torch.allclose(loss_function("dice_bce")(pred, target), dice_loss(pred, target) + ref, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown loss 'focal'"):
        loss_function("focal")
    # The class is present in sample 0; sample 1 holds a confident false positive (p = 0.95): the Dice
    # term pulls the false positive down weakly; the cross-entropy (1 / (1 - p) per voxel) several times harder.
    target = torch.zeros(2, 1, 8, 8, 4)
    target[0, 0, 2:6, 2:6, :] = 1
    grads = {}
    for name in ("dice", "dice_bce"):
        p = torch.where(target > 0, 0.9, 0.02)
        p[1, 0, 2:4, 2:4, :] = 0.95
        p.requires_grad_(True)
        loss_function(name)(p, target).backward()
        grads[name] = float(p.grad[1, 0, 2, 2, 0])
    assert grads["dice"] > 0 and grads["dice_bce"] > 5 * grads["dice"]


def test_the_loss_is_a_tumor_model_setting_dice_in_the_paper():
    from imsct.config import load_config
    from imsct.training.jobs import _config

    repo = Path(__file__).resolve().parents[1]
    assert load_config(repo / "config/paper.yaml")["training"]["tumor"]["loss"] == "dice"
    assert load_config(None)["training"]["tumor"]["loss"] == "dice"
    cfg = load_config(None, {"training": {"tumor": {"loss": "dice_bce"}}})["training"]
    assert _config("tumor", cfg["tumor"], cfg).loss == "dice_bce"
    assert _config("cord", cfg["cord"], cfg).loss == "dice"  # the cord model keeps the paper's loss
    with pytest.raises(ValueError, match="loss"):
        load_config(None, {"training": {"tumor": {"loss": "focal"}}})


def test_intensity_jitter_scales_and_shifts_each_channel_on_its_own_and_is_off_in_the_paper():
    from imsct.config import load_config
    from imsct.training.augment import jitter_intensity

    gen = torch.Generator().manual_seed(1)
    samples = [(torch.randn(2, 6, 5, 4, generator=gen), torch.ones(4, 6, 5, 4)) for _ in range(40)]
    state = gen.get_state()
    assert jitter_intensity(samples, 0.0, 0.0, gen) is samples and torch.equal(gen.get_state(), state)
    out = jitter_intensity(samples, 0.6, 0.5, gen)
    factors, shifts = [], []
    for (x, y), (x2, y2) in zip(samples, out):
        assert y2 is y
        for c in range(2):  # exactly an affine map of the channel: recover factor and shift
            f = float(((x2[c] - x2[c].mean()) * (x[c] - x[c].mean())).sum() / ((x[c] - x[c].mean()) ** 2).sum())
            b = float((x2[c] - f * x[c]).mean())
            torch.testing.assert_close(x2[c], f * x[c] + b, rtol=1e-4, atol=1e-4)
            factors.append(f)
            shifts.append(b)
    factors, shifts = np.array(factors), np.array(shifts)
    assert factors.min() >= 1 / 1.6 - 1e-4 and factors.max() <= 1.6 + 1e-4 and np.abs(shifts).max() <= 0.5 + 1e-4
    assert factors.min() < 0.8 and factors.max() > 1.3  # the range is used, both ways
    assert not np.allclose(factors[0::2], factors[1::2])  # T2w and T1w get their own factors
    repo = Path(__file__).resolve().parents[1]
    paper = load_config(repo / "config/paper.yaml")["training"]["augment"]
    assert paper["contrast"] == 0.0 and paper["brightness"] == 0.0
    with pytest.raises(ValueError, match="contrast"):
        load_config(None, {"training": {"augment": {"contrast": -1}}})


def test_mirroring_flips_image_and_labels_together_per_axis_and_is_off_in_the_paper(tmp_path):
    from imsct.config import load_config
    from imsct.training.augment import mirror_samples
    from imsct.training.loop import TrainConfig, epoch_patches

    gen = torch.Generator().manual_seed(2)
    samples = [(torch.randn(2, 6, 5, 4, generator=gen), torch.rand(4, 6, 5, 4, generator=gen)) for _ in range(400)]
    state = gen.get_state()
    assert mirror_samples(samples, [], gen) is samples and torch.equal(gen.get_state(), state)
    out = mirror_samples(samples, ["rl", "si"], gen)
    counts = {}
    for (x, y), (x2, y2) in zip(samples, out):
        # which flip turned the input into its copy: the labels went through the very same one
        dims = next(d for d in ([], [1], [3], [1, 3]) if torch.equal(x2, x.flip(d) if d else x))
        assert torch.equal(y2, y.flip(dims) if dims else y)
        counts[tuple(dims)] = counts.get(tuple(dims), 0) + 1
    assert set(counts) == {(), (1,), (3,), (1, 3)}  # never the anterior-posterior axis (2)
    assert all(70 <= n <= 130 for n in counts.values()), counts  # each axis on its own, p = 0.5
    # in the training loop: the augmented patches of one crop differ with mirroring on, not without
    from types import SimpleNamespace

    x = np.random.default_rng(0).normal(size=(2, 16, 16, 16)).astype(np.float32)
    crop = SimpleNamespace(x=x, y=(x[:1] > 1).astype(np.float32), windows=[(slice(0, 16),) * 3] * 8)
    still = {"rotation_deg": 0.0, "scale": 0.0, "translation": 0.0}
    for axes, flipped in (([], False), (["ap"], True)):
        cfg = TrainConfig("tumor", 2, 1, ["tumor"], augment={**still, "mirror": axes})
        got = epoch_patches([crop], cfg, torch.Generator().manual_seed(0), "cpu")
        ap = [torch.allclose(p[0], torch.from_numpy(x).flip([2]), atol=1e-5) for p in got]
        same = [torch.allclose(p[0], torch.from_numpy(x), atol=1e-5) for p in got]
        assert all(a or b for a, b in zip(ap, same))
        assert any(ap) is flipped and any(same)
    repo = Path(__file__).resolve().parents[1]
    assert load_config(repo / "config/paper.yaml")["training"]["augment"].get("mirror", []) == []
    with pytest.raises(ValueError, match="mirror"):
        load_config(None, {"training": {"augment": {"mirror": ["up"]}}})


def test_lesion_oversampling_by_class_draws_a_rare_class_as_often_as_a_common_one_and_is_off_in_the_paper():
    from imsct.config import load_config
    from imsct.training.jobs import _config
    from imsct.training.loop import TrainConfig, batch_order

    # 200 patches of 4 classes: 60 hold tumor (channel 0), 6 hold edema (channel 1), the rest nothing
    patches = []
    for i in range(200):
        y = np.zeros((4, 2, 2, 2), np.uint8)
        if i < 60:
            y[0, 0, 0, 0] = y[3, 0, 0, 0] = 1
        elif i < 66:
            y[1, 0, 0, 0] = y[3, 0, 0, 0] = 1
        patches.append((None, y))
    edema = set(range(60, 66))

    def edema_share(by, frac=0.5):
        cfg = TrainConfig(kind="tumor", in_channels=2, out_channels=4, class_names=("a", "b", "c", "d"),
                          batch_size=8, lesion_oversampling=frac, lesion_oversampling_by=by)
        batches = batch_order(patches, cfg, torch.Generator().manual_seed(0))
        forced = [i for b in batches for i in b[len(b) - round(frac * len(b)):]]
        assert all(patches[i][1].any() for i in forced)  # every forced place holds a target voxel
        return np.mean([i in edema for i in forced]), batches

    # class: edema (held by 6 patches) is drawn for each class slot it is one of: tumor, edema, whole
    # tumor (which edema patches hold 6 of 66 times); expected share (0 + 1 + 6/66) / 3 = 0.36
    share, batches = edema_share("class")
    assert 0.28 < share < 0.45
    assert sorted(i for b in batches for i in b[:4]) == sorted(  # the random half keeps its order
        torch.randperm(200, generator=torch.Generator().manual_seed(0)).tolist()[i] for i in
        [j for s in range(0, 200, 8) for j in range(s, s + 4)])
    lesion_share, _ = edema_share("lesion")
    assert lesion_share < 0.2  # 6 of 66 lesion patches: about 9 %

    def before_the_setting(patches, cfg, gen):  # batch_order as it was (commit 383cb0f)
        order = torch.randperm(len(patches), generator=gen).tolist()
        batches = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
        k = int(round(cfg.lesion_oversampling * cfg.batch_size))
        if k:
            fg = [i for i, (_, y) in enumerate(patches) if bool(y.any())]
            if fg:
                for b in batches:
                    picks = torch.randint(0, len(fg), (min(k, len(b)),), generator=gen).tolist()
                    b[len(b) - len(picks):] = [fg[p] for p in picks]
        return batches

    for n, frac in ((200, 0.33), (61, 0.5), (3, 1.0)):  # lesion draws as before, and leaves the RNG as before
        cfg = TrainConfig(kind="tumor", in_channels=2, out_channels=4, class_names=("a", "b", "c", "d"),
                          batch_size=8, lesion_oversampling=frac)
        g1, g2 = torch.Generator().manual_seed(n), torch.Generator().manual_seed(n)
        assert batch_order(patches[:n], cfg, g1) == before_the_setting(patches[:n], cfg, g2)
        assert torch.equal(g1.get_state(), g2.get_state())
    off = TrainConfig(kind="tumor", in_channels=2, out_channels=4, class_names=("a", "b", "c", "d"), batch_size=8)
    assert batch_order(patches, off, torch.Generator().manual_seed(0)) == [  # 0: every patch once, shuffled
        torch.randperm(200, generator=torch.Generator().manual_seed(0)).tolist()[i:i + 8] for i in range(0, 200, 8)]

    repo = Path(__file__).resolve().parents[1]
    assert load_config(repo / "config/paper.yaml")["training"]["tumor"]["lesion_oversampling"] == 0
    cfg = load_config(None, {"training": {"tumor": {"lesion_oversampling": 0.33}}})["training"]
    assert _config("tumor", cfg["tumor"], cfg).lesion_oversampling_by == "lesion"  # the draws of earlier versions
    with pytest.raises(ValueError, match="lesion_oversampling_by"):
        load_config(None, {"training": {"tumor": {"lesion_oversampling_by": "voxel"}}})


def test_checkpoint_fingerprint_knows_how_oversampling_draws_and_keeps_earlier_checkpoints():
    """A checkpoint trained with class draws is not resumed by a lesion-draw run; lesion draws (what
    checkpoints before the setting used) and no oversampling keep the fingerprint they had."""
    from dataclasses import replace

    from imsct.training.loop import TrainConfig, _fingerprint

    data = [(np.ones((2, 4, 4, 4), np.float32), np.zeros((4, 4, 4, 4), np.uint8))]
    cfg = TrainConfig(kind="tumor", in_channels=2, out_channels=4, class_names=("a", "b", "c", "d"),
                      lesion_oversampling=0.33)
    prints = {by: _fingerprint(replace(cfg, lesion_oversampling_by=by), data, data) for by in ("lesion", "class")}
    assert prints["lesion"] != prints["class"]
    off = replace(cfg, lesion_oversampling=0.0)
    assert _fingerprint(replace(off, lesion_oversampling_by="class"), data, data) == _fingerprint(off, data, data)
