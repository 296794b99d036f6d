"""``pipeline bench beat``: one beat of a pattern on a heart, summarised in figures.

:func:`beat_figures` builds the problem of one simulation (optionally with its
conductivities calibrated along and across the fibres, :func:`calibrate_beat`), runs it
and summarises its activation and repolarisation times (:func:`summarise_beat`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import InputError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's CPU threads set to ``n`` inside the block, restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def calibrate_beat(sigma_l: float, sigma_t: float, dx_mm: float, dt_ms: float,
                   sigma_fast: float, depth_mm: float = 1.0, cv_relation: str = "continuum"
                   ) -> tuple[dict[str, float], dict[str, Any]]:
    """Conductivity scales along and across the fibres and of the fast layer, one thread.

    The targets are ``cv_relation``'s (``simulate.cv_relation``): "continuum", the converged
    CVs of :func:`pipeline.monodomain.cv_relation.cv_from_sigma` (the layer's times its
    :func:`pipeline.monodomain.layer.layer_load`); "cable_0.1mm", cables at 0.1 mm and the
    layer's front speed on a 0.1 mm layered slab.

    Returns
    -------
    scales
        ``{"cv_scale", "cv_scale_t", "cv_scale_fast"}`` for
        :func:`pipeline.monodomain.batch.build_problem`.
    calibration
        ``{"l": ..., "t": ..., "fast": ...}``: the calibrations as mappings.
    """
    from pipeline.monodomain.cv import calibrate_directions
    from pipeline.monodomain.cv_relation import cv_from_sigma
    from pipeline.monodomain.layer import calibrate_fast_layer, loaded_layer_cv

    targets, target_fast = None, None
    if cv_relation != "cable_0.1mm":
        targets = (float(cv_from_sigma(sigma_l, cv_relation)),
                   float(cv_from_sigma(sigma_t, cv_relation)))
        target_fast = loaded_layer_cv(sigma_fast, sigma_l, sigma_t, depth_mm, cv_relation)
    with torch_threads(1):
        cal_l, cal_t = calibrate_directions(sigma_l, sigma_t, dx_mm, dt_ms, targets=targets)
        cal_f = calibrate_fast_layer(sigma_fast, dx_mm, dt_ms, depth_mm=depth_mm,
                                     sigma_l=sigma_l, sigma_t=sigma_t, scale_l=cal_l.scale,
                                     scale_t=cal_t.scale, target_cv_mm_per_ms=target_fast)
    return ({"cv_scale": cal_l.scale, "cv_scale_t": cal_t.scale, "cv_scale_fast": cal_f.scale},
            {"l": cal_l.as_dict(), "t": cal_t.as_dict(), "fast": cal_f.as_dict()})


def summarise_beat(activation_ms: np.ndarray, repolarisation_ms: np.ndarray) -> dict[str, Any]:
    """Activated/repolarised fractions, total activation, 5/50/95th percentiles (ms).

    Parameters
    ----------
    activation_ms, repolarisation_ms
        Per-voxel times (n,) in ms; NaN where the voxel never activated/repolarised.
    """
    act, rep = np.asarray(activation_ms), np.asarray(repolarisation_ms)
    return {
        "n_voxels": int(act.size),
        "activated_fraction": float(np.isfinite(act).mean()),
        "total_activation_ms": float(np.nanmax(act)),
        "activation_p05_p50_p95_ms": [float(x) for x in np.nanpercentile(act, [5, 50, 95])],
        "repolarised_fraction": float(np.isfinite(rep).mean()),
        "last_repolarisation_ms": float(np.nanmax(rep)) if np.isfinite(rep).any() else None,
        "apd_ms_p05_p50_p95": [float(x) for x in np.nanpercentile(rep - act, [5, 50, 95])],
    }


def beat_figures(anatomy_path: str | Path, *, pattern: str = "normal", seed: int = 0,
                 sigma: Sequence[float] = (0.15, 0.04, 0.8), gkr_scale: float = 1.0,
                 bcl_ms: float = 1000.0, initial_states: str | Path | None = None,
                 dt_ms: float = 0.04, duration_ms: float = 500.0, compile: bool = True,
                 calibrate: bool = False, device: str = "cpu") -> dict[str, Any]:
    """Simulate one beat on a heart and summarise it.

    Parameters
    ----------
    anatomy_path
        ``anatomy.h5``.
    sigma
        ``(sigma_l, sigma_t, sigma_fast_endo)`` in S/m.
    initial_states
        ``cells/initial_states.h5`` (None: TP06's built-in BCL 1000 ms states).
    calibrate
        Scale sigma_l, sigma_t and sigma_fast_endo to the default relation's CVs
        (:func:`calibrate_beat`).
    device
        ``cpu``, ``cuda`` or ``auto`` for the beat (the calibration cables run on the CPU).

    Returns
    -------
    dict
        :func:`summarise_beat`'s figures plus the run's settings, wall time, calibration,
        conductivities used and pattern parameters.
    """
    from pipeline.anatomy.io import read_anatomy
    from pipeline.monodomain.batch import build_problem, prepare_anatomy
    from pipeline.params import SimParams
    from pipeline.monodomain.solver import MonodomainSolver

    if not Path(anatomy_path).exists():
        raise InputError(f"--anatomy {anatomy_path}: file not found")
    anatomy = read_anatomy(anatomy_path)
    spec = SimParams(sim_id=0, pattern=pattern, sigma_l=sigma[0], sigma_t=sigma[1],
                     sigma_fast_endo=sigma[2], gkr_scale=gkr_scale, bcl_ms=bcl_ms, seed=seed)
    initial = None
    if initial_states:
        from pipeline.cell.steady import read_initial_states
        from pipeline.monodomain.batch import initial_states_from_table
        initial = initial_states_from_table(read_initial_states(initial_states))
    scales, calibration = (calibrate_beat(spec.sigma_l, spec.sigma_t,
                                          float(anatomy.spacing.max()), dt_ms,
                                          spec.sigma_fast_endo)
                           if calibrate else ({}, None))
    problem = build_problem(prepare_anatomy(anatomy), [spec], dt_ms=dt_ms,
                            duration_ms=duration_ms, initial_states=initial, **scales)
    t0 = time.perf_counter()
    res = MonodomainSolver(problem, compile=compile, device=device).run(progress=True)
    cond = problem.conductivities
    return {"anatomy": str(anatomy_path), "pattern": pattern, "dt_ms": dt_ms,
            "duration_ms": duration_ms,
            **summarise_beat(res.activation_ms[0], res.repolarisation_ms[0]),
            "v_final_max_mV": float(res.v_final.max()),
            "wall_s": round(time.perf_counter() - t0, 1), "calibration": calibration,
            "sigma_used_S_per_m": [float(cond.sigma_l[0]), float(cond.sigma_t[0]),
                                   float(cond.sigma_fast_endo[0])],
            "pattern_params": problem.records[0]["pattern_params"]}
