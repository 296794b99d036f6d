"""The map of the house (docs/design.md, "Map of the house"): every import goes down a floor.

Read from the source with ``ast``, counting imports inside functions too, so a lazy import
cannot hide a dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "pipeline"

#: Floor of each package or top-level module; an import may only go to a lower floor (or
#: stay inside its own package).
FLOORS: dict[str, int] = {
    # ground floor: records, names, I/O, configuration
    "__init__": 0, "lazy": 0, "errors": 0, "io": 0, "logs": 0, "naming": 0, "device": 0,
    "params": 0, "config": 0, "settings": 0, "cliutil": 0,
    # pure physics and signal code
    "signals": 1, "cell": 1, "hemo": 1,
    "anatomy": 2, "clinical": 2,
    "monodomain": 3,
    "simulate": 4,
    "campaign": 5, "learn": 5,
    # the top: the command line and the workflow-start checks
    "relations": 6, "cli": 6, "__main__": 7,
}
#: Imports between top-level ground-floor modules, in this order only (no loop).
GROUND_ORDER = ["__init__", "lazy", "errors", "io", "logs", "naming", "device", "params", "config",
                "settings", "cliutil"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts).removesuffix(".__init__")


def _unit(module: str) -> str:
    """The package (or top-level module) a dotted module name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict[str, set[str]]:
    """Module -> the pipeline modules it imports (anywhere in the file)."""
    out: dict[str, set[str]] = defaultdict(set)
    for path in sorted(SRC.rglob("*.py")):
        name = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "pipeline":
                    out[name] |= {f"pipeline.{a.name}" for a in node.names}
                elif node.module.startswith("pipeline."):
                    out[name].add(node.module)
            elif isinstance(node, ast.Import):
                out[name] |= {a.name for a in node.names if a.name.startswith("pipeline.")}
    return out


def test_every_package_has_a_floor():
    units = {_unit(_module_name(p)) for p in SRC.rglob("*.py")}
    assert units <= set(FLOORS), sorted(units - set(FLOORS))


def test_imports_go_down_a_floor():
    wrong = []
    for module, targets in _imports().items():
        here = _unit(module)
        for target in targets:
            there = _unit(target)
            if there == "__version__":
                continue
            if there == here:
                continue
            if FLOORS[there] > FLOORS[here] or (FLOORS[there] == FLOORS[here] and (
                    FLOORS[here] != 0 or GROUND_ORDER.index(there) > GROUND_ORDER.index(here))):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports that go up or sideways:\n" + "\n".join(sorted(wrong))


def test_no_import_loop_between_modules():
    graph = _imports()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import loop: " + " -> ".join(stack + [node, nxt]))
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for module in list(graph):
        if module not in state:
            visit(module, [])


@pytest.mark.parametrize("package, forbidden", [
    ("signals", {"monodomain", "cell", "simulate", "learn", "campaign", "anatomy"}),
    ("learn", {"monodomain", "cell", "simulate", "campaign", "anatomy"}),
    ("clinical", {"monodomain", "cell", "simulate", "learn", "campaign"}),
    ("monodomain", {"learn", "hemo", "simulate", "campaign"}),
])
def test_named_boundaries(package, forbidden):
    reached = {_unit(t) for m, ts in _imports().items() if _unit(m) == package for t in ts}
    assert not reached & forbidden, sorted(reached & forbidden)
