"""How ``make test`` shares the suite between pytest-xdist workers.

The suite is single-threaded for most of its time (measured on 2 cores: 27 min of user
time in a 27 min run), so ``make test`` runs it on one worker per core
(``-n auto --dist loadgroup``). Two rules keep that faster than one process:

- **A module stays on one worker**, so its module fixtures (a built heart, a calibrated
  shard) are built once. Modules marked ``xdist_group`` go together: the workflow tests
  share one session fixture, the CI workflow run (``workflow_helpers.ci_local_run``).
- **The longest modules start first** (:data:`LONGEST_FIRST`, the order of their measured
  times), so that no worker is left with a long module while the other idles. A module
  missing from the list only loses balance, never correctness. A long test that needs no
  module fixture is a unit of its own (its own ``xdist_group``).
- **The workers share the cores**: each worker's torch uses at most cores / workers
  threads, whatever a test or the package asks for (``torch.set_num_threads`` is capped in
  the worker), and its child processes start with ``OMP_NUM_THREADS`` at that cap. Two
  workers of two threads each on two cores ran the threaded tests 2-4x slower (measured:
  the learning fixtures 25 -> 91 s), more than the second worker gained.

Without xdist (``pytest tests/test_x.py``) nothing here changes how tests run.
"""

from __future__ import annotations

import os

import pytest

#: Modules (or xdist groups) that take minutes, longest first; seconds measured in one
#: process from a fresh clone on a slow 2-core machine (2026-12-05). Everything else
#: follows in collection order.
LONGEST_FIRST = (
    "ci_workflow",                      # 326 s: the CI workflow, locally and through SLURM
    "bounded_torso",                    # 170 s: the converged normal beat in a bounded torso
    "tests/test_calibration.py",        # 218 s
    "tests/test_reaction_eikonal.py",   # 170 s without the bounded torso
    "tests/test_monodomain_solver.py",  # 111 s
    "tests/test_heart_pose.py",         # 57 s
    "tests/test_cell.py",               # 47 s
    "tests/test_eikonal.py",            # 47 s
)


def pytest_configure(config: pytest.Config) -> None:
    """In an xdist worker: cap torch's threads at the worker's share of the cores."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if not os.environ.get("PYTEST_XDIST_WORKER") or workers < 2:
        return
    import torch

    cap = max(1, (os.cpu_count() or 1) // workers)
    os.environ["OMP_NUM_THREADS"] = str(cap)
    set_threads = torch.set_num_threads

    def capped(n: int) -> None:
        set_threads(min(int(n), cap))

    set_threads(cap)
    torch.set_num_threads = capped


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
