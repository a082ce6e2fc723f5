"""Display helpers shared by the QC figures: radiological sagittal views (superior up, anterior left)
of images stored in any orientation."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from .io import atomic_path


def save_figure(fig, out, dpi: int = 80) -> Path:
    """Write a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    out = Path(out)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return out


def normalize_intensity(a: np.ndarray) -> np.ndarray:
    """Display window: 1st to 99.5th percentile mapped to [0, 1]."""
    lo, hi = np.percentile(a, [1, 99.5])
    return np.clip((a - lo) / (hi - lo + 1e-6), 0, 1)


def sagittal_view(data: np.ndarray, affine: np.ndarray, index: int | None = None
                  ) -> tuple[np.ndarray, tuple[float, float], nib.Nifti1Image]:
    """Return a 2-D sagittal slice (rows = superior..inferior, cols = anterior..posterior) of an
    image stored in any orientation, its pixel aspect (row mm, col mm), and the image reoriented to
    RAS, along whose first (left-right) axis ``index`` counts (default: the middle slice)."""
    img = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(data), affine))
    a = np.asanyarray(img.dataobj)
    zooms = img.header.get_zooms()[:3]
    i = a.shape[0] // 2 if index is None else index
    sl = a[i].T[::-1, ::-1]  # rows: superior first; columns: anterior first
    return sl, (zooms[2], zooms[1]), img


def busiest_sagittal_slice(mask: np.ndarray, affine: np.ndarray) -> int | None:
    """The sagittal slice (index along the RAS left-right axis, as :func:`sagittal_view` counts) holding
    the most mask voxels; None for an empty mask (the middle slice)."""
    a = np.asanyarray(nib.as_closest_canonical(nib.Nifti1Image(np.asarray(mask, np.uint8), affine)).dataobj)
    return int(np.argmax(a.sum(axis=(1, 2)))) if a.any() else None


def overlay_masks(ax, masks: dict[str, np.ndarray], affine: np.ndarray, index: int | None, colours: dict,
                  extent, alpha: float = 0.55) -> None:
    """Draw the sagittal slice ``index`` of each mask over ``ax``, in its colour."""
    from matplotlib.colors import to_rgba

    for name, mask in masks.items():
        m = sagittal_view(np.asarray(mask, np.uint8), affine, index)[0] > 0
        rgba = np.zeros((*m.shape, 4))
        rgba[m] = to_rgba(colours[name], alpha)
        ax.imshow(rgba, extent=extent, interpolation="nearest")


def scale_bar(ax, mm: float = 20) -> None:
    """A white ``mm`` scale bar at the bottom left of an axis drawn in mm (extent from 0)."""
    ax.plot([5, 5 + mm], [5, 5], color="w", lw=2)
    ax.text(5 + mm / 2, 7, f"{mm:g} mm", color="w", ha="center", va="bottom", fontsize=7)
