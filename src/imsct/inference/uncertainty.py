"""How much the models of an ensemble agree: the paper's discussion asks for soft outputs (SoftSeg);
a lab applying the split models to a new cohort wants to know which subjects to look at first."""

from __future__ import annotations

from itertools import combinations

import numpy as np


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two binary masks; two empty masks agree (1.0)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def pairwise_dice(masks: list[np.ndarray]) -> float | None:
    """Mean Dice over every pair of masks; None for fewer than two."""
    pairs = [dice(a, b) for a, b in combinations(masks, 2)]
    return float(np.mean(pairs)) if pairs else None


def ensemble_agreement(members: list[np.ndarray], classes, threshold: float) -> dict[str, dict]:
    """Per class: the mean pairwise Dice of the models' outputs thresholded at ``threshold``
    (``dice``, None with one model) and the mean standard deviation of their probabilities over the
    voxels where some model is above threshold (``std``, 0 where none is)."""
    stack = np.stack(members)  # (models, classes, ...)
    out = {}
    for i, c in enumerate(classes):
        p = stack[:, i]
        binary = p >= threshold
        anywhere = binary.any(axis=0)
        std = float(p[:, anywhere].std(axis=0).mean()) if anywhere.any() else 0.0
        pd_ = pairwise_dice(list(binary))
        out[c] = {"dice": None if pd_ is None else round(pd_, 4), "std": round(std, 4)}
    return out
