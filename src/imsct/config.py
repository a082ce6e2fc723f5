"""The workflow configuration outside Snakemake (CLI): validated against the same JSON schema, with
its defaults filled in, so `imsct train --config config/config.yaml` means what the workflow means."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

# Packaged with imsct (wheel installs too); the workflow validates against the same file.
SCHEMA = Path(__file__).resolve().parent / "config.schema.yaml"
# libyaml where PyYAML has it (the same result; the schema is read at every parse of the workflow and
# the pure-Python loader is the slower one).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _with_defaults(validator_class):
    """jsonschema validator that fills ``default`` values while validating (the recipe from the
    jsonschema documentation; Snakemake's `validate(..., set_default=True)` does the same).

    A missing key gets its default, then validation descends into it, so defaults are filled at every
    depth: the schema gives every key of every section its own default (a section's default is ``{}``
    or a complete section), and a section given in part is completed key by key. Snakemake's recipe
    is the same (the workflow uses this one, through :func:`validate_config`)."""
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


def validate_config(cfg: dict, source: str | Path | None = None) -> dict:
    """Validate ``cfg`` in place against the schema, filling every missing key with its default at every
    depth, then :func:`check_semantics`. Raises ValueError naming the offending key (and ``source``).
    The CLI (:func:`load_config`) and the workflow (common.smk) both validate with it."""
    schema = yaml.load(SCHEMA.read_text(), Loader=_YAML_LOADER)
    try:
        _with_defaults(jsonschema.Draft202012Validator)(schema).validate(cfg)
    except jsonschema.ValidationError as exc:
        where = "/".join(map(str, exc.absolute_path)) or "(top level)"
        raise ValueError(f"config{f' {source}' if source else ''}: {where}: {exc.message}") from None
    check_semantics(cfg)
    return cfg


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """Load ``path`` (or the schema defaults alone), apply ``overrides``, validate, fill defaults.
    Raises ValueError naming the offending key."""
    try:
        cfg = yaml.safe_load(Path(path).read_text()) if path else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(f"config {path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    cfg = cfg or {}
    for k, v in (overrides or {}).items():
        cfg[k] = v
    return validate_config(cfg, path)


# What decides where and how fast a job runs, or which splits train the baseline, not what a model
# learns: the workflow leaves these out of the rules' params so editing them reruns nothing.
SCHEDULING_KEYS = ("threads", "device", "memory_format", "resources")


def training_recipe(training: dict, kind: str | None = None) -> dict:
    """The ``training`` config section without :data:`SCHEDULING_KEYS` (nor the list of splits that
    train the single-step baseline): what a model depends on. With ``kind`` (cord, tumor, single),
    only what that model depends on: the cord model ignores the tumor section, only the single-step
    model reads ``single_step``."""
    import copy

    recipe = {k: copy.deepcopy(v) for k, v in training.items() if k not in SCHEDULING_KEYS}
    if isinstance(recipe.get("single_step"), dict):
        recipe["single_step"].pop("splits", None)
    augment = recipe.get("augment")
    if isinstance(augment, dict) and not augment.get("mirror", True):
        del augment["mirror"]  # added later, empty by default: earlier results keep their params
    if kind in ("cord", "tumor"):
        recipe.pop("single_step", None)
    if kind == "cord":
        recipe.pop("tumor", None)
    return recipe
