"""Every derived file's name, spelt once (as hippunfold's ``bids()``): the workflow rules, the CLI,
training, inference, evaluation and the report ask here. Arguments may be Snakemake wildcards
(``"{subject}"``, ``"{split}"``), so a rule's output and another rule's input come from the same call.

Subject keys are ``01`` or ``01_ses-02`` (a session of participant ``sub-01``); splits are ``00``,
``01``, ...; modes are ``cascade``, ``single`` and each with the other class rule
(``cascade-exclusive``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .classes import LESIONS

WORKING_MASKS = (*LESIONS, "cord")  # masks on the working grid


def resolution_entity(spacing_mm) -> str:
    """The BIDS ``res`` entity of a working-grid spacing (si, ap, rl mm), alphanumeric as BIDS labels
    are: ``res-1x1x2`` for [1, 1, 2], ``res-0p8x0p8x2`` for [0.8, 0.8, 2]."""
    return "res-" + "x".join(np.format_float_positional(float(v), trim="-").replace(".", "p") for v in spacing_mm)


def working_grid_paths(preprocess_dir, key: str, spacing_mm=(1.0, 1.0, 2.0)) -> dict[str, str]:
    """One subject's working-grid files (images, masks, grid JSON) under ``preprocess_dir`` for the
    configured spacing (``preprocess.spacing_mm``)."""
    base = f"{preprocess_dir}/sub-{key}/sub-{key}_{resolution_entity(spacing_mm)}"
    return {"t2w": f"{base}_desc-preproc_T2w.nii.gz", "t1w": f"{base}_desc-preproc_T1w.nii.gz",
            **{k: f"{base}_label-{k}_mask.nii.gz" for k in WORKING_MASKS}, "grid": f"{base}_grid.json"}


def mask_name(base: str, cls: str, ext: str = ".nii.gz") -> str:
    """A predicted mask (``ext`` ``.json``: its sidecar), BIDS-derivatives style:
    ``<base>_label-<class>_mask.nii.gz``; ``base`` is ``sub-<key>`` in the workflow, the T2w's stem
    for ``imsct segment``."""
    return f"{base}_label-{cls}_mask{ext}"


def prediction_file(pred_dir, base: str, cls: str, ext: str = ".nii.gz") -> str:
    """A mask (or sidecar) in a workflow prediction folder: one folder per subject, ``<base>/``, which the
    workflow declares as one directory output (a declared file per mask and sidecar made the paper
    DAG 16,000 inference outputs, most of its dry-run time)."""
    return f"{pred_dir}/{base}/{mask_name(base, cls, ext)}"


@dataclass(frozen=True)
class Layout:
    """The results tree of one workflow run (``results``) and its working-grid spacing."""

    results: str = "results"
    spacing_mm: tuple = (1.0, 1.0, 2.0)

    # -- cohort and splits
    def cohort(self, name: str = "cohort") -> str:
        """``cohort`` or ``excluded`` table."""
        return f"{self.results}/cohort/{name}.tsv"

    def split_table(self, split: str) -> str:
        return f"{self.results}/splits/split-{split}.tsv"

    def splits_summary(self) -> str:
        return f"{self.results}/splits/summary.tsv"

    # -- preprocessing (per subject key)
    def preprocess_dir(self) -> str:
        return f"{self.results}/preprocess"

    def preprocess_subject_dir(self, key: str) -> str:
        """Everything preprocessing writes for one subject but its QC figure (a directory output)."""
        return f"{self.results}/preprocess/sub-{key}"

    def _pre(self, key: str) -> str:
        return f"{self.preprocess_subject_dir(key)}/sub-{key}"

    def cord_mask(self, key: str) -> str:
        """The 30 mm cord mask on the T2w grid (training target, evaluation of the cord model)."""
        return f"{self._pre(key)}_label-cord_mask.nii.gz"

    def registered_t1w(self, key: str) -> str:
        return f"{self._pre(key)}_space-T2w_desc-registered_T1w.nii.gz"

    def transform(self, key: str) -> str:
        return f"{self._pre(key)}_from-T1w_to-T2w_mode-points_xfm.mat"

    def registration_qc(self, key: str) -> str:
        return f"{self._pre(key)}_desc-registration_qc.json"

    def working_grid(self, key: str) -> dict[str, str]:
        return working_grid_paths(self.preprocess_dir(), key, self.spacing_mm)

    # -- QC
    def registration_table(self) -> str:
        return f"{self.results}/qc/registration.tsv"

    def qc_figure(self, kind: str, key: str) -> str:
        """``kind`` phantom or registration."""
        suffix = "phantom-qc" if kind == "phantom" else kind
        return f"{self.results}/qc/{kind}/sub-{key}_{suffix}.png"

    # -- models (per split): kind cord, tumor or single
    def model(self, split: str, kind: str, name: str = "best.pt") -> str:
        """``name``: best.pt, last.pt, summary.json, log.tsv or loss.png."""
        return f"{self.results}/models/split-{split}/{kind}/{name}"

    def model_folder(self, split: str, single: bool = False, name: str = "model.json") -> str:
        """The ONNX model folder (``name``: model.json, cord.onnx, tumor.onnx) of the cascade or of the
        single-step baseline."""
        return f"{self.results}/models/split-{split}/{'onnx-single' if single else 'onnx'}/{name}"

    # -- predictions (per split, mode and subject)
    def prediction_dir(self, split: str, mode: str) -> str:
        return f"{self.results}/predictions/split-{split}/{mode}"

    def prediction_subject_dir(self, split: str, mode: str, key: str) -> str:
        """One subject's masks and sidecars of one split and mode (a directory output of inference)."""
        return f"{self.prediction_dir(split, mode)}/sub-{key}"

    def prediction(self, split: str, mode: str, key: str, cls: str, ext: str = ".nii.gz") -> str:
        return prediction_file(self.prediction_dir(split, mode), f"sub-{key}", cls, ext)

    # -- evaluation and report
    def split_metrics(self, split: str) -> str:
        return f"{self.results}/evaluation/split-{split}.tsv"

    def evaluation(self, name: str) -> str:
        """metrics.tsv, table4.tsv, summary.md, per_type.tsv, per_acquisition.tsv, cascade_vs_single.tsv,
        summary.json or class_rules.tsv."""
        return f"{self.results}/evaluation/{name}"

    def report(self, name: str = "index.html") -> str:
        """index.html or figures/<name>.png."""
        return f"{self.results}/report/{name}"

    # -- batches of per-subject jobs
    def batch_manifest(self, step: str, batch: str) -> str:
        """What one batch job wrote, per subject (JSON, written last): later jobs depend on it rather
        than on every per-subject file (``step``: phantom, preprocess or ``infer/split-00_cascade``)."""
        return f"{self.results}/batches/{step}/{batch}.json"

    # -- apply: a new, unlabeled cohort segmented by trained models (``scan``: ``sub-01[/ses-02]``)
    def apply(self, name: str) -> str:
        """volumes.tsv, followup.tsv, report.html, or figures/<name>.png."""
        return f"{self.results}/apply/{name}"

    def apply_preprocess(self) -> Layout:
        """The layout of apply's own registrations (``<results>/apply/preprocess/...``), apart from
        the training cohort's, which may hold other subjects under the same labels."""
        return Layout(f"{self.results}/apply", self.spacing_mm)

    def apply_derivatives(self, name: str = "") -> str:
        """The BIDS-derivatives dataset of the masks (``dataset_description.json`` at its root)."""
        return f"{self.results}/apply/derivatives/imsct" + (f"/{name}" if name else "")

    def apply_anat(self, scan: str) -> str:
        """One scan's masks, sidecars and probability maps: ``sub-01/ses-02/anat``."""
        return self.apply_derivatives(f"{scan}/anat")

    def apply_record(self, scan: str) -> str:
        """One scan's segmentation record (status, volumes' inputs, the models' agreement)."""
        return f"{self.results}/apply/segment/{scan}/segment.json"

    # -- logs and benchmarks
    def log(self, name: str) -> str:
        return f"{self.results}/logs/{name}.log"

    def benchmark(self, name: str) -> str:
        return f"{self.results}/benchmarks/{name}.tsv"
