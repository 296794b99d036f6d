"""The CI workflow through a real single-node SLURM with the repository's cluster profile.

The profile ``workflow/profiles/slurm/config.yaml`` is used with only what this node
cannot give lowered (no GPU, little memory, short status intervals). The anatomy, cell
and calibration files of the local CI run are reused, and the CI campaign's simulation
shards (the cluster's GPU jobs) are asked for, so they run again through sbatch; with
stand-ins for the upstream stages, the dataset is asked for and goes through sbatch
instead. Every such job's SLURM id (from Snakemake's log) is checked with ``scontrol``
(rule name in the job comment, COMPLETED) and in slurmctld's job completion log
(accounting, hence sacct, is off). The two runs of the CI config, local and through
SLURM, must give identical arrays. (The dataset is not asked for after the shards: the
executor plugin backs off by 10 s per status check, so one more sbatch job costs about
half a minute of waiting, and the dataset of identical shards is the local run's.)
"""

from __future__ import annotations

import re
import shutil

import h5py
import numpy as np
import pytest
import yaml

import slurm_cluster
from workflow_helpers import (ROOT, STAND_IN_RULES, TARGET, ci_local_run,  # noqa: F401
                              fake_upstream, real_upstream, snakemake)

# one xdist worker runs all the modules that share the CI workflow run (tests/conftest.py)
pytestmark = pytest.mark.slow
SHARD_ARRAYS = ("ecg", "electrodes", "vm", "activation_ms", "activation_label_ms", "apd90_ms",
                "params/sim_id", "params/sigma_t", "params/seed")
ARRAYS = ("ecg", "electrodes", "vm", "activation_ms", "activation_label_ms", "apd90_ms",
          "params/sim_id", "params/sigma_l", "params/seed", "split/train", "split/val",
          "split/test")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = slurm_cluster.ensure_installed()
    if why:
        pytest.skip(why)
    running = slurm_cluster.start(tmp_path_factory.mktemp("slurm"), cpus=2)
    yield running
    running.stop()


def _profile(folder, cpus: int = 2):
    """The repository's SLURM profile, lowered to what the test node has."""
    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    for resources in profile["set-resources"].values():
        resources.update(gpu=0, mem_mb=min(resources.get("mem_mb", 1000), 2000), runtime=30)
    profile["set-threads"] = {k: min(v, cpus) for k, v in profile["set-threads"].items()}
    # as in the local CI run: the two small eager shards, one thread each, side by side
    profile["set-threads"]["simulate"] = 1
    profile["default-resources"]["mem_mb"] = 1000
    profile.update({"slurm-status-command": "squeue", "jobs": 4, "latency-wait": 5,
                    "slurm-init-seconds-before-status-checks": 1,
                    "seconds-between-status-checks": 2, "retries": 0,
                    "slurm-logdir": str(folder / "slurm-logs")})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def test_ci_workflow_through_slurm(cluster, ci_local_run, tmp_path):
    local_dir, _ = ci_local_run
    workdir = tmp_path / "ci_slurm"
    args = ["--profile", str(_profile(tmp_path / "profile"))]
    if real_upstream():
        for stage in ("anatomy", "cells", "calibration"):
            shutil.copytree(local_dir / "results" / stage, workdir / "results" / stage)
        shards = sorted(p.relative_to(local_dir).as_posix()
                        for p in (local_dir / "results" / "sims").rglob("*.h5"))
        assert len(shards) == 2, shards
        args += shards
        expected = {"simulate"}
    else:
        fake_upstream(workdir)
        args = [TARGET, *args, *STAND_IN_RULES]   # --allowed-rules takes every word after it
        shards, expected = [], {"dataset"}
    out = snakemake(workdir, *args, extra_env=cluster.env, timeout=1800)
    log = out.stdout + out.stderr
    submitted = dict(re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) "
                                r"\(log: [^)]*/rule_(\w+?)/", log))
    assert set(submitted.values()) == expected, log[-3000:]
    assert "localrule design" in log  # the design (or its table) runs on the submit host
    completion = cluster.log("jobcomp.log")
    for jobid, rule in submitted.items():
        info = cluster.run("scontrol", "show", "job", jobid)
        assert f"Comment=rule_{rule}" in info and "JobState=COMPLETED" in info, info
        assert re.search(rf"JobId={jobid} .*JobState=COMPLETED", completion)
    assert "_slurm_rpc_submit_batch_job" in cluster.log("slurmctld.log")
    for path, names in ([(p, SHARD_ARRAYS) for p in shards] or [(TARGET, ARRAYS)]):
        with h5py.File(local_dir / path, "r") as a, h5py.File(workdir / path, "r") as b:
            for name in names:
                np.testing.assert_array_equal(a[name][()], b[name][()],
                                              err_msg=f"{path}: {name}")
