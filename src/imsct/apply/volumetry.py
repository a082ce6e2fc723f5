"""Volumetry of a segmented cohort (``volumes.tsv``): per scan and class, the volume on the native T2w
grid, the superior-inferior extent, the number of lesions, the discs and vertebral levels spanned
(with disc labels), the cord model's cord volume over the same extent, and the models' agreement."""

from __future__ import annotations

import json
from pathlib import Path

import cc3d
import numpy as np
import pandas as pd

from ..classes import CLASSES
from ..io import load_image
from .levels import disc_heights, span

COLUMNS = ["participant_id", "session_id", "key", "status", "contrasts", "class", "volume_cm3", "si_extent_mm",
           "si_top_mm", "si_bottom_mm", "n_lesions", "discs", "vertebral_levels", "cord_volume_cm3", "agreement_dice",
           "agreement_std", "flagged"]
CONNECTIVITY = 18  # lesions are counted as postprocessing removes small objects (18-connected)


def superior_range(mask: np.ndarray, affine: np.ndarray) -> tuple[float, float]:
    """Lowest and highest world superior coordinate (mm) covered by the mask's voxels (their centres
    +- half a voxel's superior extent); NaN for an empty mask."""
    ijk = np.argwhere(mask)
    if not len(ijk):
        return float("nan"), float("nan")
    z = ijk @ affine[2, :3] + affine[2, 3]
    half = 0.5 * float(np.abs(affine[2, :3]).sum())
    return float(z.min() - half), float(z.max() + half)


def measure(mask: np.ndarray, affine: np.ndarray) -> dict:
    """Volume (cm3, |det| of the affine per voxel), superior-inferior extent (mm) and lesion count."""
    voxel_mm3 = abs(float(np.linalg.det(affine[:3, :3])))
    lo, hi = superior_range(mask, affine)
    n = int(cc3d.connected_components(mask.astype(np.uint8), connectivity=CONNECTIVITY).max()) if mask.any() else 0
    return {"volume_cm3": round(float(np.count_nonzero(mask)) * voxel_mm3 / 1000, 4),
            "si_extent_mm": round(hi - lo, 2) if n else 0.0, "si_top_mm": round(hi, 2), "si_bottom_mm": round(lo, 2),
            "n_lesions": n}


def volume_within(mask: np.ndarray, affine: np.ndarray, lo: float, hi: float) -> float:
    """Volume (cm3) of the mask's voxels whose centre lies between superior coordinates lo and hi."""
    if not np.isfinite(lo):
        return 0.0
    ijk = np.argwhere(mask)
    z = ijk @ affine[2, :3] + affine[2, 3]
    return round(float(((z >= lo) & (z <= hi)).sum()) * abs(float(np.linalg.det(affine[:3, :3]))) / 1000, 4)


def scan_rows(record: dict, discs: str | None, threshold: float) -> list[dict]:
    """The rows of one scan: one per class, or one row giving why it was skipped."""
    head = {"participant_id": record["participant_id"], "session_id": record.get("session_id"),
            "key": record["key"], "status": record["status"],
            "contrasts": "+".join(record.get("contrasts") or [])}  # T2w alone where the scan had no T1w
    if record["status"] != "ok":
        return [head]
    heights = disc_heights(load_image(discs)) if discs else {}
    cord_img = load_image(record["masks"]["cord"])
    cord = np.asanyarray(cord_img.dataobj) > 0
    agreement = record.get("agreement") or {}
    whole = (agreement.get("wholetumor") or {}).get("dice")
    rows = []
    for cls in CLASSES:
        img = load_image(record["masks"][cls])
        m = measure(np.asanyarray(img.dataobj) > 0, img.affine)
        discs_in, levels = span(m["si_bottom_mm"], m["si_top_mm"], heights)
        a = agreement.get(cls) or {}
        rows.append({**head, "class": cls, **m, "discs": discs_in, "vertebral_levels": levels,
                     "cord_volume_cm3": volume_within(cord, cord_img.affine, m["si_bottom_mm"], m["si_top_mm"]),
                     "agreement_dice": a.get("dice"), "agreement_std": a.get("std"),
                     "flagged": whole is not None and whole < threshold})
    return rows


def volumes_table(records: list[str], discs: dict[str, str | None], threshold: float) -> pd.DataFrame:
    """Every scan's rows (``records``: segment.json files; ``discs``: key -> disc label file or None),
    in the order given."""
    rows = []
    for path in records:
        rec = json.loads(Path(path).read_text())
        rows += scan_rows(rec, discs.get(rec["key"]), threshold)
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["flagged"] = df["flagged"].fillna(False).astype(bool)
    df["n_lesions"] = df["n_lesions"].astype("Int64")
    return df
