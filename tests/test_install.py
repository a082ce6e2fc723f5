"""Installation: what the plain install holds (registration and segmentation, no PyTorch), the extras,
the one conda environment, and the one line a command prints when an optional dependency is missing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _names(requirements) -> set[str]:
    """Distribution names of requirement strings (``imsct[a,b]`` gives the extras a, b as ``imsct[a]``...)."""
    out = set()
    for req in requirements:
        m = re.match(r"^\s*([A-Za-z0-9_.-]+)(?:\[([^\]]*)\])?", req)
        name = m.group(1).lower()
        out |= {f"{name}[{e.strip()}]" for e in m.group(2).split(",")} if m.group(2) else {name}
    return out


def run_cli_without(modules: list[str], argv: list[str]) -> subprocess.CompletedProcess:
    """``imsct <argv>`` in a fresh interpreter where importing ``modules`` fails as it does when they are
    not installed (a meta-path finder ahead of every other raises ModuleNotFoundError for them)."""
    code = f"""
import sys
BLOCKED = {modules!r}

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from imsct.cli import main
sys.exit(main({argv!r}))
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)


def test_plain_install_holds_segmentation_and_training_and_the_workflow_are_extras():
    base = _names(PYPROJECT["dependencies"])
    extras = {k: _names(v) for k, v in PYPROJECT["optional-dependencies"].items()}
    assert {"antspyx", "onnxruntime", "nibabel", "scipy", "connected-components-3d"} <= base
    assert not {"torch", "onnx", "snakemake", "pybids"} & base
    assert {"torch", "onnx"} <= extras["train"] and "snakemake" in extras["workflow"]
    # older install commands keep working: registration and inference are in the plain install now
    assert extras["register"] == extras["infer"] == set()
    assert {f"imsct[{e}]" for e in ("train", "workflow", "slurm", "dev")} <= extras["all"]


def test_each_missing_module_message_names_the_extra_that_installs_it():
    from imsct.cli import EXTRAS

    extras = {k: _names(v) for k, v in PYPROJECT["optional-dependencies"].items()}
    dist = {"torch": "torch", "onnx": "onnx", "snakemake": "snakemake", "bids": "pybids"}
    for module, (_, extra) in EXTRAS.items():
        assert dist[module] in extras[extra], (module, extra)


def test_train_without_torch_says_which_extra_to_install(tmp_path):
    r = run_cli_without(["torch"], ["train", "--model", "cord", "--split", str(tmp_path / "split-00.tsv"),
                                    "--preprocessed", str(tmp_path), "--out", str(tmp_path / "cord")])
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ['error: imsct train needs PyTorch: pip install "imsct[train]"']


def test_segment_with_a_dependency_missing_says_so_in_one_line(tmp_path):
    img = nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 8), np.float32), np.eye(4))
    for name in ("t2.nii.gz", "t1.nii.gz"):
        nib.save(img, tmp_path / name)
    r = run_cli_without(["onnxruntime"], ["segment", "--t2", str(tmp_path / "t2.nii.gz"), "--t1",
                                          str(tmp_path / "t1.nii.gz"), "--model", str(tmp_path / "model"),
                                          "--out", str(tmp_path / "seg")])
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "imsct segment needs the Python module 'onnxruntime'" in lines[0], r.stderr


def test_verbose_keeps_the_traceback_for_a_bug_report(tmp_path):
    r = run_cli_without(["torch"], ["-v", "train", "--model", "cord", "--split", str(tmp_path / "s.tsv"),
                                    "--preprocessed", str(tmp_path), "--out", str(tmp_path / "cord")])
    assert r.returncode != 0 and "Traceback" in r.stderr and "ModuleNotFoundError" in r.stderr


def test_a_missing_module_of_imsct_itself_is_not_blamed_on_the_installation():
    from imsct.cli import missing_module_message

    assert missing_module_message("train", ModuleNotFoundError("x", name="imsct.nothing")) is None
    assert missing_module_message("train", ModuleNotFoundError("x", name="torch.nn")) == (
        'imsct train needs PyTorch: pip install "imsct[train]"')


def _expand(extras: set[str]) -> set[str]:
    """Extras with the ones they include (``all`` = ``imsct[train,workflow,...]``)."""
    deps = PYPROJECT["optional-dependencies"]
    out, todo = set(), list(extras)
    while todo:
        e = todo.pop()
        if e not in out:
            out.add(e)
            todo += [n[len("imsct["):-1] for n in _names(deps[e]) if n.startswith("imsct[")]
    return out


def test_environment_yml_installs_this_package_with_the_extras_the_workflow_needs():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["name"] == "imsct"
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda and "pip" in conda  # pyproject: requires-python >=3.11,<3.12
    assert PYPROJECT["requires-python"] == ">=3.11,<3.12"
    pip = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    assert len(pip) == 1  # one list of dependencies: pyproject.toml's
    m = re.fullmatch(r"-e \.\[([a-z,]+)\]", pip[0])
    assert m, pip
    extras = set(m.group(1).split(","))
    assert extras <= set(PYPROJECT["optional-dependencies"])
    assert {"train", "workflow", "slurm"} <= _expand(extras)


def test_no_rule_declares_a_conda_environment(tmp_path):
    """Snakemake builds a rule's environment file elsewhere (.snakemake/conda/), where environment.yml's
    `-e .` would not be this repository, and a named environment makes every run (even without
    --sdm conda) call a conda binary to hash it: the workflow runs inside the one environment instead."""
    code = f"""
import json
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=Path("Snakefile"), workdir=Path("."),
                      config_settings=ConfigSettings(config={{"results": r"{tmp_path}/results",
                                                             "resources": r"{tmp_path}/resources"}}))
    print(json.dumps({{r.name: r.conda_env and str(r.conda_env) for r in wf._workflow.rules if not r.norun}}))
"""
    pytest.importorskip("snakemake")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    envs = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(envs) > 10 and "train_cord" in envs and "infer_00_cascade_b000" in envs
    assert envs == dict.fromkeys(envs)  # None everywhere
