"""The configuration: a section given in part is completed from the schema's defaults, at every depth
(the CLI's `load_config` and the workflow's common.smk both validate with `validate_config`)."""

from __future__ import annotations

import copy

import pytest
import yaml

from imsct.config import SCHEMA, load_config

# Partial sections, with the keys they give (everything else must come from the defaults).
PARTIAL = [
    {"training": {"cord": {"base_filters": 4}}},
    {"training": {"resources": {"gpu": 1}}},
    {"training": {"tumor": {"safety_factor": {"si": 1.5}}, "augment": {"scale": 0.2}}},
    {"postprocess": {"min_volume_cm3": {"tumor": 0.1}}},
    {"inputs": {"labels": {"tumor": "{t2w_stem}_seg-tumor.nii.gz"}}},
    {"preprocess": {"registration": {"seed": 7}}},
]


def _merged(default, given):
    """``default`` with ``given`` written over it, key by key at every depth."""
    if not isinstance(given, dict):
        return given
    out = copy.deepcopy(default)
    for k, v in given.items():
        out[k] = _merged(default.get(k, {}), v)
    return out


def test_schema_gives_every_key_a_default():
    """What makes deep defaults work: every key of every section has its own default."""
    missing = []

    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            if "default" not in sub:
                missing.append(f"{path}{key}")
            if sub.get("required"):
                missing.append(f"{path}{key} (required keys)")
            walk(sub, f"{path}{key}/")

    walk(yaml.safe_load(SCHEMA.read_text()), "")
    assert not missing


@pytest.mark.parametrize("partial", PARTIAL, ids=lambda p: yaml.safe_dump(p, default_flow_style=True).strip())
def test_partial_sections_are_completed_from_the_defaults(partial):
    defaults = load_config()
    cfg = load_config(overrides=copy.deepcopy(partial))
    assert cfg == _merged(defaults, partial)


def test_partial_training_sections_build_the_training_configurations():
    """The issue: a partial `training` section loaded, then the training job raised KeyError."""
    pytest.importorskip("torch")
    from imsct.crops import safety_to_array
    from imsct.training.jobs import _config

    cfg = load_config(overrides={"training": {"cord": {"base_filters": 4}, "tumor": {"safety_factor": {"si": 1.5}},
                                              "resources": {"gpu": 1}}})["training"]
    assert _config("cord", cfg["cord"], cfg).base_filters == 4
    assert _config("tumor", cfg["tumor"], cfg).base_filters == 16
    assert list(safety_to_array(cfg["tumor"]["safety_factor"])) == [1.0, 1.2, 1.5]  # rl, ap, si
    assert cfg["resources"] == {"gpu": 1, "mem_mb": 8000, "runtime": 120}


def test_image_spec_without_entities_matches_any():
    """An image given without `entities` has none to match (as before); without the image, its defaults."""
    from imsct.bids import Naming

    cfg = load_config(overrides={"inputs": {"t1w": {"suffix": "T1w"}}})["inputs"]
    assert cfg["t1w"] == {"suffix": "T1w", "entities": {}}
    assert cfg["t2w"] == {"suffix": "T2w", "entities": {}}
    assert Naming.from_config(cfg).t1w.entities == {}
    assert load_config()["inputs"]["t1w"] == {"suffix": "T1w", "entities": {"ce": "gad"}}
    assert load_config(overrides={"inputs": {"t2w": {"entities": {"acq": "sag"}}}})["inputs"]["t2w"] == {
        "suffix": "T2w", "entities": {"acq": "sag"}}


def test_unknown_nested_key_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"training/cord: Additional properties .*'depth' was unexpected"):
        load_config(overrides={"training": {"cord": {"depth": 3}}})


def test_cli_naming_from_a_partial_inputs_section(tmp_path):
    """`imsct phantom --config` with an image given without its suffix (the default, T1w, fills it)."""
    from imsct.cli import main

    cfg = tmp_path / "naming.yaml"
    cfg.write_text("inputs: {t1w: {entities: {acq: gad}}}\n")
    assert main(["phantom", str(tmp_path / "bids"), "--subjects", "1", "--size", "small", "--config", str(cfg)]) == 0
    assert (tmp_path / "bids/sub-001/anat/sub-001_acq-gad_T1w.nii.gz").is_file()


def test_a_config_that_is_not_yaml_is_one_line_naming_the_file(tmp_path):
    import subprocess
    import sys

    cfg = tmp_path / "broken.yaml"
    cfg.write_text("training: {cord: [\n")
    r = subprocess.run([sys.executable, "-m", "imsct.cli", "train", "--model", "cord", "--split", "s.tsv",
                        "--preprocessed", str(tmp_path), "--out", str(tmp_path / "m"), "--config", str(cfg)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"error: config {cfg}: not valid YAML (line 2, column 1): "
                                             "expected the node content, but found '<stream end>'"]


def test_training_recipe_holds_what_each_model_depends_on():
    """Rules pass the recipe as params: scheduling keys never, the single-step settings only to the
    single-step model, the tumor section not to the cord model."""
    from imsct.config import load_config, training_recipe

    training = load_config(overrides={"training": {"single_step": {"splits": [0], "max_epochs": 3}}})["training"]
    full = training_recipe(training)
    assert "memory_format" in training and not {"threads", "device", "memory_format", "resources"} & set(full)
    assert full["single_step"] == {"max_epochs": 3}  # which splits train it is scheduling
    assert "single_step" not in training_recipe(training, "tumor") and "tumor" in training_recipe(training, "tumor")
    cord = training_recipe(training, "cord")
    assert "tumor" not in cord and "single_step" not in cord and cord["cord"] == training["cord"]
    assert training_recipe(training, "single")["single_step"] == {"max_epochs": 3}
    # mirroring came later: empty by default and then left out, so earlier results keep their params
    assert training["augment"]["mirror"] == [] and "mirror" not in full["augment"]
    mirrored = load_config(overrides={"training": {"augment": {"mirror": ["ap"]}}})["training"]
    assert training_recipe(mirrored, "cord")["augment"]["mirror"] == ["ap"] and "mirror" in training["augment"]
