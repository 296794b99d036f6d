"""Run one shard: check the inputs, simulate in batches, measure, write the shard file.

:func:`prepare_shard` reads and checks everything (anatomy fields, the parameter table,
the (BCL, G_Kr) initial states, the time grid) and raises
:class:`~pipeline.errors.InputError` before any simulation. :func:`run_shard` advances
the simulations ``batch_size`` at a time with the monodomain solver; a
:class:`Recorder` called every ``record_every_ms`` keeps Vm at the 75 points and the ten
electrode potentials (pseudo-ECG: one matrix product of the precomputed weights with
the solver's current source ``I_m = div(sigma grad V)``). Activation times at the points
are the solver's on-line crossings (full time resolution); the paper's 1-ms labels and
APD90 come from the recorded traces. The shard file is written atomically.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import InputError
from pipeline.signals.activation import activation_labels, apd90
from pipeline.signals.ecg import PseudoECG
from pipeline.signals.leads import leads_from_electrodes
from pipeline.params import DEFAULT_PATTERNS, read_params, rows, table_columns
from pipeline.simulate.shard import ShardData, read_shard, write_shard

log = logging.getLogger(__name__)


def known_patterns() -> tuple[str, ...]:
    """Activation pattern names of the monodomain stage."""
    try:
        from pipeline.monodomain.patterns import PATTERNS
    except ImportError:  # solver without a pattern registry: the interface's names
        return DEFAULT_PATTERNS
    return tuple(PATTERNS)


@dataclass
class ShardJob:
    """A checked shard, ready to run.

    Attributes
    ----------
    anatomy
        The :class:`pipeline.anatomy.io.Anatomy`.
    table
        Validated parameter table (one row per simulation).
    cells
        The initial-states table of the cells stage.
    cfg
        Resolved ``simulate`` config section.
    point_index
        int64 (75,): tissue index (C order) of every recording point's voxel.
    record_every
        Solver steps between two recorded samples.
    n_samples
        Samples T per simulation.
    """

    anatomy: Any
    table: pd.DataFrame
    cells: Any
    cfg: dict[str, Any]
    point_index: np.ndarray
    record_every: int
    n_samples: int
    sources: dict[str, str]


def _time_grid(cfg: dict[str, Any]) -> tuple[int, int]:
    """(steps per sample, samples) from dt, record interval and duration; InputError if off-grid."""
    dt, rec, dur = float(cfg["dt_ms"]), float(cfg["record_every_ms"]), float(cfg["duration_ms"])
    k = round(rec / dt)
    if k < 1 or abs(k * dt - rec) > 1e-9 * rec:
        raise InputError(f"simulate.record_every_ms = {rec} must be a multiple of "
                         f"simulate.dt_ms = {dt}")
    n = round(dur / rec)
    if n < 2 or abs(n * rec - dur) > 1e-9 * dur:
        raise InputError(f"simulate.duration_ms = {dur} must be a multiple (>= 2) of "
                         f"simulate.record_every_ms = {rec}")
    return int(k), int(n)


def point_tissue_index(mask: np.ndarray, point_ijk: np.ndarray, names: Any = None) -> np.ndarray:
    """Tissue index (C order) of each point's voxel; InputError for a point off the tissue."""
    mask = np.asarray(mask, dtype=bool)
    index = np.full(mask.shape, -1, dtype=np.int64)
    index[mask] = np.arange(int(mask.sum()))
    ijk = np.asarray(point_ijk, dtype=np.int64)
    inside = np.all((ijk >= 0) & (ijk < np.array(mask.shape)), axis=1)
    out = np.full(ijk.shape[0], -1, dtype=np.int64)
    out[inside] = index[tuple(ijk[inside].T)]
    if np.any(out < 0):
        i = int(np.flatnonzero(out < 0)[0])
        name = names[i] if names is not None else i
        raise InputError(f"recording point {name} at voxel {tuple(ijk[i])} is not a tissue voxel")
    return out


def check_initial_states(cells: Any, table: pd.DataFrame, source: str) -> None:
    """InputError if a (BCL, G_Kr) pair of the table has no steady state in the cells file."""
    bcls = np.asarray(cells.bcl_ms, dtype=np.float64)
    gkrs = np.asarray(cells.gkr_scale, dtype=np.float64)
    for _, row in table.iterrows():
        if not np.any(np.isclose(bcls, row["bcl_ms"])):
            raise InputError(f"sim_id {row['sim_id']}: bcl_ms = {row['bcl_ms']:g} has no initial "
                             f"state in {source} (it holds bcl_ms {bcls.tolist()})")
        if not np.any(np.isclose(gkrs, row["gkr_scale"])):
            raise InputError(f"sim_id {row['sim_id']}: gkr_scale = {row['gkr_scale']:g} has no "
                             f"initial state in {source} (it holds gkr_scale {gkrs.tolist()})")


