"""Running the workflow in a temporary folder, for the campaign workflow and SLURM tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from campaign_synth import make_shard
from pipeline.campaign import design
from pipeline.config import resolve
from pipeline.simulate.calibration import calibration_mode

ROOT = Path(__file__).resolve().parents[1]
CI_CONFIG = ROOT / "workflow" / "configs" / "ci.yaml"
BIN = Path(sys.executable).parent
TARGET = "results/dataset/ci.h5"
#: Stages upstream of the dataset; stood in for while one of them has no CLI yet.
UPSTREAM = ("anatomy", "cells", "calibrate", "simulate")
#: Rules allowed to run when the upstream stages are stood in for.
STAND_IN_RULES = ("--allowed-rules", "design", "design_table", "dataset")


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a workflow run: the virtualenv's ``pipeline`` on PATH."""
    value = {**os.environ, **(extra or {})}
    value["PATH"] = f"{BIN}{os.pathsep}{value.get('PATH', '')}"
    value.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    return value


def snakemake(workdir: Path, *args: str, config: Path = CI_CONFIG, timeout: float = 600,
              check: bool = True, extra_env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's Snakefile in ``workdir`` with ``config`` alone.

    Snakemake runs in its own process group; on a timeout the whole group (its jobs too)
    is terminated before the error is raised.
    """
    cmd = [str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--configfile", str(config), "--replace-workflow-config", *args]
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env(extra_env), start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        raise
    out = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{out.stdout[-4000:]}\n{out.stderr[-6000:]}")
    return out


def job_counts(text: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake run as {rule: count} (without 'total')."""
    block = text.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = {}
    for line in block.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def stage_has_cli(name: str) -> bool:
    """Whether ``pipeline <name>`` exists in this checkout (stages land one by one)."""
    from pipeline.cli import build_parser

    return name in build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001


def fake_upstream(workdir: Path, config_path: Path = CI_CONFIG, campaign: str = "ci",
                  n_samples: int = 150) -> list[Path]:
    """Stand-ins for the stages upstream of the dataset, in the exact file layout.

    Empty anatomy, cell and calibration files (only their dates matter to Snakemake), then
    one shard file per designed shard with synthetic contents (written after the design
    tables, so that Snakemake sees them up to date).
    """
    config = yaml.safe_load(config_path.read_text())
    results = workdir / "results"
    for heart in design.campaign_anatomies(config, campaign):
        (results / "anatomy" / heart).mkdir(parents=True, exist_ok=True)
        (results / "anatomy" / heart / "anatomy.h5").touch()
    (results / "cells").mkdir(parents=True, exist_ok=True)
    (results / "cells" / "initial_states.h5").touch()
    if calibration_mode(resolve(config)["simulate"]) is not None:
        for heart in design.campaign_anatomies(config, campaign):
            path = results / "calibration" / campaign / f"{heart}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    time.sleep(1.1)
    paths = []
    for shard in design.shard_names(config, campaign):
        paths.append(make_shard(results / "sims" / campaign / f"{shard}.h5",
                                design.shard_table(config, campaign, shard), n_samples))
    return paths


def real_upstream() -> bool:
    """Whether to run the real stages upstream of the dataset (else stand-ins).

    The default (``PIPELINE_E2E`` unset or ``real``) runs the real stages; set
    ``PIPELINE_E2E=stand-in`` for a quick run of the workflow logic alone.
    """
    return (os.environ.get("PIPELINE_E2E", "real") == "real"
            and all(stage_has_cli(s) for s in UPSTREAM))


_RUNS: dict[str, tuple[Path, str]] = {}


@pytest.fixture(scope="session")
def ci_local_run(tmp_path_factory) -> tuple[Path, str]:
    """The CI config run locally up to its dataset: (workdir, Snakemake's output).

    Run once per test session, whichever test module asks first. With the real upstream
    stages the whole DAG up to the dataset runs; otherwise the design runs (so that its
    metadata exists for the rerun checks), the upstream files are stood in for, and the
    dataset is assembled.
    """
    if "ci" not in _RUNS:
        workdir = tmp_path_factory.mktemp("ci_local")
        log = ""
        if not real_upstream():
            out = snakemake(workdir, "--cores", "2", "--until", "design", "design_table")
            log += out.stdout + out.stderr
            fake_upstream(workdir)
        # small eager simulations run faster on one thread each, two shards side by side
        out = snakemake(workdir, TARGET, "--cores", "2", "--set-threads", "simulate=1",
                        timeout=1800)
        _RUNS["ci"] = (workdir, log + out.stdout + out.stderr)
    return _RUNS["ci"]
