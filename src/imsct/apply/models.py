"""The model folders ``apply`` segments with (config key ``models``)."""

from __future__ import annotations

from pathlib import Path


def resolve_models(spec, default: list[str]) -> list[str]:
    """``model.json`` of every model folder of the ensemble. ``spec``: None (``default``: this run's
    own split models), a folder holding ``split-*/onnx/`` model folders, one model folder, or a list of
    model folders. Sorted; an empty list when a folder holds none (the caller reports it)."""
    if spec is None:
        return list(default)
    folders = [spec] if isinstance(spec, str) else list(spec)
    out = []
    for folder in map(Path, folders):
        if (folder / "model.json").is_file() or len(folders) > 1:
            out.append(str(folder / "model.json"))
        else:
            out += sorted(str(p) for p in folder.glob("split-*/onnx/model.json"))
    return out
