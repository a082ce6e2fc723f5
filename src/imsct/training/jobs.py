"""Per-split training jobs: the cord localisation model, then the tumor model on cord crops taken
from the cord model's own predictions (as the published configuration did) or from the ground-truth
cord mask."""

from __future__ import annotations

import logging

from pathlib import Path

import numpy as np
import torch

from .data import (CLASSES, cord_sample, center_crop_pad, load_case, paper_to_array, tumor_samples,
                   uncrop)
from ..inference.postprocess import largest_component
from ..io import write_json
from .loop import TrainConfig, load_model, pick_device, train

log = logging.getLogger(__name__)


def _config(kind: str, section: dict, common: dict) -> TrainConfig:
    return TrainConfig(
        kind=kind,
        in_channels=1 if kind == "cord" else 2,
        out_channels=1 if kind == "cord" else len(CLASSES),
        class_names=("cord",) if kind == "cord" else CLASSES,
        base_filters=section["base_filters"], depth=section["depth"], dropout=section["dropout"],
        batch_size=section["batch_size"], lr=common["lr"], max_epochs=common["max_epochs"],
        patience=common["patience"], min_delta=common["min_delta"], seed=common["seed"],
        threads=common["threads"], device=common["device"], augment=dict(common["augment"]),
        max_epoch_seconds=common.get("max_epoch_seconds"),
    )


def predict_cord(model, t2w: np.ndarray, patch, device) -> np.ndarray:
    """Binary cord mask (largest component) on the working grid, from the single centred patch."""
    x, starts = center_crop_pad(t2w[None].astype(np.float32), patch)
    with torch.no_grad():
        p = model(torch.from_numpy(x[None]).to(device)).float().cpu().numpy()[0, 0]
    return largest_component(uncrop(p, starts, t2w.shape) >= 0.5).astype(np.uint8)


def train_cord_model(train_paths: dict, val_paths: dict, out_dir, cfg: dict) -> dict:
    section = cfg["cord"]
    patch = paper_to_array(section["patch"])
    tc = _config("cord", section, cfg)
    samples = {k: [cord_sample(load_case(key, p), patch) for key, p in paths.items()]
               for k, paths in (("train", train_paths), ("val", val_paths))}
    return train(tc, samples["train"], samples["val"], out_dir)


def train_tumor_model(train_paths: dict, val_paths: dict, out_dir, cfg: dict, cord_model: str | None = None) -> dict:
    section = cfg["tumor"]
    patch, stride = paper_to_array(section["patch"]), paper_to_array(section["stride"])
    safety = tuple(section["safety_factor"])
    tc = _config("tumor", section, cfg)
    use_pred = section["crop_from"] == "prediction"
    if use_pred and not cord_model:
        raise ValueError("tumor.crop_from is 'prediction' but no cord model was given")
    device = pick_device(cfg["device"])
    model = None
    if use_pred:
        model, mcfg = load_model(cord_model, device)
        cord_patch = paper_to_array(cfg["cord"]["patch"])
    samples, missed = {}, 0
    for k, paths in (("train", train_paths), ("val", val_paths)):
        samples[k] = []
        for key, p in paths.items():
            case = load_case(key, p)
            crop = case.masks["cord"]
            if model is not None:
                pred = predict_cord(model, case.t2w, cord_patch, device)
                if pred.any():
                    crop = pred
                else:
                    missed += 1
                    log.warning("%s: cord model found no cord; cropping with the ground-truth cord mask", key)
            samples[k] += tumor_samples(case, crop, patch, stride, safety)
    summary = train(tc, samples["train"], samples["val"], out_dir)
    summary["crop_from"] = section["crop_from"]
    summary["cord_predictions_missed"] = missed
    write_json(summary, Path(out_dir) / "summary.json")
    return summary
