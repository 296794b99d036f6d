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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import InputError
from pipeline.signals.activation import activation_labels, apd90
from pipeline.signals.leads import leads_from_electrodes
from pipeline.params import poses, read_params, rows, table_columns
from pipeline.settings import RunSettings, SimulateSettings
from pipeline.simulate.calibration import check_calibration, read_calibration
from pipeline.simulate.lead_field import ShardLeadField
from pipeline.simulate.shard import ShardData, read_shard, write_shard

log = logging.getLogger(__name__)

#: The clinical ECG band (Hz): AHA diagnostic bandwidth, 0.05 Hz high-pass and 150 Hz low-pass.
CLINICAL_BAND_HZ: tuple[float, float] = (0.05, 150.0)


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
    settings
        What to simulate (the ``simulate`` section's science keys).
    point_index
        int64 (75,): tissue index (C order) of every recording point's voxel.
    record_every
        Solver steps between two recorded samples.
    n_samples
        Samples T per simulation.
    sources
        The input files by role (``anatomy``, ``cells``, ``params``, ``calibration``).
    calibration
        The heart's CV calibration read from a file and checked against the shard
        (:class:`~pipeline.simulate.calibration.ShardCalibration`), or None (found in the
        run when the settings ask for one).
    eikonal_anatomy
        The same heart on the finer grid of ``simulate.eikonal_resolution_mm``, or None.
    """

    anatomy: Any
    table: pd.DataFrame
    cells: Any
    settings: SimulateSettings
    point_index: np.ndarray
    record_every: int
    n_samples: int
    sources: dict[str, str]
    calibration: Any = None
    eikonal_anatomy: Any = None


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


def check_eikonal_anatomy(fine: Any, coarse: Any, settings: SimulateSettings,
                          source: str) -> None:
    """InputError unless ``fine`` is the shard's heart on the grid the settings ask for.

    The fine anatomy (``simulate.eikonal_resolution_mm``) must carry the shard anatomy's
    name, have that voxel size, finer than the shard's, and cover the shard's tissue (the
    same heart in the same frame: every coarse tissue voxel centre within a coarse voxel
    of fine tissue).
    """
    from scipy.spatial import cKDTree

    want = settings.eikonal_resolution_mm
    if settings.model != "reaction_eikonal":
        raise InputError(f"{source}: an eikonal anatomy is used by simulate.model "
                         f"reaction_eikonal only (the model is {settings.model})")
    if want is None:
        raise InputError(f"{source}: an eikonal anatomy was given but "
                         "simulate.eikonal_resolution_mm is not set")
    h_fine, h = float(np.max(fine.spacing)), float(np.max(coarse.spacing))
    if str(fine.name) != str(coarse.name):
        raise InputError(f"{source}: the eikonal anatomy is heart {fine.name!r}, the shard's "
                         f"is {coarse.name!r}")
    if abs(h_fine - want) > 1e-6 * want:
        raise InputError(f"{source}: voxel size {h_fine:g} mm, but "
                         f"simulate.eikonal_resolution_mm = {want:g}")
    if settings.eikonal_grid_mm(h) is None:
        raise InputError(f"{source}: simulate.eikonal_resolution_mm = {want:g} mm is not finer "
                         f"than the shard's grid ({h:g} mm), so the eikonal runs on that "
                         "grid: give no eikonal anatomy")
    xyz_f = np.asarray(fine.origin) + np.argwhere(fine.mask) * h_fine
    xyz = np.asarray(coarse.origin) + np.argwhere(coarse.mask) * h
    dist, _ = cKDTree(xyz_f).query(xyz, distance_upper_bound=2 * h)
    far = int(np.sum(dist > h))
    if far:
        raise InputError(f"{source}: {far} of {len(xyz)} tissue voxels of the shard's anatomy lie "
                         f"more than {h:g} mm from its tissue: not the same heart in the same "
                         "frame")


def prepare_shard(anatomy_path: str | Path, cells_path: str | Path, params_path: str | Path,
                  settings: SimulateSettings,
                  calibration_path: str | Path | None = None,
                  eikonal_anatomy_path: str | Path | None = None) -> ShardJob:
    """Read and check every input of a shard; no simulation runs here.

    Parameters
    ----------
    anatomy_path
        ``anatomy.h5`` of the shard's heart.
    cells_path
        ``cells/initial_states.h5``.
    params_path
        The shard's parameter CSV.
    settings
        What to simulate.
    calibration_path
        The heart's calibration file (``pipeline calibrate``), or None to find the
        calibration in the run.
    eikonal_anatomy_path
        The heart's ``anatomy.h5`` at ``simulate.eikonal_resolution_mm`` (required when
        that is set), checked by :func:`check_eikonal_anatomy`.

    Raises
    ------
    InputError
        Naming the file, field, row or value at fault.
    CalibrationMismatch
        A calibration file made for other settings, another grid or other conductivity
        ranges (:func:`pipeline.simulate.calibration.check_calibration`).
    """
    from pipeline.anatomy.io import read_anatomy
    from pipeline.cell.steady import read_initial_states

    record_every, n_samples = settings.time_grid()
    anatomy = read_anatomy(anatomy_path)
    table = read_params(params_path, anatomy_name=str(anatomy.name))
    check_poses(table, settings, str(params_path))
    cells = read_initial_states(cells_path)
    check_initial_states(cells, table, str(cells_path))
    point_index = point_tissue_index(anatomy.mask, anatomy.point_ijk, anatomy.point_names)
    sources = {"anatomy": str(anatomy_path), "cells": str(cells_path),
               "params": str(params_path)}
    calibration = None
    if calibration_path is not None:
        calibration = read_calibration(calibration_path)
        check_calibration(calibration, settings, float(np.max(anatomy.spacing)), table,
                          str(calibration_path))
        sources["calibration"] = str(calibration_path)
    fine = None
    if eikonal_anatomy_path is not None:
        fine = read_anatomy(eikonal_anatomy_path)
        check_eikonal_anatomy(fine, anatomy, settings, str(eikonal_anatomy_path))
        sources["eikonal_anatomy"] = str(eikonal_anatomy_path)
    elif settings.eikonal_grid_mm(float(np.max(anatomy.spacing))) is not None:
        raise InputError(f"simulate.eikonal_resolution_mm = {settings.eikonal_resolution_mm:g}: "
                         f"the heart's anatomy at that voxel size is needed (--eikonal-anatomy; "
                         f"{anatomy_path} is at {float(np.max(anatomy.spacing)):g} mm)")
    log.info("shard %s: %d simulations on %s (%d tissue voxels), %d samples of %g ms",
             params_path, len(table), anatomy.name, int(anatomy.mask.sum()), n_samples,
             settings.record_every_ms)
    return ShardJob(anatomy=anatomy, table=table, cells=cells, settings=settings,
                    point_index=point_index, record_every=record_every, n_samples=n_samples,
                    sources=sources, calibration=calibration, eikonal_anatomy=fine)


class Recorder:
    """Solver callback that keeps Vm at the points and the electrode potentials.

    Parameters
    ----------
    current_source
        ``f(V) -> I_m`` (B, n) uA/mm^3, the solver's own operator.
    weights
        Pseudo-ECG weights, torch (n_electrodes, n) float64 on the solver's device, or
        (B, n_electrodes, n): one set per simulation (a heart pose per simulation).
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
        self.electrodes = np.full((batch, weights.shape[-2], n_samples), np.nan)
        self.n_samples = n_samples

    def __call__(self, t_ms: float, v: Any) -> None:
        k = int(round(t_ms / self.dt_ms))
        if k >= self.n_samples:
            return
        im = self.current_source(v).double()
        if self.weights.ndim == 2:
            self.electrodes[:, :, k] = (im @ self.weights.T).cpu().numpy()
        else:
            self.electrodes[:, :, k] = (self.weights @ im[:, :, None])[:, :, 0].cpu().numpy()
        self.vm[:, :, k] = v[:, self.points].float().cpu().numpy()

    @property
    def complete(self) -> bool:
        """Whether every sample was recorded."""
        return bool(np.isfinite(self.electrodes).all())