def prepare_shard(anatomy_path: str | Path, cells_path: str | Path, params_path: str | Path,
                  cfg: dict[str, Any]) -> ShardJob:
    """Read and check every input of a shard; no simulation runs here.

    Parameters
    ----------
    anatomy_path
        ``anatomy.h5`` of the shard's heart.
    cells_path
        ``cells/initial_states.h5``.
    params_path
        The shard's parameter CSV.
    cfg
        Resolved ``simulate`` config section.

    Raises
    ------
    InputError
        Naming the file, field, row or value at fault.
    """
    from pipeline.anatomy.io import read_anatomy
    from pipeline.cell.steady import read_initial_states

    record_every, n_samples = _time_grid(cfg)
    anatomy = read_anatomy(anatomy_path)
    table = read_params(params_path, patterns=known_patterns(), anatomy_name=str(anatomy.name))
    cells = read_initial_states(cells_path)
    check_initial_states(cells, table, str(cells_path))
    point_index = point_tissue_index(anatomy.mask, anatomy.point_ijk, anatomy.point_names)
    log.info("shard %s: %d simulations on %s (%d tissue voxels), %d samples of %g ms",
             params_path, len(table), anatomy.name, int(anatomy.mask.sum()), n_samples,
             cfg["record_every_ms"])
    return ShardJob(anatomy=anatomy, table=table, cells=cells, cfg=dict(cfg),
                    point_index=point_index, record_every=record_every, n_samples=n_samples,
                    sources={"anatomy": str(anatomy_path), "cells": str(cells_path),
                             "params": str(params_path)})


class Recorder:
    """Solver callback that keeps Vm at the points and the electrode potentials.

    Parameters
    ----------
    current_source
        ``f(V) -> I_m`` (B, n) uA/mm^3, the solver's own operator.
    weights
        Pseudo-ECG weights, torch (n_electrodes, n) float64 on the solver's device.
    point_index
        Tissue indices (n_points,).
    batch, n_samples
        B and T.
    dt_ms
        Sampling interval (ms); sample ``k`` is taken at ``k * dt_ms``.
    """

    def __init__(self, current_source: Any, weights: Any, point_index: np.ndarray,
                 batch: int, n_samples: int, dt_ms: float) -> None:
        import torch

        self.current_source = current_source
        self.weights = weights
        self.points = torch.as_tensor(point_index, device=weights.device)
        self.dt_ms = dt_ms
        self.vm = np.full((batch, len(point_index), n_samples), np.nan, dtype=np.float32)
        self.electrodes = np.full((batch, weights.shape[0], n_samples), np.nan)
        self.n_samples = n_samples

    def __call__(self, t_ms: float, v: Any) -> None:
        k = int(round(t_ms / self.dt_ms))
        if k >= self.n_samples:
            return
        im = self.current_source(v).double()
        self.electrodes[:, :, k] = (im @ self.weights.T).cpu().numpy()
        self.vm[:, :, k] = v[:, self.points].float().cpu().numpy()

    @property
    def complete(self) -> bool:
        """Whether every sample was recorded."""
        return bool(np.isfinite(self.electrodes).all())


def _threads(threads: int | None, compiled: bool) -> None:
    """Set torch's CPU threads; the eager solver runs on one.

    Eager mode launches some 300 small operations per step, and their OpenMP start-up
    outweighs the work: measured at 1 mm, 7.9e5 voxel-steps/s on 1 thread against 2.6e4 on
    2 threads of a busy 2-core machine (docs/monodomain.md).
    """
    import torch

    if threads:
        torch.set_num_threads(int(threads) if compiled else 1)


