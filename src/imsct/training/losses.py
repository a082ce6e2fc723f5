"""Dice losses (Milletari et al. 2016), as in the paper: soft Dice for the cord model, the mean of the
per-class soft Dice losses for the multiclass tumor model."""

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
