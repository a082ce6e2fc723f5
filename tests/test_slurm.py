"""The workflow through a real SLURM (`--profile profiles/slurm` layered with tests/slurm/profile):
every job goes through sbatch, and the results equal a local run's.

Needs the one-node cluster of tests/slurm/start-local-slurm.sh (`.ci/run` starts it when it runs as
root); skipped elsewhere, unless IMSCT_REQUIRE_SLURM=1 makes a missing cluster a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

pytestmark = pytest.mark.slurm


def _cluster_up() -> str | None:
    """None when a SLURM node takes jobs, else why not."""
    if not shutil.which("sinfo") or not shutil.which("sbatch"):
        return "SLURM is not installed (run tests/slurm/start-local-slurm.sh as root)"
    r = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True)
    if r.returncode != 0 or not re.search(r"idle|mixed|allocated", r.stdout):
        return f"no SLURM node is up (sinfo: {(r.stdout + r.stderr).strip()[:200]})"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')"
    return None


@pytest.fixture(scope="module")
def cluster():
    why = _cluster_up()
    if why:
        if os.environ.get("IMSCT_REQUIRE_SLURM") == "1":
            pytest.fail(why)
        pytest.skip(why)


def _run(args, timeout):
    # SIGINT, not SIGTERM: Snakemake then cancels its SLURM jobs and exits (see the SLURM notes)
    return subprocess.run(["timeout", "-s", "INT", "-k", "30", str(timeout), SNAKEMAKE, *args], cwd=REPO,
                          capture_output=True, text=True)


def _arrays_equal(a: Path, b: Path) -> bool:
    x, y = nib.load(a), nib.load(b)
    return np.array_equal(x.affine, y.affine) and np.array_equal(np.asanyarray(x.dataobj), np.asanyarray(y.dataobj))


def test_workflow_runs_through_slurm_like_locally(cluster, request, tmp_path):
    slurm = tmp_path / "slurm"
    cfg = lambda d: ["--config", f"results={d}/results", f"resources={d}/resources"]  # noqa: E731
    r = _run(["--profile", "profiles/slurm", "--workflow-profile", "tests/slurm/profile",
              "--slurm-logdir", str(slurm / "slurm-logs"), "--slurm-keep-successful-logs", *cfg(slurm)], 1500)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    # every job (all but the target rule `all`) was submitted with sbatch and got a SLURM job id
    submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", out)
    n_jobs = int(re.search(r"^total\s+(\d+)", out, re.M).group(1)) - 1
    assert len(submitted) == n_jobs >= 10, out[-3000:]
    # short per-subject steps go in batches: one sbatch per batch, logs still per subject
    assert len(list((slurm / "results/logs/preprocess").glob("sub-*.log"))) == 4
    assert len({j for _, j in submitted}) == n_jobs  # distinct SLURM jobs
    logs = list((slurm / "slurm-logs").rglob("*.log"))
    assert len(logs) == n_jobs
    assert any("train_cord" in str(p) for p in logs)

    # the local run of the same config (tests/slurm/profile layers the same files), shared with the
    # end-to-end test; asked for only now, so that another worker may run it while SLURM works
    import yaml
    from helpers import TINY_WORKFLOW_4

    profile = yaml.safe_load((REPO / "tests/slurm/profile/config.yaml").read_text())
    assert profile["configfile"] == TINY_WORKFLOW_4[1:]  # the two runs have one config
    local = request.getfixturevalue("tiny_workflow_run")
    a, b = slurm / "results", local / "results"
    assert (a / "splits/split-00.tsv").read_text() == (b / "splits/split-00.tsv").read_text()
    reg_a = pd.read_csv(a / "qc/registration.tsv", sep="\t").drop(columns="seconds")
    reg_b = pd.read_csv(b / "qc/registration.tsv", sep="\t").drop(columns="seconds")
    pd.testing.assert_frame_equal(reg_a, reg_b)
    for f in sorted(b.glob("preprocess/sub-*/*_res-1x1x2_*.nii.gz")):
        assert _arrays_equal(f, a / f.relative_to(b)), f.name
    preds = sorted(b.glob("predictions/split-00/*/*/*_mask.nii.gz"))
    assert preds and all(_arrays_equal(f, a / f.relative_to(b)) for f in preds)
    times = [c for c in pd.read_csv(b / "evaluation/metrics.tsv", sep="\t").columns if c == "seconds"]
    ma = pd.read_csv(a / "evaluation/metrics.tsv", sep="\t").drop(columns=times)
    mb = pd.read_csv(b / "evaluation/metrics.tsv", sep="\t").drop(columns=times)
    pd.testing.assert_frame_equal(ma, mb)
    assert json.loads((a / "models/split-00/onnx/model.json").read_text())["split"] == "00"
    assert (a / "report/index.html").stat().st_size > 10000
