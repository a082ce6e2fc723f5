"""The workflow configuration outside Snakemake (CLI): validated against the same JSON schema, with
its defaults filled in, so `imsct train --config config/config.yaml` means what the workflow means."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

# Packaged with imsct (wheel installs too); the workflow validates against the same file.
SCHEMA = Path(__file__).resolve().parent / "config.schema.yaml"


def _with_defaults(validator_class):
    """jsonschema validator that fills ``default`` values while validating (the recipe from the
    jsonschema documentation; Snakemake's `validate(..., set_default=True)` does the same).

    A missing key gets its default, then validation descends into it, so defaults are filled at every
    depth: the schema gives every key of every section its own default (a section's default is ``{}``
    or a complete section), and a section given in part is completed key by key. Snakemake's recipe
    is the same, so the workflow and the CLI see the same configuration."""
    validate_props = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def check_semantics(cfg: dict) -> None:
    """What a JSON schema cannot say; raises ValueError naming the key."""
    fr = cfg.get("splits", {}).get("fractions")
    if fr is not None and abs(sum(fr) - 1) > 1e-6:
        raise ValueError(f"config: splits/fractions: {list(fr)} must sum to 1 (train, validation, test)")
    training = cfg.get("training", {})
    for name in ("cord", "tumor"):
        model = training.get(name, {})
        if "patch" not in model or "downsamplings" not in model:
            continue
        multiple = 2 ** int(model["downsamplings"])
        bad = [int(p) for p in model["patch"] if int(p) % multiple]
        if bad:
            raise ValueError(f"config: training/{name}/patch: {list(model['patch'])} must be multiples of "
                             f"2**downsamplings = {multiple} (a U-Net with {model['downsamplings']} "
                             f"downsamplings halves every axis that often); {bad} is not")
    n = cfg.get("splits", {}).get("n")
    chosen = training.get("single_step", {}).get("splits", [])
    if n is not None and any(int(s) >= int(n) or int(s) < 0 for s in chosen):
        raise ValueError(f"config: training/single_step/splits: {list(chosen)} must name splits 0..{int(n) - 1} "
                         f"(splits/n is {n})")


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """Load ``path`` (or the schema defaults alone), apply ``overrides``, validate, fill defaults.
    Raises ValueError naming the offending key."""
    cfg = yaml.safe_load(Path(path).read_text()) if path else {}
    cfg = cfg or {}
    for k, v in (overrides or {}).items():
        cfg[k] = v
    schema = yaml.safe_load(SCHEMA.read_text())
    try:
        _with_defaults(jsonschema.Draft202012Validator)(schema).validate(cfg)
    except jsonschema.ValidationError as exc:
        where = "/".join(map(str, exc.absolute_path)) or "(top level)"
        raise ValueError(f"config {path or ''}: {where}: {exc.message}") from None
    check_semantics(cfg)
    return cfg
