"""The ``pipeline`` command line: one subcommand per stage.

Each stage module listed in :data:`STAGE_MODULES` exposes ``register(sub, bench)``,
which adds its sub-parsers to ``sub`` (top-level subcommands) and, optionally, to
``bench`` (``pipeline bench <name>``). Every parser sets ``func`` to a callable
``func(args) -> int``. Shared options come from :mod:`pipeline.cliutil` (stage CLIs
never import this module). Heavy imports (torch, pyvista) happen inside ``func`` so that
``pipeline --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from pipeline import __version__
from pipeline.cliutil import add_common  # noqa: F401  (re-exported: pipeline.cli.add_common)
from pipeline.errors import PipelineError
from pipeline.logs import FILE_ONLY, setup_logging

#: Modules that contribute subcommands, in the order they appear in ``--help``.
STAGE_MODULES: list[str] = [
    "pipeline.anatomy.cli",
    "pipeline.cell.cli",
    "pipeline.monodomain.cli",
    "pipeline.simulate.cli",
    "pipeline.campaign.cli",
    "pipeline.learn.cli",
    "pipeline.clinical.cli",
    "pipeline.hemo.cli",
]

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser from :data:`STAGE_MODULES`."""
    parser = argparse.ArgumentParser(
        prog="pipeline",
        description="Cardiac electrical imaging: simulate hearts, record ECGs, learn the inverse.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench_parser = sub.add_parser("bench", help="benchmarks that print figures")
    bench = bench_parser.add_subparsers(dest="bench", metavar="BENCH")
    for name in STAGE_MODULES:
        importlib.import_module(name).register(sub, bench)   # a missing stage fails loudly
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    setup_logging(getattr(args, "log", None), getattr(args, "verbose", False))
    try:
        return int(func(args) or 0)
    except PipelineError as exc:
        log.error("%s", exc, extra=FILE_ONLY)   # the log file; stderr gets one line:
        print(f"error: {exc}", file=sys.stderr)
        return 1
