"""How ``make test`` shares the suite between pytest-xdist workers.

The suite is single-threaded for most of its time (measured on 2 cores: 27 min of user
time in a 27 min run), so ``make test`` runs it on one worker per core
(``-n auto --dist loadgroup``). Two rules keep that faster than one process:

- **A module stays on one worker**, so its module fixtures (a built heart, a calibrated
  shard) are built once. Modules marked ``xdist_group`` go together: the workflow tests
  share one session fixture, the CI workflow run (``workflow_helpers.ci_local_run``).
- **The longest modules start first** (:data:`LONGEST_FIRST`, the order of their measured
  times), so that no worker is left with a long module while the other idles. A module
  missing from the list only loses balance, never correctness.

Without xdist (``pytest tests/test_x.py``) nothing here changes how tests run.
"""

from __future__ import annotations

import pytest

#: Modules (or xdist groups) that take minutes, longest first; seconds measured in one
#: process from a fresh clone on a slow 2-core machine (2026-12-05). Everything else
#: follows in collection order.
LONGEST_FIRST = (
    "tests/test_reaction_eikonal.py",   # 340 s: the bounded torso's converged normal beat
    "ci_workflow",                      # 326 s: the CI workflow, locally and through SLURM
    "tests/test_calibration.py",        # 218 s
    "tests/test_monodomain_solver.py",  # 111 s
    "tests/test_heart_pose.py",         # 57 s
    "tests/test_cell.py",               # 47 s
    "tests/test_eikonal.py",            # 47 s
)


def _scope(nodeid: str) -> str:
    """A test's unit of work: its xdist group (``nodeid@group``) or else its module."""
    if "@" in nodeid:
        return nodeid.rsplit("@", 1)[1]
    return nodeid.split("::", 1)[0]


def _rank(scope: str) -> int:
    return LONGEST_FIRST.index(scope) if scope in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Put the longest modules first (a stable sort: the rest keep their order)."""
    def scope(item: pytest.Item) -> str:
        mark = item.get_closest_marker("xdist_group")
        if mark is not None:
            return str(mark.args[0] if mark.args else mark.kwargs.get("name"))
        return item.nodeid.split("::", 1)[0]
    items.sort(key=lambda item: _rank(scope(item)))


def pytest_xdist_make_scheduler(config: pytest.Config, log):  # noqa: ANN201 - xdist's type
    """Schedule whole modules and groups, in collection order (longest first)."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    config.option.loadscopereorder = False      # keep the order above, not by test count
    return ModuleOrGroup(config, log)
