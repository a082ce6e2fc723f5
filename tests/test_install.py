"""Installation: the one conda environment."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

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


def test_every_rule_names_the_one_environment_instead_of_an_environment_file(tmp_path):
    """Snakemake builds a rule's environment file elsewhere (.snakemake/conda/), where environment.yml's
    `-e .` would not be this repository: rules name the environment the user created from it."""
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
    assert len(envs) > 10 and "train_cord" in envs and "infer" in envs
    name = yaml.safe_load((REPO / "environment.yml").read_text())["name"]
    assert envs == dict.fromkeys(envs, name)
