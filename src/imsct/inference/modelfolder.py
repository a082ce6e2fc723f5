"""Model folders (``cord.onnx``, ``tumor.onnx``, ``model.json``): reading and verifying them needs
no PyTorch, so a clinical install can skip it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MODEL_FORMAT = "imsct-model/2"  # 2: published U-Net topology, named safety-factor axes
# how overlapping tumor windows are averaged (model.json inference.blend; sliding.sliding_window)
BLENDS = ("uniform", "gaussian")


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ModelFolderError(ValueError):
    pass


def read_model_folder(folder) -> dict:
    """``model.json`` of a model folder, after checking that each ONNX file matches its recorded hash
    (a folder whose files were swapped or corrupted is refused)."""
    folder = Path(folder)
    meta_p = folder / "model.json"
    if not meta_p.is_file():
        raise ModelFolderError(f"{folder}: no model.json (not an imsct model folder)")
    meta = json.loads(meta_p.read_text())
    if meta.get("format") != MODEL_FORMAT:
        raise ModelFolderError(f"{meta_p}: unknown format {meta.get('format')!r} (expected {MODEL_FORMAT})")
    for kind in ("cord", "tumor"):
        f = folder / meta[kind]["file"]
        if not f.is_file():
            raise ModelFolderError(f"{f}: missing")
        if sha256(f) != meta[kind]["sha256"]:
            raise ModelFolderError(f"{f}: SHA-256 does not match model.json (modified or corrupted file)")
    return meta
