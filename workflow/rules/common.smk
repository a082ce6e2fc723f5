# Config validation, the cohort (known at parse time, no checkpoint) and input functions.
import dataclasses
import logging
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

from imsct.apply.models import resolve_models
from imsct.bids import Naming, discover_cached, scan_dir, scan_key
from imsct.classes import CLASSES, LESIONS, OUTPUTS
from imsct.config import training_recipe, validate_config
from imsct.phantom.cohort import participants_table, plan_cohort
from imsct.paths import Layout
from imsct.splits import (
    make_splits,
    participant_of,
    split_members as members,
    split_table,
)

# The CLI's validation (imsct.config): fills every missing key with its default at every depth; a
# mistake is one message naming the key, without a traceback.
try:
    validate_config(config)
except ValueError as exc:
    raise WorkflowError(str(exc)) from None

# Rules declare no conda environment: Snakemake would build (or, for a named one, export with a
# conda binary) an environment per rule, and environment.yml's `-e .` only resolves from this
# repository. The workflow runs inside the one environment of environment.yml (see the README).

NAMING = Naming.from_config(config["inputs"])
RESULTS = config["results"]
RESOURCES = config["resources"]
# Every derived file's name comes from the package's one layout (imsct.paths), as the CLI's do.
L = Layout(RESULTS, tuple(config["preprocess"]["spacing_mm"]))
SYNTHETIC = not config.get("bids_dir")

if SYNTHETIC:
    # The embedded default: the synthetic cohort's subjects follow from (count, seed).
    BIDS_DIR = f"{RESOURCES}/synthetic"
    SPECS = {
        s.participant_id[4:]: s
        for s in plan_cohort(
            config["synthetic"]["subjects"], config["synthetic"]["seed"]
        )
    }
    SUBJECTS = list(SPECS)
else:
    BIDS_DIR = config["bids_dir"]
    # Discovery once per run: jobs (not the main process) trust the cache without listing the dataset.
    COHORT, EXCLUDED = discover_cached(
        BIDS_DIR,
        NAMING,
        f"{RESULTS}/.cache",
        trust_cache=not workflow.is_main_process,
    )
    if workflow.is_main_process and len(EXCLUDED):
        logging.getLogger("imsct").warning(
            "%d subject(s) excluded, see %s/cohort/excluded.tsv", len(EXCLUDED), RESULTS
        )
    COHORT["key"] = [
        scan_key(s, ses) for s, ses in zip(COHORT["subject"], COHORT["session"])
    ]
    ROWS = {r["key"]: r for r in COHORT.to_dict("records")}
    SUBJECTS = sorted(ROWS)

# The cohort `snakemake apply` segments (workflow/rules/apply.smk): every scan with a T2w, by the same
# discovery with only the T2w required (a T1w and disc labels are used where present).
if SYNTHETIC:
    APPLY_ROWS = {k: {"participant_id": f"sub-{k}", "session": None} for k in SUBJECTS}
else:
    _APPLY, _ = discover_cached(
        BIDS_DIR,
        dataclasses.replace(NAMING, required=("t2w",)),
        f"{RESULTS}/.cache",
        trust_cache=not workflow.is_main_process,
    )
    APPLY_ROWS = {
        scan_key(r["subject"], r["session"]): r for r in _APPLY.to_dict("records")
    }
APPLY_SCANS = {scan_dir(k): k for k in sorted(APPLY_ROWS)}  # sub-01/ses-02 -> 01_ses-02


wildcard_constraints:
    subject="|".join(sorted(set(SUBJECTS) | set(APPLY_ROWS))) or "NO_SUBJECT",


def phantom_paths(subject):
    """Files the phantom writes for one subject, named by the configured input naming."""
    root = Path(BIDS_DIR)
    anat = root / f"sub-{subject}" / "anat"
    t2w = anat / NAMING.image_name("t2w", subject)
    t1w = anat / NAMING.image_name("t1w", subject)
    stems = {
        "t2w_stem": t2w.name[: -len(NAMING.extension)],
        "t1w_stem": t1w.name[: -len(NAMING.extension)],
    }
    out = {"t2w": str(t2w), "t1w": str(t1w)}
    for key in NAMING.labels:
        out[key] = str(NAMING.label_path(root, key, subject, None, stems))
    out["truth"] = str(
        root
        / "derivatives"
        / "phantom"
        / f"sub-{subject}"
        / f"sub-{subject}_truth.json"
    )
    return out


# Splits are a pure function of the cohort and the seed: known at parse time, written by a rule.
SPLITS = [f"{i:02d}" for i in range(config["splits"]["n"])]
_PARTICIPANTS = participants_table(SPECS.values()) if SYNTHETIC else COHORT
SPLIT_TABLES = dict(
    zip(
        SPLITS,
        make_splits(
            split_table(_PARTICIPANTS),
            config["splits"]["n"],
            config["splits"]["seed"],
            config["splits"]["fractions"],
        ),
    )
)


