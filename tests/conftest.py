"""Shared fixtures: a small synthetic cohort written by the CLI, and the real SCT scans."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCT_DATA = (REPO / ".." / "shared" / "data" / "sct_testing_data").resolve()


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
