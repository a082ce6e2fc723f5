"""Sliding-window inference over a volume with uniform (paper) or Gaussian blending of overlaps,
optional mirror test-time augmentation; the network is any callable on (N, C, x, y, z) float32
arrays (an ONNX session in practice)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..crops import center_crop_pad, sliding_patches, uncrop


def gaussian_weight(patch, sigma_scale: float = 0.125) -> np.ndarray:
    """nnU-Net style importance map: a Gaussian centred on the patch, sigma = patch / 8."""
    axes = [np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2) / max(n * sigma_scale, 1e-3)) ** 2) for n in patch]
    w = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    return (w / w.max()).astype(np.float32) + 1e-3


def pad_to_multiple(x: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Zero-pad the last three axes up to multiples of ``multiple`` (centred); returns the starts."""
    size = [max(n, multiple) + (-max(n, multiple)) % multiple for n in x.shape[-3:]]
    return center_crop_pad(x, size)


def run_padded(net: Callable, x: np.ndarray, multiple: int) -> np.ndarray:
    """Network on a whole (C, x, y, z) volume padded to a multiple, cropped back."""
    xp, starts = pad_to_multiple(x, multiple)
    out = net(xp[None].astype(np.float32))[0]
    return uncrop(out, starts, x.shape[-3:])


def sliding_window(net: Callable, x: np.ndarray, patch, stride, n_out: int, multiple: int,
                   blend: str = "uniform", tta: bool = False, batch_size: int = 4) -> np.ndarray:
    """(n_out, x, y, z) probabilities for a (C, x, y, z) input: patches of ``patch`` every ``stride``
    (the last one flush with the end), overlaps averaged uniformly (the paper) or with Gaussian
    weights; ``tta`` averages the three mirror flips too."""
    if any(int(p) % multiple for p in patch):
        raise ValueError(f"patch {tuple(patch)} must be a multiple of {multiple} on every axis")
    shape = tuple(x.shape[-3:])
    # Inputs come from imsct.crops (at least one patch of real image where the image allows, as in
    # training); anything smaller is zero-padded to the patch, as training pads it, never run on a
    # shrunken patch: under instance normalisation the network would see other statistics.
    patch = tuple(int(p) for p in patch)
    size = tuple(int(v) for v in np.maximum(shape, patch))
    xp, starts = center_crop_pad(x, size)
    windows = sliding_patches(size, patch, stride)
    weight = gaussian_weight(patch) if blend == "gaussian" else np.ones(tuple(patch), np.float32)
    acc = np.zeros((n_out, *size), np.float32)
    norm = np.zeros(size, np.float32)
    flips = [()] + ([(1,), (2,), (3,)] if tta else [])
    for i in range(0, len(windows), batch_size):
        chunk = windows[i:i + batch_size]
        batch = np.stack([xp[(slice(None),) + w] for w in chunk]).astype(np.float32)
        pred = np.zeros((len(chunk), n_out, *patch), np.float32)
        for axes in flips:
            b = np.ascontiguousarray(np.flip(batch, axis=tuple(a + 1 for a in axes))) if axes else batch
            p = net(b)
            pred += np.flip(p, axis=tuple(a + 1 for a in axes)) if axes else p
        pred /= len(flips)
        for w, p in zip(chunk, pred):
            acc[(slice(None),) + w] += p * weight
            norm[w] += weight
    return uncrop(acc / np.maximum(norm, 1e-6), starts, shape)
