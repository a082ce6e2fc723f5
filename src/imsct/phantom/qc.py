"""QC montage of a phantom subject, for a person to judge realism: mid-sagittal T2w, T1w, and the
T2w with its labels, displayed as radiologists read sagittal spine (superior up, anterior left)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..viz import sagittal_view, save_figure  # noqa: E402

CLASS_COLORS = {"tumor": "#e41a1c", "edema": "#ffd92f", "cavity": "#377eb8"}


def _show(ax, sl, aspect, title, cmap="gray", vmax=None):
    h, w = sl.shape
    extent = (0, w * aspect[1], 0, h * aspect[0])
    ax.imshow(sl, cmap=cmap, extent=extent, vmin=0, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("anterior  ←  mm  →  posterior", fontsize=7)
    ax.tick_params(labelsize=6)
    return extent


def montage(data, out: str | Path) -> Path:
    """``data`` is a :class:`~imsct.phantom.subject.SubjectData`."""
    return _montage(data.t2w, data.t2w_affine, data.t1w, data.t1w_affine, data.labels, data.truth, out)


def montage_from_files(paths: dict[str, str], out: str | Path) -> Path:
    """Same montage from a written subject (``paths`` as in the workflow: t2w, t1w, labels, truth)."""
    t2 = nib.load(paths["t2w"])
    t1 = nib.load(paths["t1w"])
    labels = {k: np.asanyarray(nib.load(paths[k]).dataobj) for k in ("tumor", "edema", "cavity", "discs")}
    truth = json.loads(Path(paths["truth"]).read_text())
    return _montage(np.asanyarray(t2.dataobj), t2.affine, np.asanyarray(t1.dataobj), t1.affine, labels, truth, out)


def _montage(t2w, t2w_affine, t1w, t1w_affine, labels, tr, out) -> Path:
    # Mid-sagittal slice through the tumor: the slice with most tumor voxels.
    canon_lab = {k: np.asanyarray(nib.as_closest_canonical(nib.Nifti1Image(v, t2w_affine)).dataobj)
                 for k, v in labels.items()}
    counts = canon_lab["tumor"].sum(axis=(1, 2))
    idx = int(np.argmax(counts)) if counts.max() > 0 else None
    t2, asp2, _ = sagittal_view(t2w, t2w_affine, idx)
    t1, asp1, _ = sagittal_view(t1w, t1w_affine)
    fig, axes = plt.subplots(1, 3, figsize=(12, 6.5))
    vmax2 = np.percentile(t2, 99.5)
    _show(axes[0], t2, asp2, f"T2w  {tr['t2w_grid']['orientation']}  "
          f"{'x'.join(f'{s:.2f}' for s in tr['t2w_grid']['spacing_ras'])} mm", vmax=vmax2)
    _show(axes[1], t1, asp1, f"Gd-T1w  {tr['t1w_grid']['orientation']}  "
          f"motion {tr['motion']['rotation_deg']:.1f}° {tr['motion']['translation_mm']:.1f} mm",
          vmax=np.percentile(t1, 99.5))
    ext = _show(axes[2], t2, asp2, "T2w + labels", vmax=vmax2)
    comb = np.zeros_like(t2, dtype=float)
    for k, name in enumerate(("edema", "cavity", "tumor"), start=1):
        sl = canon_lab[name][idx if idx is not None else canon_lab[name].shape[0] // 2].T[::-1, ::-1]
        comb[sl > 0] = k
    comb[comb == 0] = np.nan
    cmap = ListedColormap([CLASS_COLORS["edema"], CLASS_COLORS["cavity"], CLASS_COLORS["tumor"]])
    axes[2].imshow(comb, cmap=cmap, vmin=0.5, vmax=3.5, alpha=0.55, extent=ext, interpolation="nearest")
    discs = np.argwhere(canon_lab["discs"] > 0)
    if len(discs):
        w = t2.shape[1]
        ys = (discs[:, 2] + 0.5) * asp2[0]  # rows were flipped to put superior on top
        xs = (w - 1 - discs[:, 1] + 0.5) * asp2[1]
        axes[2].scatter(xs, ys, s=8, c="lime", marker="+", linewidths=0.8)
    axes[2].legend(handles=[Patch(color=c, label=k) for k, c in CLASS_COLORS.items()]
                   + [Patch(color="lime", label="disc labels")], loc="lower right", fontsize=7)
    v = tr["volumes_cm3"]
    fig.suptitle(f"{tr['participant_id']}: {tr['tumor_type']}, {tr['tumor_region']}; "
                 f"tumor {v['tumor']:.1f} / edema {v['edema']:.1f} / cavity {v['cavity']:.1f} cm³", fontsize=11)
    return save_figure(fig, out, dpi=90)