def run_shard(job: ShardJob, out: str | Path | None, threads: int | None = None,
              progress: bool = True) -> ShardData:
    """Simulate every row of the job in batches, measure, and write the shard file.

    Parameters
    ----------
    job
        From :func:`prepare_shard`.
    out
        Output ``.h5`` (written atomically), or None to only return the data.
    threads
        torch CPU threads (None leaves torch's default).
    progress
        Show progress bars.

    Returns
    -------
    ShardData
    """
    import torch
    from tqdm import tqdm

    from pipeline.simulate.solver_adapter import ShardSolver

    cfg = job.cfg
    _threads(threads, bool(cfg["compile"]))
    anatomy = job.anatomy
    t_start = time.perf_counter()
    pecg = PseudoECG.from_anatomy(anatomy, float(cfg["sigma_bath_S_per_m"]))
    shard_solver = ShardSolver(anatomy, job.cells, cfg,
                               sigma_l_reference=float(job.table["sigma_l"].median()),
                               sigma_t_reference=float(job.table["sigma_t"].median()))
    weights = pecg.as_tensor(dtype=torch.float64, device=shard_solver.device)
    sims = rows(job.table)
    n, n_t = len(sims), job.n_samples
    n_pts = len(job.point_index)
    electrodes = np.zeros((n, len(pecg.electrode_names), n_t))
    vm = np.zeros((n, n_pts, n_t), dtype=np.float32)
    act = np.zeros((n, n_pts), dtype=np.float64)
    amap = np.zeros((n, pecg.n_tissue), dtype=np.float32) if cfg["save_activation_map"] else None
    batch_size = int(cfg["batch_size"])
    batches = [sims[i:i + batch_size] for i in range(0, n, batch_size)]
    solver_attrs: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    log.info("set-up %.1f s; %d batches of up to %d simulations", time.perf_counter() - t_start,
             len(batches), batch_size)
    done = 0
    for b_i, batch in enumerate(tqdm(batches, desc="batches", unit="batch", disable=not progress)):
        solver = shard_solver.solver(batch)
        rec = Recorder(solver.current_source, weights, job.point_index, len(batch), n_t,
                       float(cfg["record_every_ms"]))
        result = solver.run(rec, record_every=job.record_every, progress=progress)
        if not rec.complete:
            raise InputError(f"batch {b_i}: the solver stopped at {result.t_end_ms} ms before "
                             f"the last of {n_t} samples")
        sl = slice(done, done + len(batch))
        electrodes[sl] = rec.electrodes
        vm[sl] = rec.vm
        act[sl] = result.activation_ms[:, job.point_index]
        if amap is not None:
            amap[sl] = result.activation_ms
        solver_attrs = shard_solver.attrs(solver)
        records += [dict(r) for r in result.records]
        done += len(batch)
        log.info("batch %d/%d: %d simulations in %.1f s (time loop)", b_i + 1, len(batches),
                 len(batch), result.wall_s)
    dt_rec = float(cfg["record_every_ms"])
    labels = activation_labels(vm, dt_rec)
    apd = apd90(vm, dt_rec, activation_ms=act)
    data = ShardData(ecg=leads_from_electrodes(electrodes), electrodes=electrodes, vm=vm,
                     activation_ms=act, activation_label_ms=labels, apd90_ms=apd,
                     params=table_columns(job.table),
                     point_names=[str(p) for p in anatomy.point_names], dt_ms=dt_rec,
                     anatomy=str(anatomy.name), activation_map_ms=amap,
                     extra_attrs={"solver": solver_attrs, "records": _jsonable(records),
                                  "sources": dict(job.sources),
                                  "sigma_bath_S_per_m": float(cfg["sigma_bath_S_per_m"])})
    n_never = int(np.isnan(act).sum())
    if n_never:
        log.warning("%d of %d point activations never happened (NaN)", n_never, act.size)
    log.info("shard done in %.1f s", time.perf_counter() - t_start)
    if out is not None:
        write_shard(out, data, cfg)
    return data


def shard_figures(shard_path: str | Path, anatomy_path: str | Path, index: int, out: Path,
                  points: list[int] | None = None) -> dict[str, Path]:
    """Figures of simulation ``index`` of a shard: ECG, activation map in 3-D, Vm traces.

    Returns
    -------
    dict
        ``{"ecg": ..., "activation": ..., "vm": ...}`` paths in ``out``.
    """
    from pipeline.anatomy.io import read_anatomy
    from pipeline.simulate.figures import plot_activation_3d, plot_ecg12, plot_vm_traces

    data = read_shard(shard_path)
    if not 0 <= index < data.n:
        raise InputError(f"--index {index} is outside the {data.n} simulations of {shard_path}")
    anatomy = read_anatomy(anatomy_path)
    sim_id = data.params["sim_id"][index] if "sim_id" in data.params else index
    pattern = data.params["pattern"][index] if "pattern" in data.params else ""
    title = f"{data.anatomy} sim {sim_id}: {pattern}"
    for key in ("gkr_scale", "bcl_ms"):
        if key in data.params:
            title += f", {key} {float(data.params[key][index]):g}"
    points = points if points is not None else [0, 16, 66]
    bad = [p + 1 for p in points if not 0 <= p < len(data.point_names)]
    if bad:
        raise InputError(f"recording points {bad} are outside 1..{len(data.point_names)}")
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "ecg": plot_ecg12(data.ecg[index], data.dt_ms, out / "ecg12.png", title=title),
        "vm": plot_vm_traces(data.vm[index], data.dt_ms, data.point_names, points,
                             out / "vm.png", activation_ms=data.activation_ms[index],
                             title=title),
        "activation": plot_activation_3d(
            anatomy.mask, anatomy.origin, anatomy.spacing, out / "activation3d.png",
            activation_map_ms=(None if data.activation_map_ms is None
                               else data.activation_map_ms[index]),
            point_xyz=anatomy.point_xyz, point_activation_ms=data.activation_ms[index],
            title=title),
    }
    return paths


def _jsonable(value: Any) -> Any:
    """Numpy scalars and arrays inside nested records -> plain Python (for JSON attributes)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
