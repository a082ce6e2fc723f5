"""File-level preprocessing steps, shared by the CLI and the workflow scripts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from ..bids import subject_session
from ..classes import LESIONS
from ..io import ImageError, load_image, load_scan, same_grid, save_nifti, write_json, write_tsv
from .cordmask import centerline_from_csv, tube_mask
from .resample import canonical_grid, resample_image, zscore


def participant_keys(preprocess_dir, participant_id: str) -> list[str]:
    """Keys (``01``, or ``01_ses-a`` per session) of one participant's folders under ``preprocess_dir``."""
    return sorted(d.name[4:] for d in Path(preprocess_dir).glob(f"{participant_id}*")
                  if d.is_dir() and subject_session(d.name) == d.name
                  and d.name.partition("_ses-")[0] == participant_id)


def cord_mask_file(centerline: str, out: str, diameter_mm: float = 30.0, reference: str | None = None) -> Path:
    """Write the ``diameter_mm`` tube around a centerline (mask image, or CSV of voxel coordinates with
    ``reference`` giving the grid) on the centerline's grid."""
    if str(centerline).lower().endswith(".csv"):
        if reference is None:
            raise ValueError(f"{centerline}: a CSV centerline needs --ref (the image its coordinates refer to)")
        ref = load_image(reference)
        cl, affine = centerline_from_csv(centerline, ref), ref.affine
    else:
        img = load_image(centerline)
        cl, affine = np.asarray(img.dataobj), img.affine
    return save_nifti(tube_mask(cl, affine, diameter_mm, source=str(centerline)), affine, out, dtype=np.uint8)


def check_mask(img: nib.Nifti1Image, ref: nib.Nifti1Image, path, ref_path) -> np.ndarray:
    if not same_grid(img, ref):
        raise ImageError(f"{path}: not on the grid of {ref_path} (shape {img.shape} vs {ref.shape} or affine differs)")
    data = np.asarray(img.dataobj)
    values = np.unique(data)
    if not set(values.tolist()) <= {0, 1}:
        raise ImageError(f"{path}: a mask must hold 0 and 1 only, found values {values[:6].tolist()}")
    return data


def resample_subject(t2w: str, t1w_on_t2w: str, masks: dict[str, str], out: dict[str, str],
                     spacing_si_ap_rl=(1.0, 1.0, 2.0)) -> dict:
    """Resample a registered subject to the working grid: T2w and T1w (z-scored, float32) and the masks
    (``masks``: tumor/edema/cavity/cord paths on the T2w grid). ``out`` maps 't2w', 't1w', each mask key
    and 'grid' (JSON: native T2w grid and working grid) to output paths."""
    t2 = load_scan(t2w)
    t1 = load_scan(t1w_on_t2w)
    if not same_grid(t1, t2):
        raise ImageError(f"{t1w_on_t2w}: not on the T2w grid of {t2w}; register it first")
    shape, aff = canonical_grid(t2.shape, t2.affine, spacing_si_ap_rl)
    for key, img in (("t2w", t2), ("t1w", t1)):
        data = resample_image(np.asarray(img.dataobj), img.affine, shape, aff, "image")
        save_nifti(zscore(data), aff, out[key], dtype=np.float32)
    volumes = {}
    voxel_mm3 = float(abs(np.linalg.det(t2.affine[:3, :3])))
    for key, path in masks.items():
        data = check_mask(load_image(path), t2, path, t2w)
        volumes[key] = float(np.count_nonzero(data) * voxel_mm3)
        save_nifti(resample_image(data, t2.affine, shape, aff, "mask"), aff, out[key], dtype=np.uint8)
    grid = {"label_volumes_mm3": volumes,  # on the native T2w grid, for the cohort tables of the report
            "native_shape": list(t2.shape[:3]), "native_affine": np.asarray(t2.affine).tolist(),
            "working_shape": list(shape), "working_affine": aff.tolist(),
            "spacing_si_ap_rl_mm": list(spacing_si_ap_rl), "orientation": "RAS", "source": str(t2w)}
    write_json(grid, out["grid"])
    return grid


def registration_table(qc_files: list[str], out: str) -> pd.DataFrame:
    """One row per subject/session from the registration QC JSONs (method, scores, transform, flags),
    labelled by the QC file's subject and session (``sub-01_ses-02``)."""
    rows = []
    for f in qc_files:
        q = json.loads(Path(f).read_text())
        t = q.get("transform", {})
        rows.append({
            "subject": subject_session(f) or Path(f).name,
            "method": q["method"], "flagged": q["flagged"], "gate_passed": q.get("gate_passed"),
            "gate_reasons": "; ".join(q.get("gate_reasons", [])),
            "score_scanner": q.get("scanner", {}).get("score"),
            "score_rigid": q.get("rigid", {}).get("score"), "score_affine": q.get("affine", {}).get("score"),
            "disc_error_scanner_mm": q.get("scanner", {}).get("disc_error_mm"),
            "disc_error_mm": q.get("disc_error_mm"),
            "rotation_deg": t.get("rotation_deg"), "displacement_mm": t.get("displacement_mm"),
            "scale_min": min(t["scales"]) if t.get("scales") else None,
            "scale_max": max(t["scales"]) if t.get("scales") else None,
            "seconds": q.get("seconds"),
        })
    df = pd.DataFrame(rows)
    write_tsv(df, out)
    return df


def preprocess_subject(inputs: dict[str, str], outputs: dict, registration: dict, spacing_si_ap_rl,
                       diameter_mm: float = 30.0, log=None) -> dict:
    """Everything the workflow does for one training subject before the models: the ``diameter_mm``
    cord mask from the centerline, T1w-to-T2w registration (disc labels when given), resampling to
    the working grid and the registration QC figure.

    ``inputs``: t2w, t1w, centerline, tumor, edema, cavity, optional fixed_discs/moving_discs.
    ``outputs``: cord, t1w, transform, qc, figure, and ``working`` (the working-grid paths, see
    :func:`imsct.paths.working_grid_paths`)."""
    from .qc import registration_figure
    from .register import RegistrationParams, register_files

    log = log or logging.getLogger(__name__)
    cord_mask_file(inputs["centerline"], outputs["cord"], diameter_mm)
    # disc labels are in ``inputs`` only when registration uses them (the workflow's registration_inputs)
    res = register_files(inputs["t2w"], inputs["t1w"], outputs["t1w"], inputs.get("fixed_discs"),
                         inputs.get("moving_discs"), outputs["transform"], outputs["qc"],
                         RegistrationParams.from_config(registration))
    log.info("registration: %s%s in %.1f s", res.method, " (flagged)" if res.flagged else "", res.qc["seconds"])
    masks = {k: inputs[k] for k in LESIONS} | {"cord": outputs["cord"]}
    grid = resample_subject(inputs["t2w"], outputs["t1w"], masks, outputs["working"], spacing_si_ap_rl)
    log.info("working grid %s", grid["working_shape"])
    registration_figure(inputs["t2w"], outputs["t1w"], outputs["figure"], outputs["qc"], outputs["cord"])
    return grid
