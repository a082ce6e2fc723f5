"""Export a trained model to ONNX (dynamic batch and spatial axes) and prove it computes what PyTorch
computes: the export fails unless onnxruntime matches PyTorch on random inputs of several sizes
(max abs difference <= 1e-4).

torch 2.13's default exporter is the dynamo one (needs onnxscript, and is much slower here); the
TorchScript exporter (``dynamo=False``, opset 17) exports this network. The internal padding to a
multiple of 2**downsamplings is done by the inference code, so the exported graph is the core network.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..inference.modelfolder import BLENDS, MODEL_FORMAT, sha256
from ..io import atomic_path
from ..models.unet3d import ModifiedUNet3D

log = logging.getLogger(__name__)
OPSET = 17


class _Core(nn.Module):
    def __init__(self, model: ModifiedUNet3D):
        super().__init__()
        self.model = model

    def forward(self, x):
        return torch.sigmoid(self.model.core_logits(x))


def export_onnx(model: ModifiedUNet3D, in_channels: int, path, atol: float = 1e-4, seed: int = 0) -> dict:
    """Write ``path`` (atomically) and return the parity report; raises if the outputs differ."""
    import onnxruntime as ort

    model = model.eval().cpu()
    m = model.size_multiple
    core = _Core(model).eval()
    dummy = torch.randn(1, in_channels, m * 2, m * 4, m * 4)
    axes = {0: "batch", 2: "x", 3: "y", 4: "z"}
    path = Path(path)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # Instance norm without running statistics always normalises with the input's own statistics;
        # the exporter warns that it exports it "in training mode", which is exactly right here (and
        # the parity check below proves it).
        warnings.filterwarnings("ignore", message=".*instance_norm.*")
        # The legacy exporter is chosen on purpose (see the module docstring), and its tracer warnings
        # concern shape checks inside instance norm, not the graph: parity is checked on 3 shapes.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(core, (dummy,), str(tmp), dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["probabilities"],
                          dynamic_axes={"input": axes, "probabilities": axes})
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        gen = torch.Generator().manual_seed(seed)
        worst = 0.0
        shapes = [(1, in_channels, m * 2, m * 2, m * 2), (2, in_channels, m * 2, m * 3, m * 5),
                  (1, in_channels, m * 3, m * 2, m * 4)]
        for shape in shapes:
            x = torch.randn(*shape, generator=gen)
            with torch.no_grad():
                ref = core(x).numpy()
            got = sess.run(None, {"input": x.numpy()})[0]
            worst = max(worst, float(np.abs(ref - got).max()))
        if not worst <= atol:
            raise RuntimeError(f"ONNX export of {path.name}: outputs differ from PyTorch by {worst:.2e} > {atol:.0e}")
    log.info("exported %s (max abs difference %.1e)", path, worst)
    return {"max_abs_diff": worst, "tested_shapes": [list(s) for s in shapes], "opset": OPSET, "sha256": sha256(path)}


# Paper section 2.5: threshold 0.5, holes filled, tumor < 0.2 cm3 and edema, cavity < 0.5 cm3 removed;
# each output on its own (exclusive: False). The workflow's `postprocess` config section overrides it.
POSTPROCESS = {"threshold": 0.5, "fill_holes": True, "exclusive": False,
               "min_volume_mm3": {"tumor": 200.0, "edema": 500.0, "cavity": 500.0, "wholetumor": 0.0}}


def postprocess_from_config(section: dict | None) -> dict:
    """The model folder's postprocess entry from the config's ``postprocess`` section (cm3 -> mm3)."""
    if not section:
        return dict(POSTPROCESS)
    vol = section.get("min_volume_cm3", {})
    return {"threshold": float(section.get("threshold", 0.5)), "fill_holes": bool(section.get("fill_holes", True)),
            "exclusive": bool(section.get("exclusive", False)),
            "min_volume_mm3": {**POSTPROCESS["min_volume_mm3"], **{k: float(v) * 1000 for k, v in vol.items()}}}


# How the tumor model is applied, as the paper (ivadomed: windows averaged uniformly, no test-time
# augmentation). The workflow's `inference` config section overrides it.
INFERENCE = {"tta": False, "blend": "uniform"}


def inference_from_config(section: dict | None) -> dict:
    """The model folder's inference entry from the config's ``inference`` section."""
    section = section or {}
    blend = str(section.get("blend", INFERENCE["blend"]))
    if blend not in BLENDS:
        raise ValueError(f"inference.blend: {blend!r} is not one of {', '.join(BLENDS)}")
    return {"tta": bool(section.get("tta", INFERENCE["tta"])), "blend": blend}


def export_model_folder(cord_pt, tumor_pt, out_dir, split: str, spacing_si_ap_rl=(1.0, 1.0, 2.0),
                        postprocess: dict | None = None, inference: dict | None = None) -> dict:
    """A self-contained model folder: ``cord.onnx``, ``tumor.onnx`` and ``model.json`` with everything
    inference needs (grid, orientation, patches, safety factor, classes, channel order,
    normalisation, thresholds, split, package version, file hashes, the tumor model's modality dropout)."""
    from .. import __version__
    from .loop import load_model

    out = Path(out_dir)
    meta = {"format": MODEL_FORMAT, "package_version": __version__, "split": split,
            "spacing_si_ap_rl_mm": list(spacing_si_ap_rl), "orientation": "RAS",
            "array_axes": "x right-left, y anterior-posterior, z superior-inferior",
            "normalisation": "z-score per image (mean 0, sd 1) on the working grid",
            "channels": ["T2w", "T1w"], "postprocess": postprocess or dict(POSTPROCESS),
            "inference": inference or dict(INFERENCE)}
    for kind, pt in (("cord", cord_pt), ("tumor", tumor_pt)):
        model, cfg = load_model(pt)
        report = export_onnx(model, cfg["in_channels"], out / f"{kind}.onnx")
        meta[kind] = {"file": f"{kind}.onnx", "sha256": report.pop("sha256"), "classes": list(cfg["class_names"]),
                      "in_channels": cfg["in_channels"], "base_filters": cfg["base_filters"],
                      "downsamplings": cfg["downsamplings"],
                      "size_multiple": model.size_multiple, "threshold": 0.5, "parity": report,
                      "checkpoint_sha256": sha256(pt)}
        if kind == "tumor":  # inference warns when a T2w-only subject meets a model never trained for it
            meta[kind]["modality_dropout"] = float(cfg.get("modality_dropout", 0.0))
    return meta


def write_model_folder(cord_pt, tumor_pt, out_dir, split: str, training_cfg: dict, spacing_si_ap_rl=(1.0, 1.0, 2.0),
                       postprocess_cfg: dict | None = None, single_step: bool = False,
                       inference_cfg: dict | None = None) -> Path:
    """``single_step``: the tumor checkpoint is the whole-image baseline (paper 2.6.2); inference then
    runs it on the whole image."""
    from ..io import write_json

    meta = export_model_folder(cord_pt, tumor_pt, out_dir, split, spacing_si_ap_rl,
                               postprocess_from_config(postprocess_cfg), inference_from_config(inference_cfg))
    meta["cord"]["patch_si_ap_rl"] = list(training_cfg["cord"]["patch"])
    t = training_cfg["tumor"]
    meta["tumor"].update({"patch_si_ap_rl": list(t["patch"]), "stride_si_ap_rl": list(t["stride"]),
                          "safety_factor": {k: float(t["safety_factor"][k]) for k in ("si", "ap", "rl")},
                          "input": "whole_image" if single_step else "cord_crop",
                          "normalization": t.get("normalization", "crop")})
    return write_json(meta, Path(out_dir) / "model.json")
