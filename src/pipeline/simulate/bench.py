"""``pipeline bench shard``: the wall time of one shard on a parametric heart.

Builds parametric heart 0 at the given resolution, takes TP06's built-in BCL 1000 ms
states as initial states (the timing does not depend on them), makes a table of ``n``
simulations cycling through the five patterns, runs it like ``pipeline simulate`` and
prints the wall time of every part and the voxel-steps per second.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def _eikonal_heart(science: Any, resolution_mm: float, seed: int, anatomy_cfg: dict,
                   folder: Path) -> Path | None:
    """The parametric heart 0 on the reaction-eikonal mode's finer eikonal grid
    (``simulate.eikonal_resolution_mm`` where finer than ``resolution_mm``), written under
    ``folder/eikonal``; None where the eikonal runs on the simulation grid."""
    from pipeline.anatomy.build import build_parametric
    from pipeline.anatomy.io import write_anatomy

    fine_mm = science.eikonal_grid_mm(resolution_mm)
    if fine_mm is None:
        return None
    fine, _ = build_parametric(0, seed, {**anatomy_cfg, "resolution_mm": fine_mm})
    path = folder / "eikonal" / "anatomy.h5"
    path.parent.mkdir(exist_ok=True)
    write_anatomy(path, fine)
    return path


def bench_shard(*, resolution_mm: float = 1.0, n: int = 8, duration_ms: float = 500.0,
                threads: int = 2, out: str | None = None,
                settings: str | None = None) -> dict[str, Any]:
    """Time one shard; returns (and prints) the figures as a mapping.

    Parameters
    ----------
    resolution_mm
        Voxel edge of the parametric heart (mm).
    n
        Simulations in the shard.
    duration_ms
        Simulated time per simulation (ms).
    threads
        torch CPU threads.
    out
        Folder that keeps the shard file and its figures (a temporary one if None).
    settings
        ``--settings`` text; its ``simulate`` section is used (duration overridden).
    """
    import torch

    from pipeline.anatomy.build import build_parametric
    from pipeline.anatomy.io import write_anatomy
    from pipeline.cell import tp06
    from pipeline.cell.steady import InitialStates, write_initial_states
    from pipeline.config import section
    from pipeline.cliutil import parse_settings
    from pipeline.signals.features import beat_features
    from pipeline.params import PATTERNS
    from pipeline.settings import RunSettings, SimulateSettings
    from pipeline.simulate.run import prepare_shard, run_shard

    torch.set_num_threads(threads)
    raw = parse_settings(settings)
    raw.setdefault("simulate", {})["duration_ms"] = duration_ms
    raw.setdefault("anatomy", {})["resolution_mm"] = resolution_mm
    cfg, seed = section(raw, "simulate")
    science, run = SimulateSettings.from_config(cfg), RunSettings.from_config(cfg, threads=threads)
    anatomy_cfg, _ = section(raw, "anatomy")
    folder = Path(out) if out else Path(tempfile.mkdtemp(prefix="bench_shard_"))
    folder.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    t = time.perf_counter()
    anatomy, _ = build_parametric(0, seed, anatomy_cfg)
    write_anatomy(folder / "anatomy.h5", anatomy)
    fine_path = _eikonal_heart(science, resolution_mm, seed, anatomy_cfg, folder)
    times["anatomy_s"] = time.perf_counter() - t
    start = tp06.initial_state(["endo", "M", "epi"], dtype=torch.float64).T.numpy()
    write_initial_states(folder / "cells.h5", InitialStates(
        states=start[:, None, None, :].copy(), celltypes=("endo", "M", "epi"),
        bcl_ms=np.array([1000.0]), gkr_scale=np.array([1.0])))
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({
        "sim_id": np.arange(n), "anatomy": anatomy.name,
        "pattern": [PATTERNS[i % len(PATTERNS)] for i in range(n)],
        "sigma_l": rng.uniform(0.10, 0.20, n), "sigma_t": rng.uniform(0.02, 0.06, n),
        "sigma_fast_endo": rng.uniform(0.5, 1.0, n), "gkr_scale": 1.0, "bcl_ms": 1000.0,
        "seed": rng.integers(0, 2**31, n), "site_jitter_mm": 3.0, "site_delay_max_ms": 10.0})
    table.to_csv(folder / "params.csv", index=False)
    t = time.perf_counter()
    job = prepare_shard(folder / "anatomy.h5", folder / "cells.h5", folder / "params.csv",
                        science, eikonal_anatomy_path=fine_path)
    data = run_shard(job, folder / "shard.h5", run)
    times["shard_s"] = time.perf_counter() - t
    n_tissue = int(anatomy.mask.sum())
    steps = round(duration_ms / science.dt_ms)
    report: dict[str, Any] = {
        "resolution_mm": resolution_mm, "n_tissue": n_tissue, "simulations": n,
        "duration_ms": duration_ms, "dt_ms": science.dt_ms, "threads": threads,
        "batch_size": run.batch_size, "device": run.device,
        "compile": run.compile, **{k: round(v, 2) for k, v in times.items()},
        "voxel_steps_per_s": n * n_tissue * steps / times["shard_s"],
        "shard_file": str(folder / "shard.h5"),
        "qrs_ms": [beat_features(e, data.dt_ms).qrs_duration_ms for e in data.ecg],
    }
    print(json.dumps(report, indent=2))
    return report
