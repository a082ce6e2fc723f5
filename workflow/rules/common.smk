# Config validation, the cohort (known at parse time, no checkpoint) and input functions.
import copy
import dataclasses
import functools
import logging
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

from imsct.apply.models import resolve_models
from imsct.batching import make_batches
from imsct.bids import Naming, discover_cached, scan_dir, scan_key
from imsct.classes import CLASSES, LESIONS, OUTPUTS
from imsct.config import training_recipe, validate_config
from imsct.phantom.plan import participants_table, plan_from_config
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
    SPECS = {s.participant_id[4:]: s for s in plan_from_config(config["synthetic"])}
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


# Short per-subject steps run in batches (config `batching`): a few hundred jobs at paper scale.
PHANTOM_QC = SYNTHETIC and config["synthetic"]["qc"]
# What the phantoms are drawn from (not `qc`: toggling the montages must not rerun the cohort)
PHANTOM_PARAMS = {k: v for k, v in config["synthetic"].items() if k != "qc"}
PHANTOM_BATCHES = (
    make_batches(SUBJECTS, config["batching"]["phantom"]) if SYNTHETIC else {}
)
PREPROCESS_BATCHES = make_batches(SUBJECTS, config["batching"]["preprocess"])
_BATCH_OF = {
    step: {k: b for b, keys in batches.items() for k in keys}
    for step, batches in (
        ("phantom", PHANTOM_BATCHES),
        ("preprocess", PREPROCESS_BATCHES),
    )
}


def batch_manifests(step, keys):
    """The manifests of the ``step`` batches (phantom, preprocess) that hold ``keys``: downstream
    jobs depend on these few files instead of every per-subject file (a manifest is its job's last
    output; a job with any output missing reruns)."""
    if step == "phantom" and not SYNTHETIC:
        return []
    return sorted({L.batch_manifest(step, _BATCH_OF[step][k]) for k in keys})


def infer_batches(split):
    """Batches of a split's test subjects for inference (batching.infer), the same for every mode."""
    return make_batches(split_members(split, "test"), config["batching"]["infer"])


def cached_copies(fn):
    """``functools.cache`` for the path and member functions below, called thousands of times while
    the DAG is built: computed once per argument, each caller gets its own shallow copy.
    """
    cached = functools.cache(fn)
    return functools.wraps(fn)(lambda *args: copy.copy(cached(*args)))


@cached_copies
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


@cached_copies
def phantom_folders(subject):
    """The subject's folders the phantom writes into, its directory outputs: the scans' folder first
    (``<dataset>/sub-XXX``), then each derivative's. A declared file each made the paper DAG
    thousands of outputs, slow to plan.
    """
    name = f"/sub-{subject}/"
    folders = {
        p[: p.index(name) + len(name) - 1] for p in phantom_paths(subject).values()
    }
    return sorted(folders, key=lambda f: (f.count("/"), f))


# Splits are a pure function of the cohort and the seed: known at parse time, written by a rule.
SPLITS = [f"{i:02d}" for i in range(config["splits"]["n"])]
_PARTICIPANTS = participants_table(SPECS.values()) if SYNTHETIC else COHORT
ACQUISITION = (
    _PARTICIPANTS.drop_duplicates("participant_id")
    .set_index("participant_id")["acquisition"]
    .fillna("n/a")
    .astype(str)
    .to_dict()
    if "acquisition" in _PARTICIPANTS
    else {}
)
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


def base_modes(split):
    """The models a split's test subjects are segmented with: the cascade, and the single-step
    baseline where it was trained."""
    return ["cascade"] + (["single"] if split in SINGLE_SPLITS else [])


def split_modes(split):
    """Inference modes of a split: :func:`base_modes` and each with the other class rule
    (``<mode>-<ALT_RULE>``)."""
    modes = base_modes(split)
    return modes + [f"{m}-{ALT_RULE}" for m in modes]


@cached_copies
def split_members(split, which):
    """Subject keys (wildcard values) of one set of a split; sessions follow their participant."""
    return members(SPLIT_TABLES[split], SUBJECTS, which)


@cached_copies
def preproc_paths(subject):
    return L.working_grid(subject)


def get_training_subjects(wildcards):
    return {
        which: {k: preproc_paths(k) for k in split_members(wildcards.split, which)}
        for which in ("train", "val")
    }


def get_training_inputs(wildcards):
    """The preprocessing manifests of the training and validation subjects (listing every
    working-grid file made the paper DAG's training jobs thousands of inputs each)."""
    keys = [
        k for which in ("train", "val") for k in split_members(wildcards.split, which)
    ]
    return batch_manifests("preprocess", keys)


