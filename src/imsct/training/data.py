"""Training data: preprocessed subjects on the 1x1x2 mm working grid, the cord model's centred patch
and the tumor model's cord crop with its sliding windows. The geometry is :mod:`imsct.crops`, shared
with inference."""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

from ..crops import CLASSES, center_crop_pad, cord_network_input, extract, sliding_patches, tumor_network_input  # noqa: F401


@dataclass
class Case:
    key: str
    t2w: np.ndarray
    t1w: np.ndarray
    masks: dict[str, np.ndarray]  # tumor, edema, cavity, cord (uint8)
    tumor_type: str = ""

    @property
    def target(self) -> np.ndarray:
        """(4, x, y, z): tumor, edema, cavity, whole tumor (their union)."""
        t, e, c = (self.masks[k].astype(np.float32) for k in ("tumor", "edema", "cavity"))
        return np.stack([t, e, c, np.clip(t + e + c, 0, 1)])


def load_case(key: str, paths: dict[str, str], tumor_type: str = "") -> Case:
    arr = lambda p, dt: np.asarray(nib.load(p).dataobj, dtype=dt)  # noqa: E731
    return Case(key, arr(paths["t2w"], np.float32), arr(paths["t1w"], np.float32),
                {k: arr(paths[k], np.uint8) for k in ("tumor", "edema", "cavity", "cord")}, tumor_type)


@dataclass
class Crop:
    """One subject's network input region (inputs (C, *size), targets (K, *size)) and the patch
    windows cut from it: augmentation transforms the whole crop, then the windows are cut (paper
    2.4.1; stored compactly: float16 inputs, uint8 targets, as paper-scale training keeps every crop
    in memory)."""
    x: np.ndarray
    y: np.ndarray
    windows: list

    def patches(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(self.x[(slice(None),) + w], self.y[(slice(None),) + w]) for w in self.windows]


def tumor_crop(case: Case, crop_mask: np.ndarray | None, patch, stride, safety_xyz,
               normalization: str = "crop") -> Crop:
    """The tumor model's input region (see :func:`imsct.crops.tumor_network_input`: the same function
    builds it at inference) and its sliding windows. ``crop_mask`` None = the whole image (the
    single-step baseline)."""
    x, starts, box = tumor_network_input(case.t2w, case.t1w, crop_mask, safety_xyz, patch, normalization)
    y = extract(case.target, starts, x.shape[1:])
    return Crop(x.astype(np.float16), y.astype(np.uint8), sliding_patches(x.shape[1:], patch, stride))


def cord_crop(case: Case, patch) -> Crop:
    """The cord model's single centred patch (the same function builds it at inference)."""
    x, _ = cord_network_input(case.t2w, patch)
    y, _ = center_crop_pad(case.masks["cord"][None].astype(np.uint8), patch)
    return Crop(x.astype(np.float16), y, [tuple(slice(0, n) for n in patch)])
