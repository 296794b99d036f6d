"""Throughput of the full time step (TP06 + diffusion, float32) on a biventricular heart.

Each configuration (heart, batch size, eager or compiled) runs in a fresh process so that
its peak resident memory is its own: the child builds the problem (a normal beat, so the
stimulus and the fast layers are in play), warms up (compilation included), times
``steps`` steps and reports voxel-steps per second = steps x B x n_tissue / seconds and
``ru_maxrss``.
"""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing as mp
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _heart(anatomy_path: str | None, resolution: float) -> Any:
    if anatomy_path:
        from pipeline.anatomy.io import read_anatomy
        return read_anatomy(anatomy_path)
    from pipeline.anatomy.build import build_parametric
    from pipeline.config import section
    settings, seed = section({"anatomy": {"resolution_mm": resolution}}, "anatomy")
    anatomy, _ = build_parametric(0, seed, settings, "param000")
    return anatomy


def _eikonal_drive(problem: Any, prep: Any, device: str) -> tuple[Any, float]:
    """The reaction-eikonal stimulus of a problem and the eikonal solve's wall time (s)."""
    from pipeline.monodomain.eikonal import EikonalSolver, problem_inputs
    from pipeline.monodomain.stimulus import ActivationStimulus

    t0 = time.perf_counter()
    times = EikonalSolver(prep.grid.mask, prep.grid.spacing, prep.fibre,
                          device=device).solve(*problem_inputs(problem))
    return ActivationStimulus(times, -60.0, 2.0), time.perf_counter() - t0


#: ``--tables`` of the bench: the solver's ``share_tables`` (auto: shared when compiled on
#: CUDA).
TABLES = {"auto": None, "shared": True, "per-simulation": False}


def measure_one(anatomy_path: str | None, resolution: float, batch: int, mode: str,
                steps: int, threads: int, device: str,
                model: str = "monodomain", tables: str = "auto",
                steps_per_call: int = 1, layout: str = "auto") -> dict[str, Any]:
    """Time one configuration in this process; returns a row of figures.

    ``model`` ``reaction_eikonal`` drives the same step with the eikonal times (its solve
    is timed apart, ``eikonal_s``); the time loop is the monodomain's. ``tables`` (a key
    of :data:`TABLES`) chooses shared or per-simulation diffusion coefficient tables; the
    row gives their count and bytes per voxel-simulation. ``steps_per_call`` chains that
    many compiled steps per call (:class:`~pipeline.monodomain.solver.MonodomainSolver`);
    the timed steps are rounded up to a multiple of it. ``layout`` ``slot`` / ``voxel``:
    the tables slot-major / voxel-major in memory (the solver's ``slot_major``); ``auto``:
    the solver's default (slot-major on CUDA).
    """
    import torch

    from pipeline.monodomain.batch import build_problem, prepare_anatomy
    from pipeline.params import SimParams
    from pipeline.monodomain.solver import MonodomainSolver
    torch.set_num_threads(threads)
    anatomy = _heart(anatomy_path, resolution)
    prep = prepare_anatomy(anatomy)
    specs = [SimParams(sim_id=b, pattern="normal", sigma_l=0.15 + 0.01 * b, sigma_t=0.04,
                            sigma_fast_endo=0.8, seed=b) for b in range(batch)]
    dt, k = 0.04, max(1, int(steps_per_call))
    steps = -(-int(steps) // k) * k
    problem = build_problem(prep, specs, dt_ms=dt, duration_ms=dt * steps)
    stimulus, eikonal_s = (_eikonal_drive(problem, prep, device)
                           if model == "reaction_eikonal" else (None, 0.0))
    solver = MonodomainSolver(problem, device=device, dtype=torch.float32,
                              compile=(mode == "compiled"), check_every=10 ** 9,
                              stimulus=stimulus, share_tables=TABLES[tables],
                              steps_per_call=k,
                              slot_major=None if layout == "auto" else layout == "slot")
    t0 = time.perf_counter()
    _run_steps(solver, max(3, 2 * k) if k > 1 else 3)   # warm-up (compilation included)
    warmup = time.perf_counter() - t0
    if device == "cuda":
        torch.cuda.synchronize()
    t1 = time.perf_counter()
    _run_steps(solver, steps)
    if device == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t1
    n = problem.grid.n_tissue
    row = {"heart": str(anatomy.name), "resolution_mm": float(anatomy.spacing[0]),
           "n_voxels": n, "batch": batch, "mode": mode, "threads": threads, "device": device,
           "model": model, "eikonal_s": round(eikonal_s, 2),
           "steps": steps, "steps_per_call": k, "layout": layout, "seconds": round(wall, 3),
           "warmup_s": round(warmup, 1),
           "voxel_steps_per_s": float(f"{steps * batch * n / wall:.4g}"),
           "peak_rss_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "tables": int(solver.space.coef.shape[0]),
           "shared_tables": solver.space.scales is not None,
           "table_bytes_per_voxel_simulation": round(solver.space.table_bytes / (batch * n), 1)}
    if device == "cuda":
        row["peak_cuda_MB"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return row


def _run_steps(solver: Any, steps: int) -> None:
    """Advance ``steps`` steps of the solver's problem from its initial state, as a run
    does (its time loop, no recording; the blow-up check at the last step only when the
    solver's ``check_every`` is large)."""
    solver.run(n_steps=steps)


def _in_child(ctx: Any, args: tuple, timeout_s: float) -> dict[str, Any]:
    """:func:`measure_one` in a fresh process; an error row if it dies or times out."""
    import queue as queue_mod

    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, args))
    proc.start()
    try:
        row = queue.get(timeout=timeout_s)
    except queue_mod.Empty:
        reason = (f"exit code {proc.exitcode}" if proc.exitcode is not None
                  else f"no result within {timeout_s:g} s")
        row = {"error": f"child process gave no result ({reason})"}
    proc.join(timeout=10)
    if proc.is_alive():
        proc.kill()
        proc.join()
    return row


