"""Conduction-velocity calibration on a cable.

Coarse grids conduct slowly: on a voxel grid the numerical CV of a planar wave falls
below the converged CV as dx grows (and with the explicit time step). For a target CV at
a given dx and dt this module finds the factor ``s`` by which to multiply all
conductivities so that a planar wave along the fibres travels at the target speed on that
grid. CV grows about like sqrt(sigma), so the search works on log CV against log s:
a batch of 25 geometrically spaced scales brackets the target (all simulated together in
one tensor), linear interpolation in log-log gives the scale, and a last run at that
scale measures the CV it achieves.

The cable is a one-voxel-thick strip along the fibres (x), long enough that the wave is
planar and steady in its middle third, where the CV is the slope of a least-squares line
through activation time against position. The result (:class:`Calibration`) is recorded
with every simulation that uses it.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from pipeline.errors import InputError, SimulationError
from pipeline.monodomain.problem import Conductivities, Grid, MonodomainProblem
from pipeline.monodomain.stimulus import Stimulus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibration:
    """The result of :func:`calibrate_conductivity`.

    Attributes
    ----------
    scale
        Factor for all conductivities.
    target_cv_mm_per_ms, achieved_cv_mm_per_ms
        Asked and obtained CV along the fibres at the scaled conductivity.
    sigma_l_S_per_m
        Unscaled fibre conductivity the calibration started from.
    dx_mm, dt_ms, celltype
        The grid and cell of the cable.
    """

    scale: float
    target_cv_mm_per_ms: float
    achieved_cv_mm_per_ms: float
    sigma_l_S_per_m: float
    dx_mm: float
    dt_ms: float
    celltype: str

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


def cable_problem(sigma: np.ndarray, dx: float, dt: float, *, length_mm: float | None = None,
                  celltype: str = "endo", chi_per_mm: float = 140.0,
                  cm_uF_per_cm2: float = 1.0, min_cv_mm_per_ms: float = 0.08
                  ) -> MonodomainProblem:
    """A batch of cables (one per conductivity in ``sigma``, S/m) along x at voxel size dx."""
    import torch

    from pipeline.cell import tp06
    sigma = np.atleast_1d(np.asarray(sigma, dtype=np.float64))
    length = length_mm or max(15.0, 24 * dx)
    n = int(math.ceil(length / dx))
    grid = Grid(origin=np.zeros(3), spacing=np.full(3, dx), mask=np.ones((n, 1, 1), dtype=bool))
    n_stim = max(3, int(math.ceil(1.0 / dx)))
    stim = Stimulus(voxels=np.arange(n_stim), start_ms=0.0, duration_ms=2.0, amplitude=-80.0,
                    name="cable_end")
    code = tp06.CELLTYPES[celltype]
    state = tp06.initial_state(celltype, dtype=torch.float64).numpy()
    b = sigma.size
    return MonodomainProblem(
        grid=grid, fibre=np.tile([1.0, 0.0, 0.0], (n, 1)),
        conductivities=Conductivities(sigma_l=sigma, sigma_t=sigma, sigma_fast_endo=sigma),
        celltype=np.full(n, code, dtype=np.uint8),
        initial_states=np.broadcast_to(state, (b, 4, state.size)).copy(),
        stimuli=tuple((stim,) for _ in range(b)), dt_ms=dt,
        duration_ms=10.0 + length / min_cv_mm_per_ms,   # stops earlier once all activated
        chi_per_mm=chi_per_mm, cm_uF_per_cm2=cm_uF_per_cm2)


def fit_range(n: int) -> tuple[int, int]:
    """The voxels [lo, hi) of an n-voxel cable whose activation times give its CV: the
    middle third (at least two voxels)."""
    return n // 3, max(n // 3 + 2, 2 * n // 3)


def cable_cv(activation_ms: np.ndarray, dx: float) -> np.ndarray:
    """CV (mm/ms) per cable from activation times (B, n): slope fit over the middle third."""
    n = activation_ms.shape[1]
    lo, hi = fit_range(n)
    x = (np.arange(lo, hi) + 0.5) * dx
    out = np.full(activation_ms.shape[0], np.nan)
    for b, act in enumerate(activation_ms):
        t = act[lo:hi]
        if np.isnan(t).any():
            continue
        slope = np.polyfit(x, t, 1)[0]       # ms/mm
        out[b] = 1.0 / slope if slope > 0 else np.nan
    return out


def conduction_velocity(sigma: np.ndarray | float, dx: float, dt: float, *,
                        celltype: str = "endo", chi_per_mm: float = 140.0,
                        cm_uF_per_cm2: float = 1.0, dtype: str = "float64",
                        min_cv_mm_per_ms: float = 0.08,
                        length_mm: float | None = None) -> np.ndarray:
    """CV (mm/ms) of a planar wave for each conductivity (S/m) at voxel size dx, step dt.

    NaN where the wave does not propagate (or is slower than ``min_cv_mm_per_ms``).
    ``length_mm`` is the cable length (default max(15 mm, 24 dx)).
    """
    import torch

    from pipeline.monodomain.solver import MonodomainSolver
    problem = cable_problem(np.asarray(sigma), dx, dt, length_mm=length_mm, celltype=celltype,
                            chi_per_mm=chi_per_mm, cm_uF_per_cm2=cm_uF_per_cm2,
                            min_cv_mm_per_ms=min_cv_mm_per_ms)
    solver = MonodomainSolver(problem, dtype=getattr(torch, dtype), check_every=200)
    # one thread (solver.SMALL_PROBLEM); ends once the fitted middle third has activated
    result = solver.run(stop_when_activated=True,
                        stop_voxels=np.arange(fit_range(problem.grid.n_tissue)[1]))
    return cable_cv(result.activation_ms.astype(np.float64), dx)


@dataclass(frozen=True)
class CvTable:
    """Planar-wave CV measured on cables for a set of conductivities.

    Attributes
    ----------
    sigma_S_per_m, cv_mm_per_ms
        float64 (k,): conductivity (S/m) and the CV it gives (mm/ms; NaN: no propagation).
    dx_mm, dt_ms, length_mm
        The cable's voxel size, time step and length.
    celltype
        TP06 cell type of the cable.
    chi_per_mm, cm_uF_per_cm2
        Surface-to-volume ratio and membrane capacitance.
    wall_s
        Wall-clock time of the measurement (s).
    """

    sigma_S_per_m: np.ndarray
    cv_mm_per_ms: np.ndarray
    dx_mm: float
    dt_ms: float
    length_mm: float
    celltype: str
    chi_per_mm: float
    cm_uF_per_cm2: float
    wall_s: float


def measure_cv_table(sigmas: np.ndarray | list[float], dx: float = 0.1, dt: float = 0.005, *,
                     length_mm: float = 15.0, celltype: str = "endo",
                     chi_per_mm: float = 140.0, cm_uF_per_cm2: float = 1.0) -> CvTable:
    """Measure the CV-sigma relation on fine cables (all conductivities in one batch).

    This is how the table behind :data:`pipeline.monodomain.cv_relation.CV_TABLE` was made
    (dx 0.1 mm, dt 0.005 ms, 15 mm cable, TP06 endo, chi 140/mm, Cm 1 uF/cm^2); re-run it
    to check or extend that table.

    Parameters
    ----------
    sigmas
        (k,) conductivities, S/m (> 0).
    dx, dt
        Voxel size (mm) and time step (ms); dt must satisfy the explicit stability limit
        of the largest sigma (about dx^2 chi Cm 0.01 / (2 * 100 sigma / 100)).
    length_mm
        Cable length (mm); the CV is fitted over its middle third.
    celltype, chi_per_mm, cm_uF_per_cm2
        Cell and membrane parameters.

    Returns
    -------
    CvTable

    Raises
    ------
    InputError
        Non-positive or non-finite conductivities, or a dt above the stability limit.
    """
    sig = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    if sig.ndim != 1 or sig.size == 0 or np.any(~np.isfinite(sig)) or np.any(sig <= 0):
        raise InputError(f"conductivities must be finite and > 0 (S/m), got {sig}")
    t0 = time.perf_counter()
    cv = conduction_velocity(sig, dx, dt, celltype=celltype, chi_per_mm=chi_per_mm,
                             cm_uF_per_cm2=cm_uF_per_cm2, min_cv_mm_per_ms=0.05,
                             length_mm=length_mm)
    wall = time.perf_counter() - t0
    log.info("CV table at dx %.3g mm, dt %.3g ms (%d cables, %.0f mm): %s in %.1f s", dx, dt,
             sig.size, length_mm,
             ", ".join(f"{s:.3g} S/m -> {c:.4f} mm/ms" for s, c in zip(sig, cv)), wall)
    return CvTable(sigma_S_per_m=sig, cv_mm_per_ms=cv, dx_mm=float(dx), dt_ms=float(dt),
                   length_mm=float(length_mm), celltype=celltype,
                   chi_per_mm=float(chi_per_mm), cm_uF_per_cm2=float(cm_uF_per_cm2),
                   wall_s=wall)


def calibrate_conductivity(target_cv_mm_per_ms: float, sigma_l: float, dx: float, dt: float, *,
                           celltype: str = "endo", chi_per_mm: float = 140.0,
                           cm_uF_per_cm2: float = 1.0, tolerance: float = 0.01) -> Calibration:
    """Find the conductivity scale giving ``target_cv_mm_per_ms`` along the fibres.

    Parameters
    ----------
    target_cv_mm_per_ms
        Wanted CV (mm/ms = m/s).
    sigma_l
        Fibre conductivity (S/m) before scaling.
    dx, dt
        Voxel size (mm) and time step (ms) of the simulations that will use the scale.
    tolerance
        Relative CV error accepted.

    Raises
    ------
    InputError
        If no scale in [1/8, 64] reaches the target (or dt is too large for the
        scaled conductivities).
    """
    if not (target_cv_mm_per_ms > 0 and sigma_l > 0):
        raise InputError(f"target CV and sigma_l must be > 0, got {target_cv_mm_per_ms} mm/ms, "
                         f"{sigma_l} S/m")
    kw = dict(celltype=celltype, chi_per_mm=chi_per_mm, cm_uF_per_cm2=cm_uF_per_cm2)
    # the largest scale the explicit step allows: dt <= 2 / rho, rho ~ 4 D / dx^2 in 1-D
    d_max = 2.0 * dx * dx / (4.0 * dt) * 0.95
    s_max = min(64.0, d_max * chi_per_mm * cm_uF_per_cm2 * 0.01 / sigma_l)
    # one batch of 25 geometric scales (one tensor, one run), log-log interpolation
    scales = np.geomspace(1.0 / 8.0, s_max, 25)
    # the batch gives up on cables slower than half the target; the check run does not
    floor = 0.5 * target_cv_mm_per_ms

    def measure(sc: np.ndarray, check: bool) -> np.ndarray:
        return conduction_velocity(sigma_l * sc, dx, dt, min_cv_mm_per_ms=0.08 if check
                                   else floor, **kw)

    estimate, achieved = scan_scales(
        measure, scales, target_cv_mm_per_ms, where="on the cable",
        what=f"conductivity scale in [1/8, {s_max:.3g}] gives CV", dx=dx, dt=dt)
    if not abs(achieved / target_cv_mm_per_ms - 1.0) <= max(tolerance, 0.02):
        log.warning("CV calibration reached %.4f mm/ms for target %.4f", achieved,
                    target_cv_mm_per_ms)
    log.info("CV calibration at dx %.3g mm, dt %.3g ms: scale %.4f gives %.4f mm/ms (target "
             "%.4f)", dx, dt, estimate, achieved, target_cv_mm_per_ms)
    return Calibration(scale=float(estimate), target_cv_mm_per_ms=float(target_cv_mm_per_ms),
                       achieved_cv_mm_per_ms=achieved, sigma_l_S_per_m=float(sigma_l),
                       dx_mm=float(dx), dt_ms=float(dt), celltype=celltype)


def scan_scales(measure: Callable[..., np.ndarray], scales: np.ndarray, target: float, *,
                where: str, what: str, dx: float, dt: float) -> tuple[float, float]:
    """The scale at which ``measure`` reaches ``target``: one batch, then one check run.

    Parameters
    ----------
    measure
        ``measure(scales, check)`` -> front speeds (k,) mm/ms for conductivity scales
        (k,); ``check`` is False for the batch (which may raise
        :class:`SimulationError`), True for the run at the found scale.
    scales
        Scales of the batch, increasing, (k,).
    target
        Wanted speed, mm/ms.
    where, what
        The setting and the search, for the messages ("on the cable", "conductivity scale
        in [1/8, 64] gives CV").

    Returns
    -------
    (scale, achieved)
        The log-log interpolated scale and the speed measured at it (mm/ms).

    Raises
    ------
    InputError
        The batch fails, or no scale of it reaches the target.
    """
    try:
        cv = measure(scales, False)
    except SimulationError as exc:
        raise InputError(f"calibration failed {where}: {exc}") from exc
    estimate = _interpolate(scales, cv, target)
    if estimate is None:
        raise InputError(f"no {what} {target:.4g} mm/ms at dx {dx} mm, dt {dt} ms (speeds "
                         f"{np.round(cv, 3).tolist()} mm/ms)")
    return estimate, float(measure(np.array([estimate]), True)[0])


def _interpolate(scales: np.ndarray, cv: np.ndarray, target: float) -> float | None:
    """Scale where the piecewise log-log line through (scale, cv) meets the target."""
    ok = np.isfinite(cv)
    s, c = np.log(scales[ok]), np.log(cv[ok])
    if s.size < 2 or not (c.min() <= math.log(target) <= c.max()):
        return None
    order = np.argsort(c)
    return float(math.exp(np.interp(math.log(target), c[order], s[order])))


@functools.lru_cache(maxsize=32)
def _reference_cvs(sigma_l: float, sigma_t: float, dx: float, dt: float, celltype: str,
                   chi_per_mm: float, cm_uF_per_cm2: float) -> tuple[float, float]:
    """The fine-grid CVs of :func:`calibrate_directions` (kept per process: every coarse
    grid of a resolution study calibrates against the same two reference cables)."""
    cv = conduction_velocity(np.array([sigma_l, sigma_t]), dx, dt, celltype=celltype,
                             chi_per_mm=chi_per_mm, cm_uF_per_cm2=cm_uF_per_cm2)
    return float(cv[0]), float(cv[1])


def calibrate_directions(sigma_l: float, sigma_t: float, dx: float, dt: float, *,
                         reference_dx: float = 0.1, reference_dt: float = 0.005,
                         celltype: str = "endo", chi_per_mm: float = 140.0,
                         cm_uF_per_cm2: float = 1.0,
                         targets: tuple[float, float] | None = None
                         ) -> tuple[Calibration, Calibration]:
    """Scales for sigma_l and sigma_t separately, each reproducing the fine-grid CV.

    The target of each direction is the CV of a planar wave at ``reference_dx`` /
    ``reference_dt`` with the unscaled conductivity, or ``targets`` (mm/ms, along and
    across) when given (e.g. the converged relation's,
    :func:`pipeline.monodomain.cv_relation.cv_from_sigma` ``"continuum"``); coarse grids slow
    the transverse direction (short space constant) more than the fibre direction, so one
    common factor cannot restore both.
    """
    kw = dict(celltype=celltype, chi_per_mm=chi_per_mm, cm_uF_per_cm2=cm_uF_per_cm2)
    ref = np.array(targets, dtype=np.float64) if targets is not None else np.array(
        _reference_cvs(float(sigma_l), float(sigma_t), float(reference_dx),
                       float(reference_dt), celltype, float(chi_per_mm), float(cm_uF_per_cm2)))
    if np.isnan(ref).any():
        raise InputError(f"no propagation on the reference cable (dx {reference_dx} mm) for "
                         f"sigma_l {sigma_l}, sigma_t {sigma_t} S/m")
    return (calibrate_conductivity(float(ref[0]), sigma_l, dx, dt, **kw),
            calibrate_conductivity(float(ref[1]), sigma_t, dx, dt, **kw))