def _threads(run: RunSettings) -> None:
    """Set torch's CPU threads; the eager solver runs on one.

    Eager mode launches some 300 small operations per step, and their OpenMP start-up
    outweighs the work: measured at 1 mm, 7.9e5 voxel-steps/s on 1 thread against 2.6e4 on
    2 threads of a busy 2-core machine (docs/monodomain.md).
    """
    import torch

    if run.threads:
        torch.set_num_threads(int(run.threads) if run.compile else 1)


@dataclass
class _Outputs:
    """The shard's arrays, filled batch by batch."""

    electrodes: np.ndarray
    vm: np.ndarray
    act: np.ndarray
    amap: np.ndarray | None
    records: list[dict[str, Any]]
    solver_attrs: dict[str, Any]
    electrode_xyz: list | None = None   # where the electrodes recorded (mm), rounded

    @classmethod
    def empty(cls, n: int, n_electrodes: int, n_points: int, n_t: int, n_tissue: int,
              with_map: bool) -> _Outputs:
        return cls(electrodes=np.zeros((n, n_electrodes, n_t)),
                   vm=np.zeros((n, n_points, n_t), dtype=np.float32),
                   act=np.zeros((n, n_points), dtype=np.float64),
                   amap=np.zeros((n, n_tissue), dtype=np.float32) if with_map else None,
                   records=[], solver_attrs={})


