"""Vertebral levels from disc labels (SCT convention: value n at the posterior tip of disc n, 3 = C2/C3
... 25 = L5/S1), in world coordinates: nothing assumes the image's orientation."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from ..phantom.anatomy import VERTEBRAE  # C1 ... S1: vertebra n is VERTEBRAE[n - 1]


def disc_name(n: int) -> str:
    """``3`` -> ``C2/C3``: disc n lies between vertebrae n - 1 and n."""
    return f"{VERTEBRAE[n - 2]}/{VERTEBRAE[n - 1]}" if 2 <= n <= len(VERTEBRAE) else f"disc {n}"


def vertebra_name(n: int) -> str:
    return VERTEBRAE[n - 1] if 1 <= n <= len(VERTEBRAE) else f"vertebra {n}"


def disc_heights(img: nib.Nifti1Image) -> dict[int, float]:
    """World superior coordinate (RAS z, mm) of each labelled disc (centroid of its voxels)."""
    data = np.rint(np.asanyarray(img.dataobj)).astype(int)
    out = {}
    for n in np.unique(data[data > 0]):
        ijk = np.argwhere(data == n).mean(axis=0)
        out[int(n)] = float(img.affine[2, :3] @ ijk + img.affine[2, 3])
    return out


def vertebra_at(z: float, discs: dict[int, float]) -> int:
    """The vertebra at height ``z``: the one below the nearest disc above (disc n tops vertebra n);
    above every labelled disc, the vertebra above the highest one (an extrapolation)."""
    above = [n for n, zn in discs.items() if zn >= z]
    return max(above) if above else min(discs) - 1


def span(lo: float, hi: float, discs: dict[int, float]) -> tuple[str, str]:
    """(discs inside [lo, hi] as ``C3/C4,C4/C5``, vertebral levels ``C3-C5``) of a superior-inferior
    extent; empty strings without disc labels."""
    if not discs or not np.isfinite(lo):
        return "", ""
    inside = sorted(n for n, z in discs.items() if lo <= z <= hi)
    top, bottom = vertebra_name(vertebra_at(hi, discs)), vertebra_name(vertebra_at(lo, discs))
    return ",".join(disc_name(n) for n in inside), top if top == bottom else f"{top}-{bottom}"
