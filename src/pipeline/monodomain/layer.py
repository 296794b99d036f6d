"""The front speed of a fast endocardial layer on the myocardium, and its CV calibration.

The fast subendocardial layer (isotropic ``sigma_fast_endo``, ``fast_endo_depth_mm`` deep)
drives the myocardium it covers, and the current it loses into that sink slows it: on a
0.1 mm grid a 1 mm layer at 0.8 S/m on myocardium (sigma_l 0.15, sigma_t 0.04 S/m) carries
its front at 0.94 of the speed of an isolated cable of the same conductivity. Coarse grids
get that load wrong, more so than they get a cable wrong: with each conductivity
calibrated on its own cable (:func:`pipeline.monodomain.cv.calibrate_directions`), the
layer's front runs at 0.88 / 0.83 of the cable speed at 0.5 / 1 mm; with the sigma_l scale
(the rule before session 23) at 0.97 / 1.05. So the layer is calibrated where it lives:
on a layered slab (:func:`layer_slab`), its scale chosen so that the front in the layer
travels as on the 0.1 mm slab (:func:`calibrate_fast_layer`).

The slab is two-dimensional (one voxel thick in z, no-flux faces): x along the layer, y
across the wall from the endocardial face y = 0. The layer is the voxels whose centre lies
within ``depth_mm`` of that face, and always the first row (the rule of
:func:`pipeline.monodomain.patterns.fast_layers` for a flat wall: one voxel at 2 mm for a
1 mm layer); below it myocardium with the fibres along x (sigma_l along the front's travel,
sigma_t across the wall; with the fibres out of the plane the 0.1 mm layer is 1 % slower).
A stimulus at the layer's x = 0 end starts the front; its speed is the slope of activation
time along the layer's middle row over the middle third of the slab.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from pipeline.errors import InputError
from pipeline.monodomain.cv import Calibration, scan_scales
from pipeline.monodomain.problem import Conductivities, Grid, MonodomainProblem
from pipeline.monodomain.stimulus import Stimulus

log = logging.getLogger(__name__)

#: The reference grid of the layered slab: dx 0.1 mm as the cables, dt 0.0025 ms (the
#: explicit limit of a 1 S/m layer in two dimensions at 0.1 mm is 0.0035 ms).
REFERENCE_DX_MM, REFERENCE_DT_MS = 0.1, 0.0025


@dataclass(frozen=True)
class SlabGeometry:
    """Size of a layered slab (mm): ``length`` along the layer, ``myocardium`` below it.

    The defaults give the 0.1 mm front speed of a 1 mm, 0.8 S/m layer to 1e-4 of a slab
    20 mm long on 5 mm of myocardium (1.3969 against 1.3970 mm/ms) in a quarter of the time.
    """

    length_mm: float = 12.0
    myocardium_mm: float = 3.0


def layer_slab(sigma_fast: np.ndarray, dx: float, dt: float, *, depth_mm: float,
               sigma_l: float, sigma_t: float, geometry: SlabGeometry = SlabGeometry(),
               celltype: str = "endo", chi_per_mm: float = 140.0,
               cm_uF_per_cm2: float = 1.0) -> tuple[MonodomainProblem, np.ndarray]:
    """A batch of layered slabs, one per fast-layer conductivity in ``sigma_fast``.

    Parameters
    ----------
    sigma_fast
        (B,) isotropic conductivity of the layer (S/m), as used (already scaled).
    dx, dt
        Voxel edge (mm) and time step (ms).
    depth_mm
        The layer's depth below the endocardial face (mm).
    sigma_l, sigma_t
        The myocardium's conductivities (S/m), as used (already scaled).
    geometry
        The slab's length and the myocardium's thickness (at least 24 and 3 voxels).

    Returns
    -------
    problem
        The :class:`MonodomainProblem` (fast region ``"fast"``).
    row
        int (nx,) tissue indices of the layer's middle row, along x.
    """
    import torch

    from pipeline.cell import tp06
    sigma_fast = np.atleast_1d(np.asarray(sigma_fast, dtype=np.float64))
    if not depth_mm > 0:
        raise InputError(f"fast layer depth must be > 0 mm, got {depth_mm}")
    nx = int(math.ceil(max(geometry.length_mm, 24 * dx) / dx))
    layer_rows = max(1, int(np.sum((np.arange(64) + 0.5) * dx < depth_mm)))
    ny = layer_rows + int(math.ceil(max(geometry.myocardium_mm, 3 * dx) / dx))
    mask = np.ones((nx, ny, 1), dtype=bool)
    ijk = np.argwhere(mask)
    in_layer = ijk[:, 1] < layer_rows
    n = ijk.shape[0]
    n_stim = max(1, int(round(1.0 / dx)))
    stim = Stimulus(voxels=np.flatnonzero(in_layer & (ijk[:, 0] < n_stim)), start_ms=0.0,
                    duration_ms=2.0, amplitude=-80.0, name="layer_end")
    state = tp06.initial_state(celltype, dtype=torch.float64).numpy()
    b = sigma_fast.size
    problem = MonodomainProblem(
        grid=Grid(origin=np.zeros(3), spacing=np.full(3, dx), mask=mask),
        fibre=np.tile([1.0, 0.0, 0.0], (n, 1)),
        conductivities=Conductivities(sigma_l=np.full(b, sigma_l), sigma_t=np.full(b, sigma_t),
                                      sigma_fast_endo=sigma_fast),
        celltype=np.full(n, tp06.CELLTYPES[celltype], dtype=np.uint8),
        initial_states=np.broadcast_to(state, (b, 4, state.size)).copy(),
        stimuli=tuple((stim,) for _ in range(b)), dt_ms=dt,
        duration_ms=10.0 + nx * dx / 0.1, fast_regions={"fast": in_layer},
        chi_per_mm=chi_per_mm, cm_uF_per_cm2=cm_uF_per_cm2)
    middle = min(layer_rows - 1, int(0.5 * depth_mm / dx))
    row = np.ravel_multi_index((np.arange(nx), np.full(nx, middle), np.zeros(nx, int)),
                               mask.shape)
    return problem, row


def layer_cv(sigma_fast: np.ndarray, dx: float, dt: float, *, depth_mm: float,
             sigma_l: float, sigma_t: float, geometry: SlabGeometry = SlabGeometry(),
             dtype: str = "float64", **kw: float | str) -> np.ndarray:
    """Front speed (mm/ms) in the layer of each slab of :func:`layer_slab`.

    NaN where the front does not travel the fitted middle third. ``kw``: ``celltype``,
    ``chi_per_mm``, ``cm_uF_per_cm2``.
    """
    import torch

    from pipeline.monodomain.cv import cable_cv, fit_range
    from pipeline.monodomain.solver import MonodomainSolver

    problem, row = layer_slab(sigma_fast, dx, dt, depth_mm=depth_mm, sigma_l=sigma_l,
                              sigma_t=sigma_t, geometry=geometry, **kw)
    lo, hi = fit_range(row.size)
    result = MonodomainSolver(problem, dtype=getattr(torch, dtype), check_every=200).run(
        stop_when_activated=True, stop_voxels=row[:hi])
    return cable_cv(result.activation_ms[:, row].astype(np.float64), dx)


@functools.lru_cache(maxsize=32)
def reference_layer_cv(sigma_fast: float, *, depth_mm: float, sigma_l: float,
                       sigma_t: float, **kw: float | str) -> float:
    """The front speed (mm/ms) of the 0.1 mm layered slab: the calibration's target.

    Kept per process (the same inputs give the same slab): every coarse grid of a
    resolution study, and every calibration of one campaign, asks for the same reference.
    """
    cv = float(layer_cv(np.array([sigma_fast]), REFERENCE_DX_MM, REFERENCE_DT_MS,
                        depth_mm=depth_mm, sigma_l=sigma_l, sigma_t=sigma_t, **kw)[0])
    if not np.isfinite(cv):
        raise InputError(f"no front in the 0.1 mm layered slab for sigma_fast_endo "
                         f"{sigma_fast} S/m, sigma_l {sigma_l}, sigma_t {sigma_t} S/m, depth "
                         f"{depth_mm} mm")
    return cv


def calibrate_fast_layer(sigma_fast: float, dx: float, dt: float, *, depth_mm: float,
                         sigma_l: float, sigma_t: float, scale_l: float, scale_t: float,
                         target_cv_mm_per_ms: float | None = None,
                         celltype: str = "endo", chi_per_mm: float = 140.0,
                         cm_uF_per_cm2: float = 1.0) -> Calibration:
    """The scale for sigma_fast_endo that gives the layer its 0.1 mm front speed on this grid.

    The myocardium of the coarse slab takes its own calibration (``scale_l``,
    ``scale_t``); 25 geometric scales of the layer's conductivity run in one batch,
    log-log interpolation gives the scale, and a last run measures the speed it achieves.

    Parameters
    ----------
    sigma_fast
        The layer's conductivity before scaling (S/m).
    dx, dt
        The grid that will use the scale (mm, ms).
    depth_mm
        The layer's depth (``simulate.fast_endo_depth_mm``).
    sigma_l, sigma_t
        The myocardium's conductivities before scaling (S/m).
    scale_l, scale_t
        The myocardium's calibration on this grid.
    target_cv_mm_per_ms
        The 0.1 mm slab's front speed when already known (:func:`reference_layer_cv`).

    Raises
    ------
    InputError
        No front on the reference slab, or no scale in range reaching it.
    """
    kw = dict(celltype=celltype, chi_per_mm=chi_per_mm, cm_uF_per_cm2=cm_uF_per_cm2)
    t0 = time.perf_counter()
    target = target_cv_mm_per_ms or reference_layer_cv(sigma_fast, depth_mm=depth_mm,
                                                       sigma_l=sigma_l, sigma_t=sigma_t, **kw)
    # explicit diffusion in two dimensions: dt <= dx^2 / (4 D), D = 100 sigma / (chi Cm)
    d_max = dx * dx / (4.0 * dt) * 0.95
    s_max = min(16.0, d_max * chi_per_mm * cm_uF_per_cm2 * 0.01 / sigma_fast)
    scales = np.geomspace(0.5, s_max, 25)
    slab = dict(depth_mm=depth_mm, sigma_l=sigma_l * scale_l, sigma_t=sigma_t * scale_t, **kw)
    estimate, achieved = scan_scales(
        lambda sc, check: layer_cv(sigma_fast * sc, dx, dt, **slab), scales, target,
        where="on the slab", what=f"fast-layer scale in [0.5, {s_max:.3g}] gives the 0.1 mm "
        "front speed", dx=dx, dt=dt)
    if not abs(achieved / target - 1.0) <= 0.02:
        log.warning("fast-layer calibration reached %.4f mm/ms for target %.4f", achieved,
                    target)
    log.info("fast-layer calibration at dx %.3g mm, dt %.3g ms (depth %.3g mm): scale %.4f "
             "gives %.4f mm/ms (0.1 mm slab %.4f) in %.1f s", dx, dt, depth_mm, estimate,
             achieved, target, time.perf_counter() - t0)
    return Calibration(scale=float(estimate), target_cv_mm_per_ms=float(target),
                       achieved_cv_mm_per_ms=achieved, sigma_l_S_per_m=float(sigma_fast),
                       dx_mm=float(dx), dt_ms=float(dt), celltype=celltype)


# ---------------------------------------------------------------------- the layer's load

#: Depths (mm) at which the load of :func:`layer_load` was measured.
LOAD_DEPTHS_MM: np.ndarray = np.array([0.5, 0.75, 1.0, 1.5, 2.0, 3.0])
#: Per depth, the coefficients of ``log(1 - load) = c . (1, x, x^2, t, l, x l)`` with
#: x = log(sigma_fast / 0.75), t = log(sigma_t / 0.04), l = log(sigma_l / 0.15) (S/m);
#: least squares on 15 slabs per depth (sigma_fast 0.5 / 0.75 / 1; sigma_t 0.02 / 0.04 /
#: 0.06 at sigma_l 0.15; sigma_l 0.1 / 0.2 at sigma_t 0.04), measured with
#: :func:`layer_cv` at 0.1 mm (``benchmarks/layer_load.py``, JSON
#: docs/figures/layer_load.json). Within 0.23 % of every measured load.
LOAD_COEF: np.ndarray = np.array([
    [-2.10758, 0.26490, -0.16379, 0.27150, -0.19354, 0.24443],
    [-2.44416, 0.29752, -0.17046, 0.27856, -0.18743, 0.22994],
    [-2.84888, 0.35025, -0.18270, 0.28470, -0.18328, 0.21807],
    [-3.38855, 0.44756, -0.20861, 0.29600, -0.18390, 0.21447],
    [-3.84730, 0.55222, -0.23336, 0.31675, -0.19529, 0.23667],
    [-4.64262, 0.75620, -0.31161, 0.41612, -0.25837, 0.36832],
])
#: The conductivities (S/m) the load was measured over; values outside are clipped to it.
LOAD_BOX: dict[str, tuple[float, float]] = {"sigma_fast": (0.5, 1.0), "sigma_t": (0.02, 0.06),
                                            "sigma_l": (0.1, 0.2)}


def load_features(sigma_fast: np.ndarray, sigma_l: np.ndarray, sigma_t: np.ndarray
                  ) -> np.ndarray:
    """The regressors of :data:`LOAD_COEF`, (..., 6), for conductivities in S/m."""
    x = np.log(np.asarray(sigma_fast, dtype=np.float64) / 0.75)
    t = np.log(np.asarray(sigma_t, dtype=np.float64) / 0.04)
    ll = np.log(np.asarray(sigma_l, dtype=np.float64) / 0.15)
    x, t, ll = np.broadcast_arrays(x, t, ll)
    return np.stack([np.ones_like(x), x, x * x, t, ll, x * ll], axis=-1)


def layer_load(sigma_fast: np.ndarray | float, sigma_l: np.ndarray | float,
               sigma_t: np.ndarray | float, depth_mm: float) -> np.ndarray:
    """Front speed of a fast layer on its myocardium over that of a free cable (< 1).

    A fast layer drives the myocardium below it and loses current to it, so its front is
    slower than :func:`pipeline.monodomain.cv_relation.cv_from_sigma` of its conductivity: on
    0.1 mm slabs (:func:`layer_cv`) 0.942 for a 1 mm, 0.75 S/m layer on 0.15 / 0.04 S/m
    myocardium, 0.878 at 0.5 mm depth, 0.990 at 3 mm; more loaded for a larger
    sigma_fast, sigma_t or a smaller sigma_l. From :data:`LOAD_COEF`: the fit at each
    measured depth, linear in log depth between them.

    Parameters
    ----------
    sigma_fast, sigma_l, sigma_t
        Conductivities (S/m), broadcast together; clipped to :data:`LOAD_BOX` (a warning
        names the first value outside it).
    depth_mm
        The layer's depth; above 3 mm the 3 mm load is used (at most 1.4 % there).

    Returns
    -------
    ndarray
        float64, the broadcast shape: the speed factor.

    Raises
    ------
    InputError
        A depth below 0.5 mm (not measured: the load grows steeply there).
    """
    if not (math.isfinite(depth_mm) and depth_mm >= LOAD_DEPTHS_MM[0]):
        raise InputError(f"fast layer depth {depth_mm} mm: the layer's load on the "
                         f"myocardium is measured from {LOAD_DEPTHS_MM[0]} mm on; use a "
                         "deeper simulate.fast_endo_depth_mm or simulate.eikonal_layer_load: "
                         "false")
    values = {}
    for name, value in (("sigma_fast", sigma_fast), ("sigma_l", sigma_l),
                        ("sigma_t", sigma_t)):
        arr = np.asarray(value, dtype=np.float64)
        low, high = LOAD_BOX[name]
        outside = (arr < low * (1 - 1e-9)) | (arr > high * (1 + 1e-9))
        if np.any(outside):
            log.warning("layer load: %s = %g S/m lies outside the measured [%g, %g]; the "
                        "edge's load is used", name, float(arr[outside].ravel()[0]), low, high)
        values[name] = np.clip(arr, low, high)
    feats = load_features(values["sigma_fast"], values["sigma_l"], values["sigma_t"])
    lh = math.log(min(float(depth_mm), float(LOAD_DEPTHS_MM[-1])))
    coef = np.array([np.interp(lh, np.log(LOAD_DEPTHS_MM), LOAD_COEF[:, j])
                     for j in range(LOAD_COEF.shape[1])])
    return 1.0 - np.exp(feats @ coef)


def loaded_layer_cv(sigma_fast: float, sigma_l: float, sigma_t: float, depth_mm: float,
                    relation: str, *, chi_per_mm: float = 140.0, cm_uF_per_cm2: float = 1.0
                    ) -> float:
    """A fast layer's front speed on its myocardium (mm/ms) by a CV-sigma relation: the
    relation's CV of ``sigma_fast`` (:func:`pipeline.monodomain.cv_relation.cv_from_sigma`)
    times :func:`layer_load`. It is the reaction-eikonal mode's layer speed and the
    monodomain's calibration target for the layer under ``simulate.cv_relation``."""
    from pipeline.monodomain.cv_relation import cv_from_sigma

    cv = cv_from_sigma(sigma_fast, relation, chi_per_mm=chi_per_mm, cm_uF_per_cm2=cm_uF_per_cm2)
    return float(cv) * float(np.asarray(layer_load(sigma_fast, sigma_l, sigma_t, depth_mm)))


def fit_load(depth_mm: np.ndarray, sigma_fast: np.ndarray, sigma_l: np.ndarray,
             sigma_t: np.ndarray, load: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:data:`LOAD_DEPTHS_MM` and :data:`LOAD_COEF` from measured loads (one per slab).

    Returns
    -------
    depths
        (k,) the distinct depths (mm).
    coef
        (k, 6) least-squares coefficients per depth.
    """
    depth_mm = np.asarray(depth_mm, dtype=np.float64)
    depths = np.unique(depth_mm)
    coef = []
    for h in depths:
        sel = depth_mm == h
        x = load_features(np.asarray(sigma_fast)[sel], np.asarray(sigma_l)[sel],
                          np.asarray(sigma_t)[sel])
        c, *_ = np.linalg.lstsq(x, np.log(1.0 - np.asarray(load)[sel]), rcond=None)
        coef.append(c)
    return depths, np.array(coef)
