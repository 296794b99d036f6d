"""A real single-node SLURM cluster on localhost for the tests: munged, slurmctld, slurmd.

Everything lives in one temporary folder (munge key and socket, slurm.conf, state, logs);
nothing under /etc or /run is touched. The daemons run in the foreground as child
processes and are stopped by their process ids. Packages come from apt (``slurm-wlm``,
``munge``) when missing and the test runs as root.

One workaround: the Snakemake SLURM job-step plugin drops every ``SLURM_*`` variable,
``SLURM_CONF`` included, before calling ``srun`` inside a job, so with a configuration
outside ``/etc/slurm`` the inner ``srun`` finds none. A two-line ``srun`` wrapper that
sets ``SLURM_CONF`` sits first on ``PATH`` (clusters with ``/etc/slurm/slurm.conf`` need
nothing of the kind).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def _sbin(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name,)
                                       if p.exists()), None)


def ensure_installed() -> str | None:
    """Install slurm-wlm and munge with apt-get if missing; returns why not, or None."""
    if all(_sbin(d) for d in DAEMONS) and shutil.which("sbatch"):
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "slurm-wlm/munge missing and apt-get unavailable (needs root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"]
    if subprocess.run(cmd, env=env, capture_output=True, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=900)
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            return f"apt-get install slurm-wlm munge failed: {out.stderr[-500:]}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 4000


@dataclass
class Cluster:
    """A running cluster: its folder, environment and daemon processes."""

    root: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    def run(self, *cmd: str) -> str:
        """Run a SLURM client command against this cluster; its stdout."""
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True,
                              timeout=60, check=True).stdout

    def log(self, name: str) -> str:
        path = self.root / name
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop the daemons this cluster started, by their process ids, newest first."""
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                os.kill(proc.pid, 15)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, 9)
                    proc.wait(timeout=5)


def start(root: Path, cpus: int | None = None) -> Cluster:
    """Start munged, slurmctld and slurmd under ``root``; wait until the node is idle."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("munge", "state", "spool", "bin"):
        (root / sub).mkdir(exist_ok=True)
    os.chmod(root / "munge", 0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o600)
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "root")
    host = socket.gethostname().split(".")[0]
    cpus = cpus or os.cpu_count() or 2
    conf = root / "slurm.conf"
    conf.write_text(f"""ClusterName=pipelinetest
SlurmctldHost={host}(127.0.0.1)
SlurmUser={user}
SlurmdUser={user}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={root}/jobcomp.log
MinJobAge=3600
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={int(_memory_mb() * 0.8)} State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
""")
    srun = root / "bin" / "srun"
    srun.write_text(f'#!/bin/sh\nexport SLURM_CONF={conf}\nexec {shutil.which("srun")} "$@"\n')
    srun.chmod(0o755)
    env = {**os.environ, "SLURM_CONF": str(conf),
           "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    cluster = Cluster(root=root, env=env)
    commands = {
        "munged": [_sbin("munged"), "--foreground", "--force", f"--key-file={key}",
                   f"--socket={root}/munge/munge.socket", f"--pid-file={root}/munge/munged.pid",
                   f"--log-file={root}/munge/munged.log", f"--seed-file={root}/munge/seed"],
        "slurmctld": [_sbin("slurmctld"), "-D", "-f", str(conf)],
        "slurmd": [_sbin("slurmd"), "-D", "-f", str(conf)],
    }
    try:
        for name, cmd in commands.items():
            out = open(root / f"{name}.stdout", "w")  # noqa: SIM115 - closed with the process
            cluster.procs[name] = subprocess.Popen(cmd, env=env, stdout=out,
                                                   stderr=subprocess.STDOUT)
            time.sleep(1.0)
            if cluster.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {(root / f'{name}.stdout').read_text()}")
        deadline = time.time() + 60
        while time.time() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True,
                                   text=True).stdout.strip()
            if state in ("idle", "mix", "alloc"):
                return cluster
            time.sleep(1.0)
        raise RuntimeError(f"node not idle after 60 s (state {state!r}): "
                           f"{cluster.log('slurmctld.log')[-2000:]}")
    except BaseException:
        cluster.stop()
        raise
