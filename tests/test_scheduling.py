"""How ``make test`` shares the suite between pytest-xdist workers (tests/conftest.py).

The units are named by path and test name, so a renamed module or test would silently fall
out of its unit (the CI workflow would then run once per worker). These tests keep the
table and the suite in step.
"""

from __future__ import annotations

import ast
from pathlib import Path

import conftest

ROOT = Path(__file__).resolve().parents[1]


def _test_names(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_every_unit_names_a_module_or_test_that_exists():
    for unit, prefixes in conftest.UNITS.items():
        for prefix in prefixes:
            path, _, test = prefix.partition("::")
            assert (ROOT / path).is_file(), f"UNITS[{unit!r}]: no module {path}"
            if test:
                assert test in _test_names(ROOT / path), f"UNITS[{unit!r}]: no test {prefix}"


def test_the_longest_first_list_names_units_or_modules_that_exist():
    for scope in conftest.LONGEST_FIRST:
        assert scope in conftest.UNITS or (ROOT / scope).is_file(), scope


def test_the_ci_workflow_modules_are_one_unit_and_other_modules_their_own():
    scope = conftest._scope
    ids = ["tests/test_slurm.py::test_ci_workflow_through_slurm",
           "tests/test_workflow_campaign.py::test_forcerun_and_until[args0-expected0]",
           "tests/test_workflow_e2e.py::test_patient_rules_through_the_workflow"]
    assert {scope(i) for i in ids} == {"ci_workflow"}
    torso = conftest.UNITS["bounded_torso"][0]
    assert scope(torso) == "bounded_torso"
    # the rest of its module stays the module's unit, and a longer name is not a prefix match
    assert scope("tests/test_reaction_eikonal.py::test_the_demo_parametric_heart_beats_normally"
                 ) == "tests/test_reaction_eikonal.py"
    assert scope(torso + "_too") == "tests/test_reaction_eikonal.py"
    assert scope("tests/test_cell.py::test_matches_reference_at_dt_001[0]") == "tests/test_cell.py"
