"""One scan of a new cohort: registration that reports an unreadable scan instead of failing, and
segmentation with the ensemble into the BIDS-derivatives tree, with a record of what was done."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io import ImageError, load_scan, save_nifti, write_json, write_text


def register_or_skip(t2w, t1w, out_t1w, fixed_discs, moving_discs, transform, qc, params,
                     skip_unreadable: bool = False):
    """:func:`imsct.preprocess.register.register_files`; with ``skip_unreadable``, an unusable scan
    writes a QC JSON saying why (``skipped``) and empty placeholders for the other outputs, and
    returns None, so one bad scan of a cohort does not stop the others."""
    from ..preprocess.register import register_files

    try:
        return register_files(t2w, t1w, out_t1w, fixed_discs, moving_discs, transform, qc, params)
    except ImageError as exc:
        if not skip_unreadable:
            raise
        write_json({"fixed": str(t2w), "moving": str(t1w), "skipped": str(exc)}, qc)
        write_text("", out_t1w)
        write_text("", transform)
        return None


def segment_scan(predictor, key: str, t2w: str, t1w: str | None, registration_qc: str | None, anat_dir,
                 record_path, probabilities: bool = False, base: str | None = None) -> dict:
    """Segment one scan (``t1w``: the T1w registered onto the T2w) with every model of ``predictor``;
    writes ``<base>_label-<class>_mask.nii.gz`` + JSON sidecars (and ``_probseg`` maps with
    ``probabilities``) into ``anat_dir``, and the record (status, files, the models' agreement) to
    ``record_path``. A scan that cannot be segmented is recorded as skipped, with the reason."""
    from ..inference.predictor import SegmentOptions, write_segmentation

    base = base or f"sub-{key}"
    subject, _, session = key.partition("_ses-")
    record = {"key": key, "participant_id": f"sub-{subject}", "session_id": f"ses-{session}" if session else None,
              "t2w": str(t2w), "t1w": t1w, "status": "ok", "masks": {}, "probabilities": {},
              "models": [str(f) for f in predictor.folders]}
    reason = None
    if registration_qc and "skipped" in (qc := json.loads(Path(registration_qc).read_text())):
        reason = qc["skipped"]
    if reason is None:
        try:  # without a T1w: on the T2w alone (the sidecar says so; see Predictor.segment)
            seg = predictor.segment(load_scan(t2w), load_scan(t1w) if t1w else None,
                                    SegmentOptions(register=False, soft=True))
        except ImageError as exc:
            reason = str(exc)
    if reason is not None:
        record.update(status=f"skipped: {reason}")
        write_json(record, record_path)
        return record
    Path(anat_dir).mkdir(parents=True, exist_ok=True)  # only for a scan segmented: none for a skipped one
    paths = write_segmentation(seg, t2w, anat_dir, base=base)
    record["masks"] = {k: str(p) for k, p in paths.items()}
    if probabilities:
        for cls, prob in seg.probabilities.items():
            p = Path(anat_dir) / f"{base}_label-{cls}_probseg.nii.gz"
            save_nifti(prob.astype(np.float32), seg.affine, p, dtype=np.float32)
            write_json({"Description": f"{cls} probability: mean of the ensemble's models", "Sources": [str(t2w)],
                        "models": record["models"]}, p.with_name(f"{base}_label-{cls}_probseg.json"))
            record["probabilities"][cls] = str(p)
    record["agreement"] = seg.provenance["agreement"]
    record["contrasts"] = seg.provenance.get("contrasts")
    record["seconds"] = seg.provenance["seconds"]
    write_json(record, record_path)
    return record
