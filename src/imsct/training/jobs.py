"""Per-split training jobs: the cord localisation model, then the tumor model on cord crops taken
from the cord model's own predictions (as the published configuration did) or from the ground-truth
cord mask, and the single-step baseline (the tumor model trained on the whole image, paper 2.6.2)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ..classes import CLASSES
from ..config import training_recipe
from ..crops import cord_network_input, paper_to_array, safety_to_array, uncrop
from ..inference.postprocess import largest_component
from ..io import write_json
from .data import cord_crop, load_case, tumor_crop
from .loop import TrainConfig, load_model, pick_device, train

log = logging.getLogger(__name__)


def run_training(kind: str, split: int | str, train_paths: dict, val_paths: dict, out_dir, recipe: dict,
                 spacing_mm, threads: int = 1, device: str = "auto", cord_model: str | None = None,
                 memory_format: str = "auto") -> dict:
    """One training job as the workflow and ``imsct train`` run it: ``kind`` cord, tumor or single
    (the single-step baseline); the seed is offset by the split index so splits differ."""
    cfg = training_recipe(recipe)
    cfg.update(seed=int(cfg.get("seed", 0)) + int(split), threads=int(threads), device=device,
               memory_format=memory_format, spacing_mm=list(spacing_mm))
    if kind == "cord":
        return train_cord_model(train_paths, val_paths, out_dir, cfg)
    if kind == "single":
        epochs = (cfg.get("single_step") or {}).get("max_epochs")
        if epochs:  # the tumor section's recipe, fewer epochs
            cfg["tumor"] = {**cfg["tumor"], "max_epochs": int(epochs)}
        return train_tumor_model(train_paths, val_paths, out_dir, cfg, single_step=True)
    if kind == "tumor":
        return train_tumor_model(train_paths, val_paths, out_dir, cfg, cord_model)
    raise ValueError(f"unknown model kind {kind!r} (cord, tumor or single)")


def _spacing_xyz(v) -> tuple[float, float, float]:
    """Working-grid spacing (si, ap, rl mm) in array order."""
    si, ap, rl = v
    return float(rl), float(ap), float(si)


def _config(kind: str, section: dict, common: dict) -> TrainConfig:
    spacing = common.get("spacing_mm", (1.0, 1.0, 2.0))
    return TrainConfig(
        kind=kind,
        in_channels=1 if kind == "cord" else 2,
        out_channels=1 if kind == "cord" else len(CLASSES),
        class_names=("cord",) if kind == "cord" else CLASSES,
        base_filters=section["base_filters"], downsamplings=section["downsamplings"], dropout=section["dropout"],
        batch_size=section["batch_size"], lr=common["lr"],
        # each published model had its own configuration file; a section may set its own epochs
        max_epochs=section.get("max_epochs") or common["max_epochs"],
        patience=section.get("patience") or common["patience"], min_delta=common["min_delta"], seed=common["seed"],
        threads=common["threads"], device=common["device"], memory_format=common.get("memory_format", "auto"),
        precision=common.get("precision", "auto"),
        augment=dict(common["augment"]),
        max_epoch_seconds=common.get("max_epoch_seconds"), spacing_xyz=_spacing_xyz(spacing),
        lesion_oversampling=float(section.get("lesion_oversampling", 0.0)),
        lesion_oversampling_by=section.get("lesion_oversampling_by", "lesion"),
        modality_dropout=float(section.get("modality_dropout", 0.0)),
        loss=section.get("loss", "dice"),
    )


def predict_cord(model, t2w: np.ndarray, patch, device) -> np.ndarray:
    """Binary cord mask (largest component) on the working grid, from the single centred patch (the
    input :func:`imsct.crops.cord_network_input` builds at inference too)."""
    x, starts = cord_network_input(t2w, patch)
    with torch.no_grad():
        p = model(torch.from_numpy(x[None]).to(device)).float().cpu().numpy()[0, 0]
    return largest_component(uncrop(p, starts, t2w.shape) >= 0.5).astype(np.uint8)


def train_cord_model(train_paths: dict, val_paths: dict, out_dir, cfg: dict) -> dict:
    section = cfg["cord"]
    patch = paper_to_array(section["patch"])
    tc = _config("cord", section, cfg)
    crops = {k: [cord_crop(load_case(key, p), patch) for key, p in paths.items()]
             for k, paths in (("train", train_paths), ("val", val_paths))}
    return train(tc, crops["train"], crops["val"], out_dir)


def train_tumor_model(train_paths: dict, val_paths: dict, out_dir, cfg: dict, cord_model: str | None = None,
                      single_step: bool = False) -> dict:
    """The tumor model on cord crops or, with ``single_step``, on the whole image (same patch, stride
    and recipe: the paper's baseline)."""
    section = cfg["tumor"]
    patch, stride = paper_to_array(section["patch"]), paper_to_array(section["stride"])
    safety = safety_to_array(section["safety_factor"])
    tc = _config("tumor", section, cfg)
    crop_from = "whole_image" if single_step else section["crop_from"]
    use_pred = crop_from == "prediction"
    if use_pred and not cord_model:
        raise ValueError("tumor.crop_from is 'prediction' but no cord model was given")
    device = pick_device(cfg["device"])
    model = None
    if use_pred:
        model, _ = load_model(cord_model, device)
        cord_patch = paper_to_array(cfg["cord"]["patch"])
    crops, missed = {}, 0
    for k, paths in (("train", train_paths), ("val", val_paths)):
        crops[k] = []
        for key, p in paths.items():
            case = load_case(key, p)
            crop = None if single_step else case.masks["cord"]
            if model is not None:
                pred = predict_cord(model, case.t2w, cord_patch, device)
                if pred.any():
                    crop = pred
                else:
                    missed += 1
                    log.warning("%s: cord model found no cord; cropping with the ground-truth cord mask", key)
            crops[k].append(tumor_crop(case, crop, patch, stride, safety, section.get("normalization", "crop")))
    summary = train(tc, crops["train"], crops["val"], out_dir)
    summary["crop_from"] = crop_from
    summary["cord_predictions_missed"] = missed
    summary["voxels_per_epoch"] = int(sum(c.x[0].size for c in crops["train"]))
    write_json(summary, Path(out_dir) / "summary.json")
    return summary
