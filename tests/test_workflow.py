"""The Snakemake workflow: dry-runs (demo and paper scale), lint, formatting, schema errors and a real
small run of what exists so far."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def snakemake(*args, cwd=REPO, timeout=600):
    exe = shutil.which("snakemake", path=str(BIN)) or "snakemake"
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def job_counts(output: str) -> dict[str, int]:
    stats = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", stats, re.M)}


def batched(counts: dict[str, int], step: str) -> int:
    """Jobs of a batched step (rules ``<step>_b000``, ``infer_00_cascade_b000``, ...)."""
    return sum(v for k, v in counts.items() if re.fullmatch(rf"{step}_(\w+_)?b\d{{3}}", k))


def tmp_config(tmp_path):
    return [f"results={tmp_path}/results", f"resources={tmp_path}/resources"]


def overlay(tmp_path, text: str) -> list[str]:
    """A config file layered over config/config.yaml (typed YAML, unlike --config strings)."""
    p = tmp_path / "overlay.yaml"
    p.write_text(text)
    return ["--configfile", "config/config.yaml", str(p)]


def test_dry_run_default(tmp_path):
    demo = yaml.safe_load((REPO / "config/config.yaml").read_text())
    n, seed, n_splits = demo["synthetic"]["subjects"], demo["synthetic"]["seed"], demo["splits"]["n"]
    r = snakemake("-n", "--cores", "2", "--config", *tmp_config(tmp_path))
    assert r.returncode == 0, r.stderr
    counts = job_counts(r.stdout)
    batch = demo.get("batching", {}).get("preprocess", 16)
    assert batched(counts, "phantom") == batched(counts, "preprocess") == -(-n // batch)
    assert counts["discover"] == counts["registration_summary"] == 1
    assert counts["train_cord"] == counts["train_tumor"] == counts["export"] == n_splits
    assert counts["train_single"] == counts["export_single"] == 1
    from imsct.phantom.cohort import participants_table, plan_cohort
    from imsct.splits import make_splits, split_table

    splits = make_splits(split_table(participants_table(plan_cohort(n, seed))), n_splits, demo["splits"]["seed"])
    n_test = [int((s["set"] == "test").sum()) for s in splits]
    assert min(n_test) >= 4  # enough test subjects per split for a mean to mean something
    # every split's test subjects with the cascade; split 00's also with the single-step baseline, in
    # batches of batching.infer
    infer_batch = demo.get("batching", {}).get("infer", 32)
    assert batched(counts, "infer") == sum(-(-t // infer_batch) for t in n_test) + -(-n_test[0] // infer_batch)
    for i, s in enumerate(splits):
        for key in s.loc[s["set"] == "test", "participant_id"]:
            assert f"predictions/split-{i:02d}/cascade/{key}," in r.stdout.replace("\n", ",")
    assert counts["evaluate"] == 3 and counts["aggregate"] == counts["report"] == 1


def test_dry_run_apply_on_the_synthetic_cohort_from_scratch(tmp_path):
    """`snakemake apply` without a bids_dir segments the run's own phantoms with its own models: from an
    empty results folder the DAG builds (the phantoms' disc labels come from the phantom jobs), and the
    apply jobs reuse preprocessing's registrations instead of registering every subject again."""
    demo = yaml.safe_load((REPO / "config/config.yaml").read_text())
    r = snakemake("-n", "--cores", "2", "--config", *tmp_config(tmp_path), "--", "apply")
    assert r.returncode == 0, r.stderr + r.stdout[-3000:]
    counts = job_counts(r.stdout)
    batch = demo.get("batching", {}).get("infer", 32)
    assert batched(counts, "apply") == -(-demo["synthetic"]["subjects"] // batch)
    assert counts["apply_volumetry"] == counts["apply_report"] == 1
    # the training cohort is registered once, by preprocessing, which every apply job waits for
    assert batched(counts, "preprocess") == -(-demo["synthetic"]["subjects"] // demo["batching"]["preprocess"])
    inputs = re.search(r"rule apply_b000:\n\s+input: (.*)\n", r.stdout).group(1)
    assert "/batches/preprocess/b000.json" in inputs and "/batches/phantom/b000.json" in inputs


def test_dry_run_paper_scale_with_the_slurm_profile(tmp_path):
    """`snakemake -n --profile profiles/slurm`: the paper's DAG (343 subjects, 12 splits), training jobs
    on the GPU partition with one GPU each, the rest on CPU partitions."""
    r = snakemake("-n", "--profile", "profiles/slurm", "--config", *tmp_config(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    counts = job_counts(r.stdout)
    assert counts["train_cord"] == counts["train_tumor"] == 12  # one GPU job per split and model
    assert counts["train_single"] == counts["export_single"] == 1  # the baseline on one split, as the paper
    # every subject is generated and preprocessed once, in batches; the whole DAG stays a few hundred jobs
    for step in ("phantom", "preprocess"):
        assert all(f"logs/{step}/sub-{i:03d}.log" in r.stdout for i in range(1, 344)), step
        assert 0 < batched(counts, step) <= 343 // 8
    submitted = sum(v for k, v in counts.items() if k != "all")  # `all` is local (localrules)
    print(f"paper DAG through profiles/slurm: {submitted} SLURM jobs")
    assert submitted <= 300
    resources = {}
    for block in r.stdout.split("\nrule ")[1:]:
        rule = block.split(":", 1)[0]
        line = next((ln for ln in block.splitlines() if ln.strip().startswith("resources:")), "")
        resources.setdefault(rule, line)
    for rule in ("train_cord", "train_tumor", "train_single"):
        assert "gpu=1" in resources[rule] and "slurm_partition=gpu" in resources[rule], resources[rule]
    for rule in ("preprocess_b000", "infer_00_cascade_b000", "evaluate"):
        assert "gpu=" not in resources[rule] and "slurm_partition=cpu" in resources[rule], resources[rule]


def test_dry_run_all_splits_on_one_gpu_machine(tmp_path):
    """config/gpu.yaml: the whole DAG, 12 splits, full-size phantoms, the paper's networks."""
    r = snakemake("-n", "--cores", "16", "--resources", "gpu=4", "--configfile", "config/config.yaml",
                  "config/gpu.yaml", "--config", *tmp_config(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    counts = job_counts(r.stdout)
    assert counts["train_cord"] == counts["train_tumor"] == counts["evaluate"] == 12
    assert counts["train_single"] == 1 and batched(counts, "phantom") >= 1


def test_dry_run_the_slice_of_the_gpu_configuration_that_two_cores_run(tmp_path):
    """config/gpu-slice-cpu.yaml over gpu.yaml: the same DAG on one split, on the CPU."""
    r = snakemake("-n", "--cores", "2", "--configfile", "config/config.yaml", "config/gpu.yaml",
                  "config/gpu-slice-cpu.yaml", "--config", *tmp_config(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    counts = job_counts(r.stdout)
    assert counts["train_cord"] == counts["train_tumor"] == counts["train_single"] == counts["evaluate"] == 1
    assert "gpu=1" not in r.stdout  # the training jobs ask for no GPU


def test_dry_run_the_demo_over_twelve_splits(tmp_path):
    """config/demo-12splits.yaml over the demo: the paper's 12 splits at demo scale, on the CPU; the
    single-step baseline still on split 0 alone."""
    r = snakemake("-n", "--cores", "2", "--configfile", "config/config.yaml", "config/demo-12splits.yaml",
                  "--config", *tmp_config(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    counts = job_counts(r.stdout)
    assert counts["train_cord"] == counts["train_tumor"] == counts["export"] == counts["evaluate"] == 12
    assert counts["train_single"] == 1 and "gpu=1" not in r.stdout


def test_working_grid_files_are_named_by_the_configured_spacing(tmp_path):
    """The working-grid files carry the configured spacing (``res-1x1x2`` by default, as ever, which
    test_small_run_generates_cohort_and_qc runs): preprocessing writes them under that name into the
    subject's folder (its one declared output) and its manifest, which training reads, lists them so."""
    config = overlay(tmp_path, "synthetic: {subjects: 2, seed: 5, size: small, qc: false}\n"
                               "batching: {phantom: 2, preprocess: 1}\npreprocess: {spacing_mm: [0.8, 0.8, 2]}")
    r = snakemake("-n", "--cores", "2", *config, "--config", *tmp_config(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    outputs = [ln for b in r.stdout.split("\nrule ")[1:] if b.startswith("preprocess_b")
               for ln in b.splitlines() if ln.strip().startswith("output:")]
    # one folder per subject, every subject once
    assert sorted(re.findall(r"preprocess/sub-(\d+)(?:,|$)", "\n".join(outputs), re.M)) == ["001", "002"]
    folder = tmp_path / "results/preprocess/sub-001"
    r = snakemake("--cores", "2", str(folder), *config, "--config", *tmp_config(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    names = {p.name for p in folder.iterdir()}
    assert {"sub-001_res-0p8x0p8x2_grid.json", "sub-001_res-0p8x0p8x2_desc-preproc_T2w.nii.gz",
            "sub-001_res-0p8x0p8x2_label-tumor_mask.nii.gz"} <= names
    assert not any("res-1x1x2" in n for n in names)
    grid = nib.load(folder / "sub-001_res-0p8x0p8x2_desc-preproc_T2w.nii.gz")
    assert np.allclose(sorted(nib.affines.voxel_sizes(grid.affine)), [0.8, 0.8, 2])
    manifest = json.loads((tmp_path / "results/batches/preprocess/b000.json").read_text())
    working = manifest["subjects"]["001"]["working"]
    assert working["grid"] == str(folder / "sub-001_res-0p8x0p8x2_grid.json")
    assert all(Path(p).is_file() for p in working.values())


def test_lint_is_clean():
    """Every lint but one: no rule declares a conda environment, by design (one environment for the
    whole workflow, see test_install.py)."""
    r = snakemake("--lint")
    out = r.stdout + r.stderr
    assert "Traceback" not in out, out[-3000:]
    titles = re.findall(r"^    \* (.+?):?$", out, re.M)
    assert all("conda environment" in t for t in titles), titles
    assert out.count("Lints for") == len(titles)  # one lint per rule: that one


def test_python_code_passes_ruff():
    """The rule set in pyproject.toml ([tool.ruff]) over the package, tests, scripts and benchmarks."""
    exe = shutil.which("ruff", path=str(BIN))
    if exe is None:
        pytest.skip("ruff not installed (pip install -e .[dev])")
    r = subprocess.run([exe, "check", "--output-format", "concise", "."], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]


def test_rule_files_are_snakefmt_formatted():
    exe = shutil.which("snakefmt", path=str(BIN))
    if exe is None:
        pytest.skip("snakefmt not installed (pip install -e .[dev])")
    files = ["Snakefile", *map(str, sorted((REPO / "workflow" / "rules").glob("*.smk")))]
    r = subprocess.run([exe, "--check", *files], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ("foo: 1", "'foo' was unexpected"),
        ("synthetic: {subjects: 0}", "config: synthetic/subjects: 0 is less than the minimum of 1"),
        ("synthetic: {subjects: twelve}", "config: synthetic/subjects: 'twelve' is not of type 'integer'"),
        ("splits: {n: 0}", "config: splits/n: 0 is less than the minimum of 1"),
        ("splits: {fractions: [0.5, 0.3, 0.3]}", "splits/fractions"),
        ("preprocess: {spacing_mm: [1, 1, -2]}",
         "config: preprocess/spacing_mm/2: -2 is less than or equal to the minimum of 0"),
        ("inputs: {t2w: {suffix: 'T2w/../x'}}", "config: inputs/t2w/suffix: 'T2w/../x' does not match"),
        ("training: {cord: {depth: 3}}",
         "config: training/cord: Additional properties are not allowed ('depth' was unexpected)"),
        ("training: {tumor: {downsamplings: 4, patch: [64, 40, 16], stride: [32, 40, 16]}}",
         "training/tumor/patch: [64, 40, 16] must be multiples of 2**downsamplings = 16"),
        ("training: {single_step: {splits: [3]}}", "training/single_step/splits: [3] must name splits 0..2"),
    ],
)
def test_config_errors_name_the_key(tmp_path, text, message):
    r = snakemake("-n", "--cores", "1", *overlay(tmp_path, text), "--config", *tmp_config(tmp_path))
    assert r.returncode != 0
    assert message in r.stderr + r.stdout
    # one message, not a traceback through imsct or a dump of the schema
    assert "Traceback" not in r.stderr and "config.py" not in r.stderr and "Failed validating" not in r.stderr


def test_partial_config_sections_are_completed_from_the_defaults(tmp_path):
    """A config giving only some keys of a section (here the only config: --replace-workflow-config)
    plans the workflow with the schema's defaults for the rest, as `imsct.config.load_config` does."""
    p = tmp_path / "partial.yaml"
    p.write_text("synthetic: {subjects: 8}\nsplits: {n: 2}\n"
                 "training: {cord: {base_filters: 4}, resources: {gpu: 1}}\n"
                 "postprocess: {min_volume_cm3: {tumor: 0.1}}\n")
    r = snakemake("-n", "--cores", "2", "--resources", "gpu=1", "--replace-workflow-config", "--configfile", str(p),
                  "--config", *tmp_config(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    counts = job_counts(r.stdout)
    assert counts["train_cord"] == counts["train_tumor"] == 2 and batched(counts, "phantom") == 1  # 8 <= 16
    train = next(b for b in r.stdout.split("\nrule ")[1:] if b.startswith("train_cord:"))
    line = next(ln for ln in train.splitlines() if ln.strip().startswith("resources:"))
    assert "gpu=1" in line and "mem_mb=8000" in line and "runtime=120" in line, line


def test_small_run_generates_cohort_and_qc(tmp_path):
    small = overlay(tmp_path, "synthetic: {subjects: 3, seed: 5, size: small, qc: true}")
    res = tmp_path / "results"
    targets = [str(res / "cohort/cohort.tsv"), str(res / "qc/registration.tsv")]
    targets += [str(res / f"qc/{kind}/sub-{i:03d}_{kind}{'-qc' if kind == 'phantom' else ''}.png")
                for i in (1, 2, 3) for kind in ("phantom", "registration")]
    targets += [str(res / f"preprocess/sub-{i:03d}") for i in (1, 2, 3)]  # one folder per subject
    r = snakemake("--cores", "2", *targets, *small, "--config", *tmp_config(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    cohort = pd.read_csv(tmp_path / "results/cohort/cohort.tsv", sep="\t")
    assert list(cohort["participant_id"]) == ["sub-001", "sub-002", "sub-003"]
    assert all(Path(p).is_file() for p in cohort["t2w"])
    for i in (1, 2, 3):
        assert (tmp_path / f"results/qc/phantom/sub-{i:03d}_phantom-qc.png").stat().st_size > 10_000
        assert (tmp_path / f"results/logs/phantom/sub-{i:03d}.log").read_text().strip()
    assert (tmp_path / "results/benchmarks/phantom/b000.tsv").is_file()
    # preprocessing: registration table, QC figures, resampled inputs on the 1x1x2 mm grid
    reg = pd.read_csv(tmp_path / "results/qc/registration.tsv", sep="\t")
    assert list(reg["subject"]) == ["sub-001", "sub-002", "sub-003"]
    assert set(reg["method"]) <= {"intensity", "intensity-rigid", "discs+intensity", "discs+intensity-rigid",
                                  "discs", "scanner"}
    for i in (1, 2, 3):
        pre = tmp_path / f"results/preprocess/sub-{i:03d}/sub-{i:03d}"
        t2 = nib.load(f"{pre}_res-1x1x2_desc-preproc_T2w.nii.gz")
        assert np.allclose(nib.affines.voxel_sizes(t2.affine), [2, 1, 1])
        for k in ("desc-preproc_T1w", "label-tumor_mask", "label-cord_mask"):
            img = nib.load(f"{pre}_res-1x1x2_{k}.nii.gz")
            assert img.shape == t2.shape and np.allclose(img.affine, t2.affine)
        assert (tmp_path / f"results/qc/registration/sub-{i:03d}_registration.png").stat().st_size > 10_000
    # Nothing to do on a second run.
    r = snakemake("-n", "--cores", "2", *targets, *small, "--config", *tmp_config(tmp_path))
    assert r.returncode == 0 and "Nothing to be done" in r.stdout + r.stderr


TINY_WORKFLOW = ["--configfile", "config/config.yaml", "tests/tiny-workflow.yaml"]


def test_files_read_across_rules_are_declared(tmp_path):
    """Evaluation reads the inference JSON sidecars: they are in the subject's prediction folder, an
    output of `infer`, so a cluster without a shared filesystem stages them and Snakemake plans the
    folder as a target (before, asking for a sidecar was "no rule to produce")."""
    from imsct.phantom.cohort import participants_table, plan_cohort
    from imsct.splits import make_splits, split_table

    split = make_splits(split_table(participants_table(plan_cohort(8, 11))), 1, 0)[0]
    pid = split.loc[split["set"] == "test", "participant_id"].iloc[0]
    folder = f"{tmp_path}/results/predictions/split-00/cascade/{pid}"
    r = snakemake("-n", "--cores", "1", folder, *TINY_WORKFLOW, "--config", *tmp_config(tmp_path))
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert batched(job_counts(r.stdout), "infer") == 1


@pytest.mark.slow
def test_training_rules_run_end_to_end(tiny_workflow_run, tmp_path):
    """The whole tiny workflow (4 subjects, run once for the test session): splits written by the rule
    equal the ones the DAG was built from; both models train per split; inference, evaluation, report."""
    from helpers import TINY_WORKFLOW_4

    from imsct.phantom.cohort import participants_table, plan_cohort
    from imsct.splits import make_splits, split_table

    root = tiny_workflow_run
    run_cfg = ["--config", *tmp_config(root)]
    res = root / "results"
    written = pd.read_csv(res / "splits/split-00.tsv", sep="\t")
    expected = make_splits(split_table(participants_table(plan_cohort(4, 11))), 1, 0)[0]
    assert list(written["set"]) == list(expected["set"])
    for kind in ("cord", "tumor", "single"):
        log = pd.read_csv(res / f"models/split-00/{kind}/log.tsv", sep="\t")
        assert len(log) == 2 and (res / f"models/split-00/{kind}/best.pt").stat().st_size > 1000
    assert "best epoch" in (res / "logs/train/split-00_tumor.log").read_text()
    from imsct.inference.modelfolder import read_model_folder

    meta = read_model_folder(res / "models/split-00/onnx")
    assert meta["split"] == "00" and meta["tumor"]["parity"]["max_abs_diff"] <= 1e-4
    # predictions for the split's test subjects, on their native T2w grids
    for pid in expected.loc[expected["set"] == "test", "participant_id"]:
        t2 = nib.load(root / f"resources/synthetic/{pid}/anat/{pid}_T2w.nii.gz")
        for mode in ("cascade", "single"):
            pred = nib.load(res / f"predictions/split-00/{mode}/{pid}/{pid}_label-wholetumor_mask.nii.gz")
            assert pred.shape == t2.shape and np.array_equal(pred.affine, t2.affine)
    # evaluation: one row per test subject x mode x class, and the tables built from them
    from imsct.classes import CLASSES
    from imsct.evaluation.metrics import METRIC_KEYS

    n_test = int((expected["set"] == "test").sum())
    metrics = pd.read_csv(res / "evaluation/metrics.tsv", sep="\t")
    # modes: cascade, single step, and each with the other class rule (exclusive classes)
    assert set(metrics["mode"]) == {"cascade", "single", "cascade-exclusive", "single-exclusive"}
    assert len(metrics) == n_test * 4 * len(CLASSES) and set(METRIC_KEYS) <= set(metrics.columns)
    assert not metrics.loc[metrics["mode"] == "cascade", "exclusive"].any()
    assert metrics.loc[metrics["mode"] == "cascade-exclusive", "exclusive"].all()
    cs = pd.read_csv(res / "evaluation/cascade_vs_single.tsv", sep="\t", index_col=0)
    assert float(cs.loc["Training time per epoch (s)", "single"]) > 0
    rules = pd.read_csv(res / "evaluation/class_rules.tsv", sep="\t", index_col=0)
    assert {"cascade, independent", "cascade, exclusive"} <= set(rules.columns)
    table4 = pd.read_csv(res / "evaluation/table4.tsv", sep="\t", index_col=0)
    assert list(table4.columns) == list(CLASSES) and "Dice" in table4.index
    assert "Table 4" in (res / "evaluation/summary.md").read_text()
    # per acquisition: the phantom plan's acquisition of every test subject, counted once
    acq = pd.read_csv(res / "evaluation/per_acquisition.tsv", sep="\t", index_col=0)
    generated = pd.read_csv(root / "resources/synthetic/participants.tsv", sep="\t").set_index("participant_id")
    tested = generated["acquisition"][expected.loc[expected["set"] == "test", "participant_id"]]
    assert acq["test cases"].to_dict() == tested.value_counts().to_dict()
    assert set(metrics["acquisition"]) == set(tested)
    # the report: every section, every figure embedded
    from imsct.evaluation.report import SECTIONS

    html = (res / "report/index.html").read_text()
    for section in SECTIONS:
        assert f">{section}</h2>" in html, section
    n_examples = html.count("Fig3-panel")
    assert html.count("data:image/png;base64,") == 3 + n_examples and n_examples >= 1
    assert "src=\"http" not in html  # self-contained
    r = snakemake("--cores", "1", *TINY_WORKFLOW_4, *run_cfg, "--report", str(tmp_path / "report.zip"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "report.zip").stat().st_size > 10000
    # a scheduling-only edit (threads, device, tensor layout, resources) reruns nothing; a recipe edit does
    sched = tmp_path / "scheduling.yaml"
    sched.write_text("training: {threads: 2, device: cpu, memory_format: contiguous,\n"
                     "           resources: {gpu: 1, mem_mb: 9000, runtime: 5}}\n")
    r = snakemake("-n", "--cores", "1", *TINY_WORKFLOW_4, str(sched), *run_cfg)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Nothing to be done" in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("training: {lr: 0.002}\n")
    r = snakemake("-n", "--cores", "1", *TINY_WORKFLOW_4, str(recipe), *run_cfg)
    assert r.returncode == 0 and job_counts(r.stdout).get("train_cord") == 1, (r.stdout + r.stderr)[-3000:]


def test_floors_chosen_on_validation_subjects_reach_the_predictions(tiny_workflow_run, tmp_path):
    """postprocess.tune (the demo's, tumor and cavity) with other settings on the finished tiny run
    (copied): only export and what follows it reruns; each model folder holds the floors chosen on the
    split's validation subject, with their scores, and inference applies them."""
    from helpers import TINY_WORKFLOW_4

    for d in ("results", "resources"):
        shutil.copytree(tiny_workflow_run / d, tmp_path / d)  # copy2: modification times kept
    demo = json.loads((tmp_path / "results/models/split-00/onnx/model.json").read_text())["postprocess"]
    assert {r["class"] for r in demo["tuning"]["scores"]} == {"tumor", "cavity"}  # the demo's classes
    assert demo["min_volume_mm3"]["edema"] == 1000 * config_floor("edema")
    tune = tmp_path / "tune.yaml"
    tune.write_text("postprocess: {tune: {enabled: true, candidates_cm3: [0, 0.001, 0.01], min_gain: 0,\n"
                    "                     classes: [tumor, edema, cavity]}}\n")
    args = ["--cores", "2", *TINY_WORKFLOW_4, str(tune), "--config", *tmp_config(tmp_path)]
    # the copy has no Snakemake metadata (kept in the repository's .snakemake/) to see the params change
    r = snakemake(*args, "--forcerun", "export", "export_single")
    assert r.returncode == 0, r.stderr[-3000:]
    counts = job_counts(r.stdout + r.stderr)
    assert counts.get("export") == 1 and counts.get("export_single") == 1, counts
    assert not any(k.startswith("train") or k.startswith("preprocess") for k in counts), counts
    res = tmp_path / "results"
    split = pd.read_csv(res / "splits/split-00.tsv", sep="\t")
    val = sorted(split.loc[split["set"] == "val", "participant_id"].str.removeprefix("sub-"))
    for folder, mode in (("onnx", "cascade"), ("onnx-single", "single")):
        post = json.loads((res / "models/split-00" / folder / "model.json").read_text())["postprocess"]
        tuning = post["tuning"]
        assert tuning["subjects"] == val and tuning["candidates_cm3"] == [0, 0.001, 0.01]
        scores = pd.DataFrame(tuning["scores"])
        assert set(scores["class"]) == {"tumor", "edema", "cavity"}
        # every candidate and the configured floor scored, one chosen per class, and that one is used
        for cls, rows in scores.groupby("class"):
            assert {0.0, 0.001, 0.01, config_floor(cls)} == set(rows["min_volume_cm3"]), rows
            chosen = rows.loc[rows["chosen"], "min_volume_cm3"]
            assert len(chosen) == 1 and post["min_volume_mm3"][cls] == pytest.approx(1000 * chosen.iloc[0])
        pid = split.loc[split["set"] == "test", "participant_id"].iloc[0]
        sidecar = json.loads((res / f"predictions/split-00/{mode}/{pid}/{pid}_label-edema_mask.json").read_text())
        assert find_key(sidecar, "min_volume_mm3") == post["min_volume_mm3"]
    r = snakemake("-n", *args)
    assert "Nothing to be done" in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]


def config_floor(cls):
    """The demo config's floor of a class, cm3."""
    import yaml

    return yaml.safe_load((REPO / "config/config.yaml").read_text())["postprocess"]["min_volume_cm3"][cls]


def find_key(obj, key):
    """The first value of ``key`` anywhere in a nested JSON object."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            found = find_key(v, key)
            if found is not None:
                return found
    return None


def test_workflow_on_an_existing_bids_dataset(small_cohort, tmp_path):
    target = f"{tmp_path}/results/cohort/cohort.tsv"
    r = snakemake("--cores", "2", target, "--config", *tmp_config(tmp_path), f"bids_dir={small_cohort}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(pd.read_csv(tmp_path / "results/cohort/cohort.tsv", sep="\t")) == 8
    assert list((tmp_path / "results" / ".cache").glob("cohort-*.tsv"))
    # the whole DAG for that dataset: its 8 subjects through preprocessing
    r = snakemake("-n", "--cores", "2", "--config", *tmp_config(tmp_path), f"bids_dir={small_cohort}")
    assert r.returncode == 0 and batched(job_counts(r.stdout), "preprocess") == 2  # 8 subjects by 5
    assert all(re.search(rf"results/preprocess/sub-{i:03d}(,|$)", r.stdout, re.M) for i in range(1, 9))
