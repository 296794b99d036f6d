"""The workflow's configuration schema, used by the CLI as Snakemake uses it.

The schema (``pipeline/schemas/config.schema.yaml``, package data, JSON Schema draft
2020-12; ``workflow/schemas/config.schema.yaml`` is a link to it) holds every key's
default. :func:`resolve` validates a (partial) config and fills defaults,
raising :class:`~pipeline.errors.InputError` with the dotted path of the offending key.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pipeline.errors import InputError

#: The schema's resource name inside the package.
SCHEMA_RESOURCE = "schemas/config.schema.yaml"


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The configuration schema (package data) as a dict."""
    return yaml.safe_load(resources.files("pipeline").joinpath(SCHEMA_RESOURCE).read_text())


def _fill_defaults(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> Any:
    if "$ref" in schema:
        ref = schema["$ref"]
        node: Any = root
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    if isinstance(value, dict) and schema.get("type") == "object":
        for key, sub in schema.get("properties", {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = _fill_defaults(value[key], sub, root)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in value:
                if key not in schema.get("properties", {}):
                    value[key] = _fill_defaults(value[key], extra, root)
    return value


def _describe(schema: dict[str, Any]) -> str:
    """A short reading of one alternative of a ``oneOf`` (e.g. "a number > 0", "'torso'")."""
    if "enum" in schema:
        return " or ".join(repr(v) for v in schema["enum"])
    kind = schema.get("type", "any value")
    text = "null" if kind == "null" else f"a {kind}" if isinstance(kind, str) else " or ".join(kind)
    for key, op in (("exclusiveMinimum", ">"), ("minimum", ">="), ("exclusiveMaximum", "<"),
                    ("maximum", "<=")):
        if key in schema:
            text += f" {op} {schema[key]}"
    return text


def resolve(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate ``config`` against the schema and return a copy with every default set.

    Raises
    ------
    InputError
        Naming the key's dotted path, the value and what was expected.
    """
    schema = load_schema()
    value = _fill_defaults(copy.deepcopy(config or {}), schema, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors:
            path = ".".join(str(p) for p in err.absolute_path) or "<top level>"
            message = err.message
            if err.validator in ("oneOf", "anyOf"):
                message = (f"{err.instance!r} is not one of: "
                           + ", ".join(_describe(sub) for sub in err.validator_value))
            lines.append(f"config key '{path}': {message}")
        raise InputError("invalid configuration:\n  " + "\n  ".join(lines))
    return value


def load(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file and :func:`resolve` it; errors name the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read config file {path}: {exc}") from exc
    try:
        return resolve(raw)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc


def section(settings: dict[str, Any] | None, name: str) -> tuple[dict[str, Any], int]:
    """Resolve a CLI ``--settings`` mapping and return ``(config[name], seed)``."""
    full = resolve(settings or {})
    return full[name], int(full["seed"])


#: Run settings of each section: how a job runs, not what it computes. The workflow passes
#: them as command-line options outside a rule's ``params``, so changing one (say
#: ``simulate.compile``) does not rerun finished jobs; every other key is science.
RUN_KEYS: dict[str, tuple[str, ...]] = {
    "cells": ("compile",),
    "simulate": ("device", "compile", "batch_size", "dtype", "steps_per_call"),
    "learn": ("device",),
}


#: Workflow keys of each section: which jobs exist (the networks to train, the campaign
#: whose dataset they read, an input file), not how one job computes. Left out of a rule's
#: settings like the run keys, so that adding a network to ``learn.networks`` reruns no
#: network already trained.
WORKFLOW_KEYS: dict[str, tuple[str, ...]] = {
    "learn": ("networks", "campaign"),
}


def science_settings(config: dict[str, Any], *sections: str) -> dict[str, Any]:
    """``{seed, section: ...}`` of ``config`` without the sections' :data:`RUN_KEYS` and
    :data:`WORKFLOW_KEYS`."""
    out: dict[str, Any] = {"seed": config["seed"]}
    for name in sections:
        skip = RUN_KEYS.get(name, ()) + WORKFLOW_KEYS.get(name, ())
        out[name] = {k: v for k, v in config[name].items() if k not in skip}
    return out


def run_options(config: dict[str, Any], section: str) -> list[str]:
    """The section's :data:`RUN_KEYS` as CLI options: ``--batch-size 8``, ``--no-compile``."""
    options: list[str] = []
    for key in RUN_KEYS[section]:
        value, flag = config[section][key], "--" + key.replace("_", "-")
        if isinstance(value, bool):
            options.append(flag if value else f"--no-{flag[2:]}")
        else:
            options += [flag, str(value)]
    return options
