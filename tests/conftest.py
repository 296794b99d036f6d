"""Test-session hooks: how ``pytest -n N --dist loadgroup`` (pytest-xdist) splits the suite.

Each test module runs whole on one worker, so its module fixtures (anatomies, beats,
clusters) are built once; the modules that share the session fixture ``ci_local_run``
(the CI workflow run locally, about two minutes) form one group, so it runs once. Without
``-n`` the hook only adds marks.
"""

from __future__ import annotations

import pytest

#: Modules that use ``workflow_helpers.ci_local_run`` (one local run of the CI workflow).
CI_RUN_MODULES = frozenset({"test_slurm", "test_workflow_e2e", "test_workflow_campaign"})


@pytest.hookimpl(tryfirst=True)   # before xdist's own hook reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test the xdist group of its module (the CI-run modules share one)."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else item.nodeid
        group = "ci_local_run" if module in CI_RUN_MODULES else module
        item.add_marker(pytest.mark.xdist_group(group))
