"""Dice losses (Milletari et al. 2016), as in the paper: soft Dice for the cord model, the mean of the
per-class soft Dice losses for the multiclass tumor model; and, not in the paper, that plus binary
cross-entropy (``training.tumor.loss: dice_bce``, nnU-Net's Dice + cross-entropy)."""

from __future__ import annotations

import torch


def soft_dice_per_class(pred: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice per class over the batch: (C,)."""
    dims = (0, *range(2, pred.ndim))
    inter = (pred * target).sum(dims)
    return (2 * inter + eps) / (pred.sum(dims) + target.sum(dims) + eps)


def dice_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean over classes of the soft Dice (one class: plain Dice loss)."""
    return 1 - soft_dice_per_class(pred.float(), target.float()).mean()


def bce(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean binary cross-entropy of sigmoid probabilities, in float32 and clamped (the networks end in
    a sigmoid; torch's ``binary_cross_entropy`` refuses to run under CUDA autocast)."""
    p = pred.float().clamp(eps, 1 - eps)
    t = target.float()
    return -(t * p.log() + (1 - t) * (1 - p).log()).mean()


LOSSES = {"dice": dice_loss, "dice_bce": lambda pred, target: dice_loss(pred, target) + bce(pred, target)}


def loss_function(name: str):
    """The training loss by its config name (``dice``: the paper)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r} (one of {', '.join(LOSSES)})") from None