def check_poses(table: pd.DataFrame, settings: SimulateSettings, source: str) -> None:
    """InputError naming the row and column if a pose shifts the heart or scales the torso
    outside a bounded torso (``simulate.ecg_medium: torso``)."""
    if settings.ecg_medium == "torso":
        return
    for pose, sim_id in zip(poses(table) or (), table["sim_id"]):
        if pose.moves_in_torso:
            raise InputError(
                f"{source}: sim_id {int(sim_id)}: heart_shift_*_mm {list(pose.shift_mm)} and "
                f"torso_scale {pose.torso_scale:g} need simulate.ecg_medium 'torso' (it is "
                f"{settings.ecg_medium!r}); in the infinite medium only the rotation applies")


def _run_batches(job: ShardJob, shard_solver: Any, lead_field: ShardLeadField,
                 out: _Outputs, batch_size: int, progress: bool) -> None:
    """Simulate the job's rows ``batch_size`` at a time into ``out``, each batch recorded
    through its own electrode weights (``lead_field``)."""
    from tqdm import tqdm

    sims = rows(job.table)
    batches = [sims[i:i + batch_size] for i in range(0, len(sims), batch_size)]
    done = 0
    for b_i, batch in enumerate(tqdm(batches, desc="batches", unit="batch", disable=not progress)):
        solver = shard_solver.solver(batch)
        w = lead_field.tensor(done, done + len(batch), shard_solver.device)
        rec = Recorder(solver.current_source, w, job.point_index, len(batch),
                       job.n_samples, job.settings.record_every_ms)
        result = solver.run(rec, record_every=job.record_every, progress=progress)
        if not rec.complete:
            raise InputError(f"batch {b_i}: the solver stopped at {result.t_end_ms} ms before "
                             f"the last of {job.n_samples} samples")
        sl = slice(done, done + len(batch))
        out.electrodes[sl], out.vm[sl] = rec.electrodes, rec.vm
        out.act[sl] = result.activation_ms[:, job.point_index]
        if out.amap is not None:
            out.amap[sl] = result.activation_ms
        out.solver_attrs = shard_solver.attrs(solver)
        out.records += [dict(r) for r in result.records]
        done += len(batch)
        log.info("batch %d/%d: %d simulations in %.1f s (time loop)", b_i + 1, len(batches),
                 len(batch), result.wall_s)


