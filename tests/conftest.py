"""Shared fixtures: a small synthetic cohort written by the CLI, and the real SCT scans."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCT_DATA = (REPO / ".." / "shared" / "data" / "sct_testing_data").resolve()


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` (and the SLURM run, mostly waiting on the scheduler) first: xdist hands
    the first tests out round-robin, so the long ones start at once on both workers instead of one of
    them finishing alone at the end (the suite's wall time on 2 cores)."""
    items.sort(key=lambda item: not (item.get_closest_marker("slow") or item.get_closest_marker("slurm")))


def pytest_configure(config):
    # Keep ITK/BLAS/torch from oversubscribing the 2-core CI machine.
    for var in ("OMP_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


@pytest.fixture(scope="session")
def sct_data() -> Path:
    if not SCT_DATA.is_dir():
        pytest.fail(f"real test data not found at {SCT_DATA} (expected ../shared beside the repository)")
    return SCT_DATA


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory) -> Path:
    """8 small subjects, seed 11, written through `imsct phantom` (with QC montages)."""
    from imsct.cli import main

    out = tmp_path_factory.mktemp("cohort") / "bids"
    assert main(["phantom", str(out), "--subjects", "8", "--seed", "11", "--size", "small", "--qc", "--jobs", "2"]) == 0
    return out


@pytest.fixture()
def cohort_copy(small_cohort, tmp_path) -> Path:
    """A writable copy of the small cohort, for tests that break it."""
    dst = tmp_path / "bids"
    shutil.copytree(small_cohort, dst)
    return dst


@pytest.fixture(scope="session")
def preprocessed_small(small_cohort, tmp_path_factory) -> dict[str, dict[str, str]]:
    """The small cohort through preprocessing, with the T1w moved by its known (drawn) motion instead
    of registration (registration has its own tests): {subject key: working-grid paths}."""
    from imsct.phantom.known_motion import preprocess_known_motion

    out = tmp_path_factory.mktemp("preprocess")
    return {d.name[4:]: preprocess_known_motion(small_cohort, d.name, out / d.name)
            for d in sorted(small_cohort.glob("sub-*"))}


@pytest.fixture(scope="session")
def tiny_models(preprocessed_small, tmp_path_factory):
    """Cord and tumor models trained for a few epochs on the small cohort (TINY config), once per test
    run: xdist workers share them through the run's base folder (a file lock; the first worker trains,
    the others wait and read), so the tests that use them still spread over the workers."""
    import json
    import time

    from filelock import FileLock
    from helpers import TINY, split_sets

    from imsct.training.jobs import train_cord_model, train_tumor_model

    shared = shared_folder(tmp_path_factory)
    out = shared / "tiny-models"
    done = out / "trained.json"
    with FileLock(str(shared / "tiny-models.lock")):
        if not done.exists():
            train, val = split_sets(preprocessed_small)
            t0 = time.perf_counter()
            train_cord_model(train, val, out / "cord", TINY)
            train_tumor_model(train, val, out / "tumor", TINY, str(out / "cord" / "best.pt"))
            done.write_text(json.dumps({"seconds": time.perf_counter() - t0}))
    read = lambda kind: json.loads((out / kind / "summary.json").read_text())  # noqa: E731
    return out, read("cord"), read("tumor"), json.loads(done.read_text())["seconds"]


def shared_folder(tmp_path_factory) -> Path:
    """A folder common to every xdist worker of this test run (the run's base folder)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def tiny_workflow_run(tmp_path_factory) -> Path:
    """The whole tiny workflow run once locally (``snakemake --cores 2``), shared by the workers: the
    end-to-end test checks it, the SLURM test compares its own run with it. Returns the folder that
    holds ``results/`` and ``resources/``."""
    import subprocess
    import sys

    from filelock import FileLock
    from helpers import TINY_WORKFLOW_4

    shared = shared_folder(tmp_path_factory)
    root = shared / "tiny-workflow"
    done = root / "done"
    failed = root / "failed"  # a failed run fails every test that needs it, once, not once each
    with FileLock(str(shared / "tiny-workflow.lock")):
        if not done.exists() and not failed.exists():
            exe = str(Path(sys.executable).parent / "snakemake")
            root.mkdir(parents=True, exist_ok=True)
            try:
                r = subprocess.run([exe, "--cores", "2", *TINY_WORKFLOW_4, "--config", f"results={root}/results",
                                    f"resources={root}/resources"], cwd=REPO, capture_output=True, text=True,
                                   timeout=1200)
                (done if r.returncode == 0 else failed).write_text(r.stdout if r.returncode == 0 else r.stderr)
            except subprocess.TimeoutExpired:
                failed.write_text("the tiny workflow ran past 1,200 s")
    if failed.exists():
        pytest.fail(f"the tiny workflow run failed: {failed.read_text()[-3000:]}")
    return root


@pytest.fixture(scope="session")
def tiny_model_folder(tiny_models, tmp_path_factory):
    from helpers import TINY

    from imsct.training.export import write_model_folder

    folder = tmp_path_factory.mktemp("onnx")
    write_model_folder(tiny_models[0] / "cord/best.pt", tiny_models[0] / "tumor/best.pt", folder, "00", TINY)
    return folder
