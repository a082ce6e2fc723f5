"""T2w-only segmentation (paper 4.5.2): modality dropout in training, `imsct segment` without a T1w."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import TINY, split_sets

from imsct.cli import main

REPO = Path(__file__).resolve().parents[1]

def _sidecar(mask_path) -> dict:
    return json.loads(mask_path.with_name(mask_path.name.replace(".nii.gz", ".json")).read_text())


# ---------------------------------------------------------------- training
def test_modality_dropout_zeroes_the_t1w_channel_at_the_configured_rate():
    """Seeded: the T1w channel of about the configured share of samples is exactly 0, the T2w channel
    and the targets are untouched, and the same seed drops the same samples."""
    from imsct.training.augment import drop_modality

    gen = torch.Generator().manual_seed(0)
    samples = [(torch.randn(2, 4, 4, 4, generator=gen) + 3, (torch.rand(4, 4, 4, 4, generator=gen) > 0.5).float())
               for _ in range(2000)]
    out = drop_modality(samples, 0.3, torch.Generator().manual_seed(7))
    again = drop_modality(samples, 0.3, torch.Generator().manual_seed(7))
    dropped = [bool((x[1] == 0).all()) for x, _ in out]
    assert abs(np.mean(dropped) - 0.3) < 3 * np.sqrt(0.3 * 0.7 / 2000)  # within 3 standard errors
    assert dropped == [bool((x[1] == 0).all()) for x, _ in again]
    for (x0, y0), (x, y), d in zip(samples, out, dropped):
        assert torch.equal(x[0], x0[0]) and torch.equal(y, y0)
        assert d or torch.equal(x[1], x0[1])
    assert (samples[dropped.index(True)][0][1] != 0).all()  # the inputs were not modified in place
    # probability 0 (the paper) changes nothing and draws nothing: the random stream stays the paper's
    gen = torch.Generator().manual_seed(3)
    assert drop_modality(samples, 0.0, gen) is samples
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(3).get_state())


def test_the_training_loop_applies_modality_dropout_and_the_checkpoint_fingerprint_knows_it():
    """`epoch_patches` (the training loop's samples) drops the T1w with the configured probability; a
    checkpoint trained with another probability is not resumed (its fingerprint differs), while 0 keeps
    the fingerprint of checkpoints written before the option existed."""
    from dataclasses import replace

    from imsct.crops import sliding_patches
    from imsct.training.data import Crop
    from imsct.training.loop import TrainConfig, _fingerprint, epoch_patches

    rng = np.random.default_rng(0)
    crop = Crop(rng.normal(3, 1, (2, 16, 32, 16)).astype(np.float16), np.zeros((4, 16, 32, 16), np.uint8),
                sliding_patches((16, 32, 16), (16, 16, 16), (16, 8, 16)))
    cfg = TrainConfig("tumor", 2, 4, ("tumor", "edema", "cavity", "wholetumor"), spacing_xyz=(2.0, 1.0, 1.0))
    every = epoch_patches([crop], replace(cfg, modality_dropout=1.0), torch.Generator().manual_seed(1), "cpu")
    plain = epoch_patches([crop], cfg, torch.Generator().manual_seed(1), "cpu")
    assert len(every) == len(plain) == 3
    for (xd, yd), (x, y) in zip(every, plain):
        assert (xd[1] == 0).all() and (x[1] != 0).any()
        assert torch.equal(xd[0], x[0]) and torch.equal(yd, y)  # same augmentation, same targets
    data = [(crop.x, crop.y)]
    prints = {p: _fingerprint(replace(cfg, modality_dropout=p), data, data) for p in (0.0, 0.25, 0.5)}
    assert len(set(prints.values())) == 3
    with pytest.raises(ValueError, match="modality_dropout"):
        from imsct.training.loop import train

        train(replace(cfg, in_channels=1, modality_dropout=0.5), [crop], [crop], "unused")


def test_modality_dropout_is_a_tumor_model_setting_off_by_default():
    from imsct.config import load_config, training_recipe
    from imsct.training.jobs import _config

    paper = load_config(REPO / "config/paper.yaml")
    assert paper["training"]["tumor"]["modality_dropout"] == 0.0  # the published behaviour
    assert load_config(None)["training"]["tumor"]["modality_dropout"] == 0.0
    cfg = load_config(None, {"training": {"tumor": {"modality_dropout": 0.4}}})
    assert training_recipe(cfg["training"], "tumor")["tumor"]["modality_dropout"] == 0.4
    assert "tumor" not in training_recipe(cfg["training"], "cord")  # editing it does not retrain the cord model
    assert _config("tumor", cfg["training"]["tumor"], cfg["training"]).modality_dropout == 0.4
    with pytest.raises(ValueError, match="modality_dropout"):
        load_config(None, {"training": {"tumor": {"modality_dropout": 1.5}}})


def test_inference_without_a_t1w_feeds_the_zeros_training_drops_to():
    from imsct.crops import tumor_network_input

    t2 = np.random.default_rng(0).normal(size=(20, 30, 40)).astype(np.float32)
    x, starts, _ = tumor_network_input(t2, None, None, (1.0, 1.2, 1.2), (16, 16, 16))
    ref, ref_starts, _ = tumor_network_input(t2, t2, None, (1.0, 1.2, 1.2), (16, 16, 16))
    assert x.shape == ref.shape and starts == ref_starts
    assert np.array_equal(x[0], ref[0]) and not x[1].any()


# ---------------------------------------------------------------- segment without a T1w
@pytest.fixture(scope="module")
def dropout_model_folder(tiny_models, preprocessed_small, tmp_path_factory):
    """The tiny cord model with a tumor model trained 1 epoch with modality dropout 0.5, exported."""
    from imsct.training.export import write_model_folder
    from imsct.training.jobs import train_tumor_model

    out = tmp_path_factory.mktemp("dropout")
    cfg = {**TINY, "max_epochs": 1, "tumor": {**TINY["tumor"], "modality_dropout": 0.5}}
    cord = tiny_models[0] / "cord/best.pt"
    train_tumor_model(*split_sets(preprocessed_small), out / "tumor", cfg, str(cord))
    write_model_folder(cord, out / "tumor/best.pt", out / "onnx", "00", cfg)
    return out / "onnx"


def test_segment_without_t1w_on_the_real_t2w_scan(tiny_model_folder, dropout_model_folder, sct_data, tmp_path,
                                                   capsys, caplog):
    """`imsct segment --t2` alone on the real T2w: exit 0, every mask on the T2w's own grid, and the
    sidecars say T2w only, no registration, and warn that this model never trained without a T1w; a
    model trained with modality dropout runs without the warning."""
    from imsct.inference.modelfolder import read_model_folder

    t2_path = sct_data / "t2/t2.nii.gz"
    t2 = nib.load(t2_path)
    caplog.set_level(logging.WARNING)
    assert main(["segment", "--t2", str(t2_path), "--model", str(tiny_model_folder), "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr()
    assert "(T2w only)" in out.out and "trained without modality dropout" in caplog.text
    for name in ("tumor", "edema", "cavity", "wholetumor", "cord"):
        p = tmp_path / f"a/t2_label-{name}_mask.nii.gz"
        img = nib.load(p)
        assert img.shape == t2.shape and np.array_equal(img.affine, t2.affine), name
        assert set(np.unique(np.asanyarray(img.dataobj))) <= {0, 1}
        side = _sidecar(p)
        assert side["contrasts"] == ["T2w"] and side["t1w_missing"] is True, name
        assert side["registration"] is None and "register" not in side["seconds"]
        assert side["modality_dropout"] == [0.0] and side["trained_for_missing_t1w"] is False
        assert len(side["warnings"]) == 1 and str(tiny_model_folder) in side["warnings"][0]
    assert nib.load(tmp_path / "a/t2_label-cord_mask.nii.gz").get_fdata().any()  # the T2w-only cord model ran

    assert read_model_folder(dropout_model_folder)["tumor"]["modality_dropout"] == 0.5
    caplog.clear()
    assert main(["segment", "--t2", str(t2_path), "--model", str(dropout_model_folder),
                 "--out", str(tmp_path / "b")]) == 0
    assert "modality dropout" not in caplog.text
    side = _sidecar(tmp_path / "b/t2_label-wholetumor_mask.nii.gz")
    assert side["contrasts"] == ["T2w"] and side["trained_for_missing_t1w"] is True and side["warnings"] == []
    assert side["modality_dropout"] == [0.5]


def test_segment_several_subjects_with_and_without_t1w(tiny_model_folder, small_cohort, tmp_path, capsys):
    """`--t1` holds one entry per `--t2`, `none` for a subject without a T1w; the sidecars say which
    contrasts each subject was segmented with. Any other count is an error that says how to give them."""
    anat = [small_cohort / f"sub-00{i}/anat" for i in (1, 2)]
    t2s = [str(a / f"{a.parent.name}_T2w.nii.gz") for a in anat]
    t1 = str(anat[1] / "sub-002_ce-gad_T1w.nii.gz")
    assert main(["segment", "--t2", *t2s, "--t1", "none", t1, "--no-register", "--model", str(tiny_model_folder),
                 "--out", str(tmp_path)]) == 0
    first = _sidecar(tmp_path / "sub-001_T2w_label-tumor_mask.nii.gz")
    second = _sidecar(tmp_path / "sub-002_T2w_label-tumor_mask.nii.gz")
    assert first["contrasts"] == ["T2w"] and first["t1w_missing"] and first["warnings"]
    assert second["contrasts"] == ["T2w", "T1w"] and not second["t1w_missing"] and second["warnings"] == []
    capsys.readouterr()
    assert main(["segment", "--t2", *t2s, "--t1", t1, "--model", str(tiny_model_folder),
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--t2 names 2 image(s) but --t1 1" in err[0] and "'none'" in err[0], err