# What the models depend on (rules' params): threads, device and resources are left out, so a
# scheduling edit reruns nothing.
TRAINING_RECIPE = {
    kind: training_recipe(config["training"], kind)
    for kind in ("cord", "tumor", "single")
}

# The single-step baseline (paper 2.6.2) is trained on these splits only (the paper: one).
SINGLE_SPLITS = [
    f"{i:02d}"
    for i in config["training"]["single_step"]["splits"]
    if i < config["splits"]["n"]
]
# Each prediction is written with the configured class rule and, beside it, the other one
# (exclusive classes vs each output thresholded on its own), so the report can compare them.
ALT_RULE = "independent" if config["postprocess"]["exclusive"] else "exclusive"


def get_infer_model(wildcards):
    """The model folder of an inference mode: the cascade's, or the single-step baseline's."""
    return L.model_folder(wildcards.split, single=wildcards.mode != "cascade")


def split_modes(split):
    """Inference modes of a split: the cascade, the single-step baseline where it was trained, and
    each with the other class rule (``<mode>-<ALT_RULE>``)."""
    modes = ["cascade"] + (["single"] if split in SINGLE_SPLITS else [])
    return modes + [f"{m}-{ALT_RULE}" for m in modes]


def split_members(split, which):
    """Subject keys (wildcard values) of one set of a split; sessions follow their participant."""
    return members(SPLIT_TABLES[split], SUBJECTS, which)


def preproc_paths(subject):
    return L.working_grid(subject)


def get_training_subjects(wildcards):
    return {
        which: {k: preproc_paths(k) for k in split_members(wildcards.split, which)}
        for which in ("train", "val")
    }


def get_training_inputs(wildcards):
    subjects = get_training_subjects(wildcards)
    return [
        p
        for which in subjects.values()
        for paths in which.values()
        for p in paths.values()
    ]


def subject_inputs(subject):
    """Every input path of one subject (key: t2w, t1w, tumor, ..., discs, t1w_discs); optional labels
    a real dataset lacks are left out."""
    if SYNTHETIC:
        return phantom_paths(subject)
    row = ROWS[subject]
    return {
        k: row[k] for k in ["t2w", "t1w", *NAMING.labels] if isinstance(row.get(k), str)
    }


def get_register_inputs(wildcards):
    return register_inputs(subject_inputs(wildcards.subject))


def register_inputs(files):
    """The register rule's inputs from a scan's files (training's or apply's)."""
    out = {"t2w": files["t2w"], "t1w": files["t1w"]}
    if (
        config["preprocess"]["registration"]["use_discs"]
        and "discs" in files
        and "t1w_discs" in files
    ):
        out |= {"fixed_discs": files["discs"], "moving_discs": files["t1w_discs"]}
    return out


def get_resample_inputs(wildcards):
    files = subject_inputs(wildcards.subject)
    return {
        "t2w": files["t2w"],
        "t1w": L.registered_t1w(wildcards.subject),
        **{c: files[c] for c in LESIONS},
        "cord": L.cord_mask(wildcards.subject),
    }


def get_discover_inputs(wildcards):
    if not SYNTHETIC:
        return []
    files = [f"{BIDS_DIR}/participants.tsv"]
    for subject in SUBJECTS:
        files += list(phantom_paths(subject).values())
    return files


def get_evaluate_subjects(wildcards):
    """What evaluating one split needs per test subject: ground truth on the T2w grid, the 30 mm
    cord mask, the working-grid labels (for the cascade crop) and the tumor type."""
    table = SPLIT_TABLES[wildcards.split].set_index("participant_id")
    out = {}
    for key in split_members(wildcards.split, "test"):
        files = subject_inputs(key)
        work = preproc_paths(key)
        out[key] = {
            "gt": {c: files[c] for c in LESIONS},
            "cord_gt": L.cord_mask(key),
            "working_labels": {c: work[c] for c in LESIONS},
            "tumor_type": str(table.loc[participant_of(key), "tumor_type"]),
        }
    return out


def get_evaluate_inputs(wildcards):
    files = {}
    split = wildcards.split
    for key, s in get_evaluate_subjects(wildcards).items():
        files[f"{key}_gt"] = list(s["gt"].values())
        files[f"{key}_cord"] = s["cord_gt"]
        files[f"{key}_work"] = list(s["working_labels"].values())
        for mode in split_modes(split):
            classes = OUTPUTS if "-" not in mode else CLASSES
            files[f"{key}_pred_{mode}"] = [
                L.prediction(split, mode, key, c) for c in classes
            ]
            files[f"{key}_sidecar_{mode}"] = L.prediction(
                split, mode, key, "wholetumor", ".json"
            )
    return files


