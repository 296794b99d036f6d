"""The repository's foundation: config schema and validation, lint, environment spec."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from pipeline import cli
from pipeline.config import load_schema, resolve
from pipeline.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")


def _leaves(schema: dict, path: str = ""):
    """Yield (path, subschema) for every property in the schema, following $defs."""
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}{key}", sub
        yield from _leaves(sub, f"{path}{key}.")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and "$ref" in extra:
        name = extra["$ref"].split("/")[-1]
        yield from _leaves(load_schema()["$defs"][name], f"{path}<name>.")


def test_every_schema_key_has_default_and_description():
    missing = [p for p, sub in _leaves(load_schema())
               if "default" not in sub or "description" not in sub]
    assert not missing, f"schema keys without default or description: {missing}"


def test_defaults_validate_and_fill_every_section():
    config = resolve({})
    for section in ("anatomy", "cells", "simulate", "learn"):
        assert isinstance(config[section], dict) and config[section]


@pytest.mark.parametrize(
    "bad, path, words",
    [
        ({"anatomy": {"resolution_mm": 5}}, "anatomy.resolution_mm", "maximum"),
        ({"anatomy": {"resolution_mm": "fine"}}, "anatomy.resolution_mm", "not of type"),
        ({"anatomy": {"voxels": 3}}, "anatomy", "'voxels' was unexpected"),
        ({"cells": {"celltypes": ["purkinje"]}}, "cells.celltypes.0", "is not one of"),
        ({"seed": -1}, "seed", "minimum"),
        ({"anatomy": {"limb_electrode_radius_mm": "far"}}, "anatomy.limb_electrode_radius_mm",
         "'far' is not one of: a number > 0, 'torso', null"),
        ({"anatomy": {"limb_electrode_radius_mm": 0}}, "anatomy.limb_electrode_radius_mm",
         "0 is not one of: a number > 0"),
    ],
)
def test_bad_config_names_the_key(bad, path, words):
    with pytest.raises(InputError) as info:
        resolve(bad)
    message = str(info.value)
    assert f"'{path}'" in message and words in message


def test_snakemake_rejects_bad_config_before_running(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("anatomy:\n  resolution_mm: 5\n")
    out = subprocess.run([SNAKEMAKE, "-n", "--configfile", str(bad)], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "resolution_mm" in text and "maximum" in text


def test_snakemake_lint_is_clean():
    out = subprocess.run([SNAKEMAKE, "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Lints for" not in out.stdout + out.stderr


def test_conda_env_lists_the_package_dependencies():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~ \[]", d, maxsplit=1)[0].lower() for d in deps}
    env = yaml.safe_load((ROOT / "envs" / "pipeline.yaml").read_text())
    conda = {re.split(r"[<>=! ]", d, maxsplit=1)[0].lower()
             for d in env["dependencies"] if isinstance(d, str)}
    conda = {"torch" if n == "pytorch" else n for n in conda}
    assert names <= conda, f"missing from envs/pipeline.yaml: {sorted(names - conda)}"


def test_cli_lists_every_stage():
    parser = cli.build_parser()
    text = parser.format_help()
    assert "bench" in text
    assert cli.main([]) == 2


def _imported(code: str, prefixes: tuple[str, ...]) -> list[str]:
    """pipeline modules with the given prefixes loaded after running ``code``."""
    probe = code + "\nimport sys\nprint(' '.join(m for m in sys.modules if m.startswith(%r)))" % (
        prefixes,)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


def test_learning_never_imports_the_solver_and_physics_never_imports_learning():
    learn = ("import importlib, pkgutil, pipeline.learn as L\n"
             "for m in pkgutil.iter_modules(L.__path__):\n"
             "    importlib.import_module('pipeline.learn.' + m.name)")
    assert _imported(learn, ("pipeline.monodomain", "pipeline.cell")) == []
    physics = "import pipeline.monodomain.solver, pipeline.simulate.run, pipeline.anatomy.build"
    assert _imported(physics, ("pipeline.learn", "pipeline.hemo")) == []