def _child(queue: Any, args: tuple) -> None:
    try:
        queue.put(measure_one(*args))
    except Exception as exc:  # reported by the parent
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def measure_all(anatomies: Sequence[str] | None, resolutions: Sequence[float],
                batches: Sequence[int], modes: Sequence[str], steps: int, threads: int,
                device: str, timeout_s: float = 1800.0,
                models: Sequence[str] = ("monodomain",),
                tables: str = "auto",
                steps_per_call: Sequence[int] = (1,),
                deadline: float | None = None,
                layouts: Sequence[str] = ("auto",)) -> list[dict[str, Any]]:
    """Run every configuration in a fresh process and return the rows (also logged).

    A child that dies or runs past ``timeout_s`` (set-up and compilation included) gives a
    row with an ``error`` instead of a figure; the others still run. Without
    ``anatomies`` each resolution's parametric heart is built once, here, and every child
    of that resolution reads it (a 0.5 mm heart takes about a minute to build). Past
    ``deadline`` (a :func:`time.perf_counter` time) no child starts: the row says
    ``skipped``. ``layouts``: one row per table layout (:func:`measure_one`'s ``layout``).
    """
    with tempfile.TemporaryDirectory(prefix="throughput_") as tmp:
        hearts: list[tuple[str, float, str | None]] = (
            [(a, 0.0, a) for a in anatomies] if anatomies
            else [(_built_heart(r, Path(tmp)), r, None) for r in resolutions])
        return _measure_hearts(hearts, batches, modes, steps, threads, device, timeout_s,
                               models, tables, steps_per_call, deadline, layouts)


def _built_heart(resolution: float, folder: Path) -> str:
    """The parametric heart at ``resolution`` (mm), written to ``folder``; its path."""
    from pipeline.anatomy.io import write_anatomy

    path = folder / f"param000_{resolution:g}mm.h5"
    write_anatomy(path, _heart(None, resolution))
    return str(path)


def _measure_hearts(hearts: list[tuple[str, float, str | None]], batches: Sequence[int],
                    modes: Sequence[str], steps: int, threads: int, device: str,
                    timeout_s: float, models: Sequence[str], tables: str,
                    steps_per_call: Sequence[int],
                    deadline: float | None,
                    layouts: Sequence[str] = ("auto",)) -> list[dict[str, Any]]:
    """:func:`measure_all`'s loop over (heart file, resolution, the file given or None)."""
    ctx = mp.get_context("spawn")
    rows = []
    for path, res, given in hearts:
        for batch in batches:
            for mode in modes:
                for model, k, layout in itertools.product(
                        models, steps_per_call if mode == "compiled" else (1,), layouts):
                    if deadline is not None and time.perf_counter() > deadline:
                        row = {"skipped": "past the deadline"}
                    else:
                        row = _in_child(ctx, (path, res, batch, mode, steps, threads,
                                              device, model, tables, k, layout), timeout_s)
                    row.setdefault("config", {"anatomy": given, "resolution_mm": res,
                                              "batch": batch, "mode": mode, "model": model,
                                              "steps_per_call": k, "layout": layout})
                    log.info("throughput %s", json.dumps(row))
                    rows.append(row)
    return rows


def memory_per_voxel_simulation(rows: Sequence[dict[str, Any]],
                                key: str = "peak_rss_MB") -> list[dict[str, Any]]:
    """Bytes per voxel-simulation from the peak memory of two batch sizes.

    For each heart, mode and model with rows at two or more batch sizes, the slope of the
    peak memory (``key``: ``peak_rss_MB`` on the CPU, ``peak_cuda_MB`` on CUDA) between
    the smallest and the largest batch, per voxel and simulation, and the intercept (the
    memory a batch needs whatever its size: tables shared by the batch, compilation,
    libraries).
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        if key in r:
            groups.setdefault((r["heart"], r["n_voxels"], r["mode"], r["model"],
                               r.get("steps_per_call", 1)), []).append(r)
    out = []
    for (heart, n, mode, model, k), group in groups.items():
        a, b = min(group, key=lambda r: r["batch"]), max(group, key=lambda r: r["batch"])
        if a["batch"] == b["batch"]:
            continue
        per = (b[key] - a[key]) * 2**20 / ((b["batch"] - a["batch"]) * n)
        out.append({"heart": heart, "n_voxels": n, "mode": mode, "model": model,
                    "steps_per_call": k,
                    "batches": [a["batch"], b["batch"]], "memory": key,
                    "bytes_per_voxel_simulation": round(per, 1),
                    "fixed_MB": round(a[key] - per * a["batch"] * n / 2**20, 1)})
    return out
