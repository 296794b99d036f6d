"""How ``make test`` shares the suite between pytest-xdist workers.

The suite is single-threaded for most of its time (measured on 2 cores: 27 min of user
time in a 27 min run), so ``make test`` runs it on one worker per core
(``-n auto --dist loadscope``; the scheduler is this file's). Three rules keep that faster
than one process:

- **A module stays on one worker**, so its module fixtures (a built heart, a calibrated
  shard) are built once. The modules of a group in :data:`UNITS` go together: the workflow
  tests share one session fixture, the CI workflow run (``workflow_helpers.ci_local_run``),
  which a second worker would run again. A long test that needs no module fixture can be a
  unit of its own (the bounded torso's normal beat).
- **The longest units start first** (:data:`LONGEST_FIRST`, the order of their measured
  times), so that no worker is left with a long unit while the other idles. A unit missing
  from the list only loses balance, never correctness.
- **The workers share the cores**: each worker's torch uses at most cores / workers
  threads, whatever a test or the package asks for (``torch.set_num_threads`` is capped in
  the worker), and its child processes start with ``OMP_NUM_THREADS`` at that cap. Two
  workers of two threads each on two cores ran the threaded tests 2-4x slower (measured:
  the learning fixtures 25 -> 91 s), more than the second worker gained.

Without xdist (``pytest tests/test_x.py``) only the order changes (the longest units
first); nothing else here does.

The units are read from node ids, not from ``xdist_group`` marks: xdist's ``loadgroup``
tags a test's node id with its group, which pytest 9.2 no longer lets a plugin do (the id is
a read-only property), so under pytest 9.2 and xdist 3.8 groups were split between workers
and the CI workflow ran twice (measured: 144 s and 132 s of fixture setup, one per worker).
"""

from __future__ import annotations

import os

import pytest

#: Units of work bigger or smaller than a module: a unit's name and the node-id prefixes
#: (a module's path, or a test's id) that belong to it.
UNITS = {
    "ci_workflow": ("tests/test_slurm.py", "tests/test_workflow_campaign.py",
                    "tests/test_workflow_e2e.py"),
    "bounded_torso": ("tests/test_reaction_eikonal.py::"
                      "test_the_converged_normal_beat_in_a_bounded_torso_is_normal_by_every"
                      "_criterion",),
}

#: Units that take minutes, longest first; seconds measured in one
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
    """A test's unit of work: its group in :data:`UNITS`, or else its module."""
    for name, prefixes in UNITS.items():
        if any(nodeid == p or nodeid.startswith((p + "::", p + "[")) for p in prefixes):
            return name
    return nodeid.split("::", 1)[0]


def _rank(scope: str) -> int:
    return LONGEST_FIRST.index(scope) if scope in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Put the longest units first (a stable sort: the rest keep their order)."""
    items.sort(key=lambda item: _rank(_scope(item.nodeid)))


def pytest_xdist_make_scheduler(config: pytest.Config, log):  # noqa: ANN201 - xdist's type
    """Schedule whole units (:func:`_scope`), in collection order (longest first)."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    config.option.loadscopereorder = False      # keep the order above, not by test count
    return ModuleOrGroup(config, log)