def get_report_subjects(wildcards=None):
    """Images and labels of every subject tested in some split (for the example panels)."""
    keys = sorted({k for split in SPLITS for k in split_members(split, "test")})
    out = {}
    for key in keys:
        files = subject_inputs(key)
        out[key] = {
            "t2w": files["t2w"],
            "t1w": L.registered_t1w(key),
            "gt": {c: files[c] for c in LESIONS},
        }
    return out


def training_logs():
    """log.tsv of every trained model: {split: {cord, tumor[, single]: path}}."""
    return {
        s: {
            m: L.model(s, m, "log.tsv")
            for m in ("cord", "tumor", "single")
            if m != "single" or s in SINGLE_SPLITS
        }
        for s in SPLITS
    }


def get_report_inputs(wildcards):
    return {
        "cohort": L.cohort(),
        "grids": [preproc_paths(s)["grid"] for s in SUBJECTS],
        "registration": L.registration_table(),
        "logs": [p for logs in training_logs().values() for p in logs.values()],
        "metrics": L.evaluation("metrics.tsv"),
        "table4": L.evaluation("table4.tsv"),
        "per_type": L.evaluation("per_type.tsv"),
        "cascade": L.evaluation("cascade_vs_single.tsv"),
        "summary": L.evaluation("summary.json"),
        "postprocess": L.evaluation("class_rules.tsv"),
        "t1w": [s["t1w"] for s in get_report_subjects().values()],
        # the example panels read the cascade's predictions of every split's test subjects
        "predictions": [
            L.prediction(split, "cascade", key, cls)
            for split in SPLITS
            for key in split_members(split, "test")
            for cls in OUTPUTS
        ],
    }


def get_final_outputs():
    outs = [L.cohort(), L.cohort("excluded")]
    if SYNTHETIC and config["synthetic"]["qc"]:
        outs += [L.qc_figure("phantom", s) for s in SUBJECTS]
    outs += [L.registration_table()]
    outs += [L.qc_figure("registration", s) for s in SUBJECTS]
    outs += [preproc_paths(s)["grid"] for s in SUBJECTS]
    outs += [L.splits_summary()]
    outs += [L.model(s, "tumor", "summary.json") for s in SPLITS]
    outs += [L.model_folder(s) for s in SPLITS]
    outs += [L.model_folder(s, single=True) for s in SINGLE_SPLITS]
    for split in SPLITS:
        for mode in split_modes(split):
            if "-" not in mode:
                outs += [
                    L.prediction(split, mode, k, "wholetumor")
                    for k in split_members(split, "test")
                ]
    outs += [L.evaluation("summary.md"), L.report()]
    return outs


# -- apply: a new cohort segmented by trained models (workflow/rules/apply.smk)
# The ensemble: the `models` config key, or this run's own split models.
APPLY_MODELS = resolve_models(config["models"], [L.model_folder(s) for s in SPLITS])
LA = L.apply_preprocess()  # apply's registrations, apart from the training cohort's


def apply_inputs(key):
    """A scan's input files (t2w, t1w, discs, t1w_discs, where present) for apply."""
    if SYNTHETIC:
        files = phantom_paths(key)
    else:
        files = {k: v for k, v in APPLY_ROWS[key].items() if isinstance(v, str)}
    return {k: files[k] for k in ("t2w", "t1w", "discs", "t1w_discs") if k in files}


def get_apply_register_inputs(wildcards):
    return register_inputs(apply_inputs(wildcards.subject))


def get_apply_models(wildcards=None):
    if not APPLY_MODELS:
        raise WorkflowError(
            f"models: no model folder (model.json, or split-*/onnx/model.json) in {config['models']}"
        )
    return APPLY_MODELS


def get_apply_segment_inputs(wildcards):
    key = APPLY_SCANS[wildcards.scan]
    files = apply_inputs(key)
    out = {"t2w": files["t2w"], "models": get_apply_models()}
    if (
        "t1w" in files
    ):  # a scan without a T1w is recorded as skipped (imsct.apply.segment)
        out |= {"t1w": LA.registered_t1w(key), "qc": LA.registration_qc(key)}
    return out


def apply_discs():
    """Scan key -> its disc labels on the T2w grid (None without)."""
    return {k: apply_inputs(k).get("discs") for k in APPLY_ROWS}


def apply_sessions():
    """The sessions tables (acq_time) of participants scanned in sessions."""
    if SYNTHETIC:
        return []
    pids = {
        r["participant_id"]
        for r in APPLY_ROWS.values()
        if isinstance(r.get("session"), str)
    }
    paths = [Path(BIDS_DIR, p, f"{p}_sessions.tsv") for p in sorted(pids)]
    return [str(p) for p in paths if p.is_file()]


def apply_followup_participants():
    """Participants with several sessions: one growth plot each."""
    pids = [APPLY_ROWS[k]["participant_id"] for k in APPLY_ROWS if "_ses-" in k]
    return sorted({p for p in pids if pids.count(p) > 1})
