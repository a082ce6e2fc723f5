"""Registration QC figure: the T2w with the moved T1w's edges, and a checkerboard of the two, in a
mid-sagittal slice and an axial slice through the cord."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from scipy.ndimage import gaussian_filter, sobel  # noqa: E402

from ..bids import subject_session  # noqa: E402
from ..io import load_image  # noqa: E402
from ..viz import normalize_intensity as _norm  # noqa: E402
from ..viz import save_figure  # noqa: E402


def _edges(a, spacing):
    s = gaussian_filter(_norm(a), 1.0 / np.asarray(spacing))
    mag = np.hypot(sobel(s, 0) / spacing[0], sobel(s, 1) / spacing[1])
    return mag > np.percentile(mag, 90)


def _checker(a, b, n=8):
    yy, xx = np.indices(a.shape)
    tiles = ((yy * n // a.shape[0]) + (xx * n // a.shape[1])) % 2 == 0
    return np.where(tiles, _norm(a), _norm(b))


def registration_figure(t2w: str, t1w_on_t2w: str, out: str, qc_json: str | None = None,
                        cord_mask: str | None = None) -> Path:
    t2 = nib.as_closest_canonical(load_image(t2w))
    t1 = nib.as_closest_canonical(load_image(t1w_on_t2w))
    a2, a1 = np.asanyarray(t2.dataobj, dtype=np.float32), np.asanyarray(t1.dataobj, dtype=np.float32)
    zooms = t2.header.get_zooms()[:3]
    if cord_mask:
        cm = np.asanyarray(nib.as_closest_canonical(load_image(cord_mask)).dataobj) > 0
        ijk = np.argwhere(cm).mean(axis=0).astype(int) if cm.any() else np.asarray(a2.shape) // 2
    else:
        ijk = np.asarray(a2.shape) // 2
    sag2, sag1 = a2[ijk[0]].T[::-1, ::-1], a1[ijk[0]].T[::-1, ::-1]
    # axial, radiological: anterior up, patient right on the left
    ax2, ax1 = a2[:, :, ijk[2]].T[::-1, ::-1], a1[:, :, ijk[2]].T[::-1, ::-1]
    sag_asp, ax_asp = (zooms[2], zooms[1]), (zooms[1], zooms[0])
    fig, axes = plt.subplots(1, 4, figsize=(15, 5.5), gridspec_kw={"width_ratios": [1, 1, 0.7, 0.7]})
    panels = [(sag2, sag1, sag_asp, "sagittal"), (ax2, ax1, ax_asp, "axial")]
    for k, (f, m, asp, name) in enumerate(panels):
        ext = (0, f.shape[1] * asp[1], 0, f.shape[0] * asp[0])
        ax = axes[2 * k]
        ax.imshow(_norm(f), cmap="gray", extent=ext, interpolation="nearest")
        e = np.where(_edges(m, asp), 1.0, np.nan)
        ax.imshow(e, cmap="autumn", extent=ext, alpha=0.8, interpolation="nearest")
        ax.set_title(f"T2w + T1w edges ({name})", fontsize=9)
        axes[2 * k + 1].imshow(_checker(f, m), cmap="gray", extent=ext, interpolation="nearest")
        axes[2 * k + 1].set_title(f"checkerboard ({name})", fontsize=9)
    for ax in axes:
        ax.tick_params(labelsize=6)
        ax.set_xlabel("mm", fontsize=7)
    title = subject_session(t2w) or Path(t2w).name
    if qc_json:
        q = json.loads(Path(qc_json).read_text())
        t = q.get("transform", {})
        title += (f": {q['method']}{' (FLAGGED)' if q['flagged'] else ''}; "
                  f"rotation {t.get('rotation_deg', 0):.1f} deg, "
                  f"displacement {t.get('displacement_mm', 0):.1f} mm")
        if q.get("disc_error_mm") is not None:
            title += f", disc agreement {q['disc_error_mm']:.1f} mm"
    fig.suptitle(title, fontsize=11)
    return save_figure(fig, out, dpi=80)