def subject_inputs(subject):
    """Every input path of one subject (key: t2w, t1w, tumor, ..., discs, t1w_discs); optional labels
    a real dataset lacks are left out."""
    if SYNTHETIC:
        return phantom_paths(subject)
    row = ROWS[subject]
    return {
        k: row[k] for k in ["t2w", "t1w", *NAMING.labels] if isinstance(row.get(k), str)
    }


def get_preprocess_inputs(keys):
    """A preprocessing batch's inputs: the phantom manifests (synthetic cohort) or the source files."""
    if SYNTHETIC:
        return batch_manifests("phantom", keys)
    return [p for k in keys for p in preprocess_inputs(k).values()]


def get_infer_inputs(keys):
    """What inference reads of its subjects: their T2w (phantom manifests, or the source files) and
    registered T1w (preprocessing manifests)."""
    t2w = [] if SYNTHETIC else [subject_inputs(k)["t2w"] for k in keys]
    return batch_manifests("phantom", keys) + t2w + batch_manifests("preprocess", keys)


TUNE = config["postprocess"]["tune"]["enabled"]
# What export writes into the model folders: the tune settings only when tuning is on (editing them
# with tuning off must not rerun every export and what follows)
EXPORT_POSTPROCESS = {
    k: v for k, v in config["postprocess"].items() if k != "tune" or TUNE
}


def export_runtime(wildcards):
    """Minutes for an export job: with postprocess.tune it also segments the split's validation
    subjects (as inference budgets its batches: a minute per subject)."""
    return 30 + (len(split_members(wildcards.split, "val")) if TUNE else 0)


def labelled_scans(keys):
    """Per subject: the T2w, the T1w registered onto it and the lesion labels on its grid (what the
    report's panels and postprocess.tune read)."""
    out = {}
    for key in keys:
        files = subject_inputs(key)
        out[key] = {
            "t2w": files["t2w"],
            "t1w": L.registered_t1w(key),
            "gt": {c: files[c] for c in LESIONS},
        }
    return out


def get_tune_subjects(wildcards):
    """postprocess.tune: the split's validation subjects (:func:`labelled_scans`); none when tuning
    is off."""
    return labelled_scans(split_members(wildcards.split, "val")) if TUNE else {}


def get_tune_inputs(wildcards):
    """The manifests (or source files) behind :func:`get_tune_subjects`."""
    subjects = get_tune_subjects(wildcards)
    labels = (
        [] if SYNTHETIC else [f for s in subjects.values() for f in s["gt"].values()]
    )
    return get_infer_inputs(list(subjects)) + labels


def registration_inputs(files):
    """A scan's registration inputs (training's or apply's): the T2w, the T1w where present and, when
    registration uses them, the disc labels of both."""
    out = {k: files[k] for k in ("t2w", "t1w") if k in files}
    if (
        config["preprocess"]["registration"]["use_discs"]
        and "discs" in files
        and "t1w_discs" in files
    ):
        out |= {"fixed_discs": files["discs"], "moving_discs": files["t1w_discs"]}
    return out


def preprocess_inputs(key):
    """What preprocessing reads for one subject: both scans, the centerline, the lesion labels and,
    when registration uses them, the disc labels of both scans."""
    files = subject_inputs(key)
    return registration_inputs(files) | {k: files[k] for k in ("centerline", *LESIONS)}


def preprocess_outputs(key):
    """What preprocessing writes for one subject (see imsct.preprocess.pipeline.preprocess_subject)."""
    return {
        "cord": L.cord_mask(key),
        "t1w": L.registered_t1w(key),
        "transform": L.transform(key),
        "qc": L.registration_qc(key),
        "figure": L.qc_figure("registration", key),
        "working": preproc_paths(key),
    }


def get_discover_inputs(wildcards):
    if not SYNTHETIC:
        return []
    return [f"{BIDS_DIR}/participants.tsv"] + batch_manifests("phantom", SUBJECTS)


def get_evaluate_subjects(wildcards):
    """What evaluating one split needs per test subject: ground truth on the T2w grid, the 30 mm
    cord mask, the working-grid labels (for the cascade crop), the tumor type and the acquisition
    (the cohort table's `acquisition` column where it has one: the phantoms' sagittal or block).
    """
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
            "acquisition": ACQUISITION.get(participant_of(key), "n/a"),
        }
    return out