def run_shard(job: ShardJob, out: str | Path | None, run: RunSettings,
              progress: bool = True) -> ShardData:
    """Simulate every row of the job in batches, measure, and write the shard file.

    Parameters
    ----------
    job
        From :func:`prepare_shard`.
    out
        Output ``.h5`` (written atomically), or None to only return the data.
    run
        How to compute (device, dtype, compilation, batch size, threads).
    progress
        Show progress bars.

    Returns
    -------
    ShardData
    """

    from pipeline.simulate.solver_adapter import ShardSolver

    settings = job.settings
    _threads(run)
    t_start = time.perf_counter()
    with ShardLeadField(job.anatomy, settings, job.table) as lead_field:
        shard_solver = ShardSolver(job.anatomy, job.cells, settings, run,
                                   sigma_l_reference=float(job.table["sigma_l"].median()),
                                   sigma_t_reference=float(job.table["sigma_t"].median()),
                                   sigma_fast_reference=float(
                                       job.table["sigma_fast_endo"].median()),
                                   calibration=job.calibration,
                                   eikonal_anatomy=job.eikonal_anatomy)
        shard_solver.check_propagation(job.table)
        arrays = _Outputs.empty(len(job.table), len(lead_field.electrode_names),
                                len(job.point_index), job.n_samples, lead_field.n_tissue,
                                settings.save_activation_map)
        if lead_field.electrode_xyz is not None:   # (E, 3), or (N, E, 3) with poses
            arrays.electrode_xyz = np.round(lead_field.electrode_xyz, 3).tolist()
        log.info("set-up %.1f s", time.perf_counter() - t_start)
        _run_batches(job, shard_solver, lead_field, arrays, run.batch_size, progress)
    data = _shard_data(job, arrays, run)
    n_never = int(np.isnan(arrays.act).sum())
    if n_never:
        log.warning("%d of %d point activations never happened (NaN)", n_never, arrays.act.size)
    log.info("shard done in %.1f s", time.perf_counter() - t_start)
    if out is not None:
        write_shard(out, data, {"simulate": settings.science()})
    return data


def clinical_filter(ecg: np.ndarray, dt_ms: float) -> np.ndarray:
    """The ECG machine's band (:data:`CLINICAL_BAND_HZ`), zero-phase, along the last axis.

    ``ecg`` (..., T) mV sampled every ``dt_ms``; a low-pass above 0.45 x the sampling rate
    is lowered to it (:func:`pipeline.clinical.preprocess.bandpass`).
    """
    from pipeline.clinical.preprocess import bandpass

    return bandpass(ecg, 1000.0 / dt_ms, CLINICAL_BAND_HZ, source="simulated ECG")[0]


def _shard_data(job: ShardJob, arrays: _Outputs, run: RunSettings) -> ShardData:
    """The measured shard: leads, labels and APD90 from the recorded arrays."""
    dt_rec = job.settings.record_every_ms
    electrodes = arrays.electrodes
    if job.settings.ecg_filter:   # linear: filtering the electrodes filters the leads alike
        electrodes = clinical_filter(electrodes, dt_rec)
    return ShardData(
        ecg=leads_from_electrodes(electrodes), electrodes=electrodes,
        vm=arrays.vm, activation_ms=arrays.act,
        activation_label_ms=activation_labels(arrays.vm, dt_rec),
        apd90_ms=apd90(arrays.vm, dt_rec, activation_ms=arrays.act),
        params=table_columns(job.table),
        point_names=[str(p) for p in job.anatomy.point_names], dt_ms=dt_rec,
        anatomy=str(job.anatomy.name), activation_map_ms=arrays.amap,
        extra_attrs={"solver": arrays.solver_attrs, "records": _jsonable(arrays.records),
                     "sources": dict(job.sources), "run": asdict(run),
                     "sigma_bath_S_per_m": job.settings.sigma_bath_S_per_m,
                     "ecg_medium": job.settings.ecg_medium,
                     "electrode_xyz_mm": arrays.electrode_xyz})


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
        "ecg": plot_ecg12(clinical_filter(data.ecg[index], data.dt_ms), data.dt_ms,
                          out / "ecg12.png", title=title + " (0.05-150 Hz)"),
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
