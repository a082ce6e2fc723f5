"""The configuration: a section given in part is completed from the schema's defaults, at every depth,
identically by the CLI (`load_config`) and by the workflow (Snakemake's `validate`)."""

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


@pytest.mark.parametrize("partial", [{}, *PARTIAL, {"inputs": {"t1w": {"suffix": "T1w"}}}],
                         ids=lambda p: yaml.safe_dump(p, default_flow_style=True).strip())
def test_the_workflow_fills_the_same_defaults(partial):
    """common.smk validates with Snakemake's `validate(config, schema, set_default=True)`."""
    validate = pytest.importorskip("snakemake.utils").validate
    cfg = copy.deepcopy(partial)
    validate(cfg, str(SCHEMA), set_default=True)
    assert cfg == load_config(overrides=copy.deepcopy(partial))


def test_unknown_nested_key_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"training/cord: Additional properties .*'depth' was unexpected"):
        load_config(overrides={"training": {"cord": {"depth": 3}}})