def get_evaluate_inputs(wildcards):
    """The batch manifests of the test subjects' ground truth (phantom; or the source labels),
    preprocessing (cord mask, working-grid labels) and predictions (every mode)."""
    split = wildcards.split
    subjects = get_evaluate_subjects(wildcards)
    gt = [] if SYNTHETIC else [f for s in subjects.values() for f in s["gt"].values()]
    return {
        "truth": batch_manifests("phantom", subjects) + gt,
        "preprocess": batch_manifests("preprocess", subjects),
        "predictions": [
            L.batch_manifest(f"infer/split-{split}_{mode}", b)
            for mode in base_modes(split)
            for b in infer_batches(split)
        ],
    }


def get_report_subjects(wildcards=None):
    """Images and labels of every subject tested in some split (for the example panels)."""
    return labelled_scans(
        sorted({k for split in SPLITS for k in split_members(split, "test")})
    )


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
        "preprocess": batch_manifests("preprocess", SUBJECTS),
        "registration": L.registration_table(),
        "logs": [p for logs in training_logs().values() for p in logs.values()],
        "metrics": L.evaluation("metrics.tsv"),
        "table4": L.evaluation("table4.tsv"),
        "per_type": L.evaluation("per_type.tsv"),
        "per_acquisition": L.evaluation("per_acquisition.tsv"),
        "cascade": L.evaluation("cascade_vs_single.tsv"),
        "summary": L.evaluation("summary.json"),
        "postprocess": L.evaluation("class_rules.tsv"),
        "models": [L.model_folder(s) for s in SPLITS],
        # the example panels read the cascade's predictions of every split's test subjects
        "predictions": [
            L.batch_manifest(f"infer/split-{split}_cascade", b)
            for split in SPLITS
            for b in infer_batches(split)
        ],
    }


def get_final_outputs():
    """What `snakemake` (rule all) builds; predictions and working-grid files follow from evaluation."""
    outs = [L.cohort(), L.cohort("excluded")]
    # the per-subject QC figures, through their batches' manifests
    outs += batch_manifests("phantom", SUBJECTS) + batch_manifests(
        "preprocess", SUBJECTS
    )
    outs += [L.registration_table()]
    outs += [L.splits_summary()]
    outs += [L.model(s, "tumor", "summary.json") for s in SPLITS]
    outs += [L.model_folder(s) for s in SPLITS]
    outs += [L.model_folder(s, single=True) for s in SINGLE_SPLITS]
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


def get_apply_models(wildcards=None):
    if not APPLY_MODELS:
        raise WorkflowError(
            f"models: no model folder (model.json, or split-*/onnx/model.json) in {config['models']}"
        )
    return APPLY_MODELS


# Scans (sub-01/ses-02) per apply job: registration where a T1w exists, then the ensemble, in one job
# per batch (the models loaded once).
APPLY_BATCHES = make_batches(list(APPLY_SCANS), config["batching"]["infer"])


def apply_batch_inputs(scans):
    """An apply batch's inputs: its scans' source files (phantom manifests for the synthetic cohort)
    and the models."""
    keys = [APPLY_SCANS[s] for s in scans]
    files = (
        batch_manifests("phantom", keys) + batch_manifests("preprocess", keys)
        if SYNTHETIC
        else [p for k in keys for p in registration_inputs(apply_inputs(k)).values()]
    )
    return {"scans": files, "models": get_apply_models()}


def apply_scan(scan):
    """One scan's apply job: inputs (registration_inputs keys) and what it writes. The synthetic
    cohort is the training cohort, registered once by preprocessing with the same registration: its
    registered T1w is reused (``registered``), not computed a second time."""
    key = APPLY_SCANS[scan]
    reg = L if SYNTHETIC else LA
    return {
        "key": key,
        "inputs": registration_inputs(apply_inputs(key)),
        "registered": SYNTHETIC,
        "t1w": reg.registered_t1w(key),
        "transform": reg.transform(key),
        "qc": reg.registration_qc(key),
        "anat": L.apply_anat(scan),
        "record": L.apply_record(scan),
    }


def apply_discs():
    """Scan key -> its disc labels on the T2w grid (None without)."""
    return {k: apply_inputs(k).get("discs") for k in APPLY_ROWS}


def apply_disc_inputs():
    """What volumetry reads for the vertebral levels: the disc label files (the synthetic cohort's
    are made by the phantom jobs, so their manifests stand for them)."""
    if SYNTHETIC:
        return batch_manifests("phantom", list(APPLY_ROWS))
    return [p for p in apply_discs().values() if p]


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
