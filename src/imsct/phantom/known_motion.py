"""A synthetic subject preprocessed with its known patient motion instead of registration: the T1w
moved onto the T2w grid by the motion the generator drew, the 30 mm cord mask around the labelled
centerline, and the working-grid images and masks (:func:`imsct.preprocess.pipeline.resample_subject`).

For measurements that are not about registration (registration has its own tests and benchmark):
the tests' preprocessed cohort and ``benchmarks/t2w_only.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np


def preprocess_known_motion(bids_dir, participant_id: str, out_dir, spacing_si_ap_rl=(1.0, 1.0, 2.0),
                            diameter_mm: float = 30.0) -> dict[str, str]:
    """Write ``t1_on_t2.nii.gz``, ``cord.nii.gz`` (T2w grid) and ``res_<key>.nii.gz`` (working grid:
    t2w, t1w, tumor, edema, cavity, cord) and ``grid.json`` into ``out_dir``; return the working-grid
    paths by key."""
    from ..io import save_nifti
    from ..preprocess.pipeline import cord_mask_file, resample_subject
    from ..preprocess.transforms import resample_to

    bids, sub, d = Path(bids_dir), participant_id, Path(out_dir)
    truth_p = bids / "derivatives/phantom" / sub / f"{sub}_truth.json"
    if not truth_p.is_file():
        raise FileNotFoundError(f"{truth_p}: no phantom truth (known motion) for {sub}; is {bids} a phantom cohort?")
    motion = np.asarray(json.loads(truth_p.read_text())["motion"]["t1w_from_t2w_world"])
    t2p = bids / sub / "anat" / f"{sub}_T2w.nii.gz"
    t2, t1 = nib.load(t2p), nib.load(bids / sub / "anat" / f"{sub}_ce-gad_T1w.nii.gz")
    moved = resample_to(np.asanyarray(t1.dataobj), t1.affine, t2.shape, t2.affine, motion)
    save_nifti(moved, t2.affine, d / "t1_on_t2.nii.gz")
    lab = bids / "derivatives/labels" / sub / "anat"
    cord_mask_file(str(lab / f"{sub}_T2w_label-centerline_mask.nii.gz"), str(d / "cord.nii.gz"), diameter_mm)
    masks = {k: str(lab / f"{sub}_T2w_label-{k}_mask.nii.gz") for k in ("tumor", "edema", "cavity")}
    masks["cord"] = str(d / "cord.nii.gz")
    paths = {k: str(d / f"res_{k}.nii.gz") for k in ("t2w", "t1w", "tumor", "edema", "cavity", "cord")}
    resample_subject(str(t2p), str(d / "t1_on_t2.nii.gz"), masks, {**paths, "grid": str(d / "grid.json")},
                     spacing_si_ap_rl)
    return paths
