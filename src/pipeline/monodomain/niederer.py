"""The Niederer et al. 2011 N-version benchmark on this solver.

Source: S.A. Niederer et al., "Verification of cardiac tissue electrophysiology simulators
using an N-version benchmark", Phil Trans R Soc A 369:4331-4351 (2011). A 20 x 7 x 3 mm
slab with fibres along x; intra/extracellular conductivities 0.17/0.019 and 0.62/0.24 S/m
along/across the fibres, reduced to monodomain conductivities by the harmonic mean per
direction, sigma = s_i s_e / (s_i + s_e); chi = 140 /mm, Cm = 1 uF/cm^2; TP06 epicardial
cells from the paper's initial state; a stimulus of 50,000 uA/cm^3 for 2 ms in the
1.5 mm cube at the origin corner; activation = first upward crossing of 0 mV, reported at
P1..P9. Published: at dx 0.1 mm / dt 0.005 ms the eleven codes gave P8 between 37.8 and
48.7 ms; the converged value is about 42.5-43 ms.

The voxel grid is cell-centred (voxel centres at (i + 1/2) dx, i.e. the voxels tile the
slab exactly); the stimulus weights every voxel by the fraction of it inside the
stimulus cube, and the activation time at a point is the trilinear interpolation (or, at
the slab's corners and faces, linear extrapolation) of the voxel activation times.
Point labels follow fenicsx-beat's demo: P1..P8 are the corners (x, y, z) in
{0, L}^3 ordered (0,0,0), (0,Ly,0), (Lx,0,0), (Lx,Ly,0), (0,0,Lz), (0,Ly,Lz), (Lx,0,Lz),
(Lx,Ly,Lz); P9 is the centre. P8 is the corner opposite the stimulus in every labelling.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from pipeline.errors import InputError
from pipeline.monodomain.problem import Conductivities, Grid, MonodomainProblem
from pipeline.monodomain.stimulus import Stimulus, volume_to_membrane

log = logging.getLogger(__name__)

SLAB_MM = (20.0, 7.0, 3.0)
SIGMA_I = (0.17, 0.019)      # S/m, along / across fibres
SIGMA_E = (0.62, 0.24)
CHI_PER_MM = 140.0
CM_UF_PER_CM2 = 1.0
STIM_UA_PER_MM3 = 50.0       # 50,000 uA/cm^3
STIM_MS = 2.0
STIM_CUBE_MM = 1.5
#: TP06 epicardial initial state of the benchmark (ten Tusscher & Panfilov 2006), in the
#: order of pipeline.cell.tp06.STATE_NAMES.
INITIAL_STATE = {
    "V": -85.23, "K_i": 136.89, "Na_i": 8.604, "Ca_i": 0.000126, "Ca_SR": 3.64,
    "Ca_ss": 0.00036, "R_prime": 0.9073, "Xr1": 0.00621, "Xr2": 0.4712, "Xs": 0.0095,
    "m": 0.00172, "h": 0.7444, "j": 0.7045, "d": 3.373e-05, "f": 0.7888, "f2": 0.9755,
    "fCass": 0.9953, "s": 0.999998, "r": 2.42e-08,
}


def points() -> dict[str, tuple[float, float, float]]:
    """The nine report points (mm)."""
    lx, ly, lz = SLAB_MM
    return {"P1": (0.0, 0.0, 0.0), "P2": (0.0, ly, 0.0), "P3": (lx, 0.0, 0.0),
            "P4": (lx, ly, 0.0), "P5": (0.0, 0.0, lz), "P6": (0.0, ly, lz),
            "P7": (lx, 0.0, lz), "P8": (lx, ly, lz), "P9": (lx / 2, ly / 2, lz / 2)}


def monodomain_sigma() -> tuple[float, float]:
    """(sigma_l, sigma_t) in S/m: harmonic means of the intra- and extracellular values."""
    return tuple(si * se / (si + se) for si, se in zip(SIGMA_I, SIGMA_E))  # type: ignore[return-value]


def slab_problem(dx: float, dt: float, duration_ms: float = 100.0) -> MonodomainProblem:
    """The benchmark as a :class:`MonodomainProblem` (one simulation) at voxel size dx (mm)."""
    from pipeline.cell import tp06
    if not (0 < dx <= 1.5) or not (0 < dt <= 1.0):
        raise InputError(f"Niederer benchmark needs 0 < dx <= 1.5 mm and 0 < dt <= 1 ms; got "
                         f"dx {dx}, dt {dt}")
    shape = tuple(int(round(L / dx)) for L in SLAB_MM)
    if any(abs(s * dx - L) > 1e-6 for s, L in zip(shape, SLAB_MM)):
        raise InputError(f"dx = {dx} mm does not divide the slab {SLAB_MM} mm")
    mask = np.ones(shape, dtype=bool)
    grid = Grid(origin=np.full(3, dx / 2), spacing=np.full(3, dx), mask=mask)
    n = grid.n_tissue
    fibre = np.tile([1.0, 0.0, 0.0], (n, 1))
    # fraction of each voxel inside the stimulus cube [0, 1.5]^3
    lo = grid.xyz - dx / 2
    frac = np.prod(np.clip((STIM_CUBE_MM - lo) / dx, 0.0, 1.0), axis=1)
    inside = np.flatnonzero(frac > 0)
    amp = -volume_to_membrane(STIM_UA_PER_MM3, CHI_PER_MM, CM_UF_PER_CM2)
    stim = Stimulus(voxels=inside, start_ms=0.0, duration_ms=STIM_MS, amplitude=amp,
                    name="S1", weights=frac[inside])
    sl, st = monodomain_sigma()
    state = np.array([INITIAL_STATE[name] for name in tp06.STATE_NAMES])
    return MonodomainProblem(
        grid=grid, fibre=fibre,
        conductivities=Conductivities(sigma_l=[sl], sigma_t=[st], sigma_fast_endo=[sl]),
        celltype=np.full(n, tp06.CELLTYPES["epi"], dtype=np.uint8),
        initial_states=np.broadcast_to(state, (1, 4, state.size)),
        stimuli=((stim,),), dt_ms=dt, duration_ms=duration_ms,
        chi_per_mm=CHI_PER_MM, cm_uF_per_cm2=CM_UF_PER_CM2,
        records=({"benchmark": "niederer2011", "dx_mm": dx, "dt_ms": dt},))


def interpolate(grid: Grid, values: np.ndarray, xyz: ArrayLike) -> float | np.ndarray:
    """Trilinear inter-/extrapolation of voxel values at points of a full box grid.

    Parameters
    ----------
    grid
        The box grid (every voxel tissue).
    values
        (n,) voxel values (e.g. activation times, ms).
    xyz
        One point (3,) or points (m, 3), mm. Outside the voxel centres' box the nearest
        cell's trilinear form extrapolates.

    Returns
    -------
    float or ndarray
        The value at the point, or (m,) values at the points.
    """
    field = grid.field(values)
    pts = np.asarray(xyz, dtype=np.float64)
    pos = (np.atleast_2d(pts) - grid.origin) / grid.spacing               # (m, 3)
    i0 = np.clip(np.floor(pos).astype(int), 0, np.array(field.shape) - 2)
    f = pos - i0
    out = np.zeros(len(pos))
    for corner in np.ndindex(2, 2, 2):
        c = np.array(corner)
        w = np.prod(np.where(c == 1, f, 1.0 - f), axis=1)
        out += w * field[tuple((i0 + c).T)]
    return float(out[0]) if pts.ndim == 1 else out


@dataclass(frozen=True)
class NiedererResult:
    """Activation times (ms) at P1..P9 and the run's figures."""

    dx_mm: float
    dt_ms: float
    times_ms: dict[str, float]
    n_voxels: int
    steps: int
    wall_s: float

    def as_dict(self) -> dict[str, float]:
        return {**self.times_ms, "dx_mm": self.dx_mm, "dt_ms": self.dt_ms,
                "n_voxels": self.n_voxels, "steps": self.steps, "wall_s": self.wall_s}


def run_niederer(dx: float, dt: float, *, duration_ms: float = 150.0, dtype: str = "float32",
                 compile: bool = False, diffusion: str = "explicit",
                 device: str = "cpu") -> NiedererResult:
    """Run the benchmark until every voxel has activated (at most ``duration_ms``)."""
    import torch

    from pipeline.monodomain.solver import MonodomainSolver
    problem = slab_problem(dx, dt, duration_ms)
    solver = MonodomainSolver(problem, device=device, dtype=getattr(torch, dtype),
                              compile=compile, diffusion=diffusion, check_every=100)
    t0 = time.perf_counter()
    result = solver.run(stop_when_activated=True, progress=True)
    wall = time.perf_counter() - t0
    act = result.activation_ms[0].astype(np.float64)
    if np.isnan(act).any():
        raise InputError(f"the slab did not activate completely within {duration_ms} ms")
    times = {name: round(interpolate(problem.grid, act, xyz), 4) for name, xyz in points().items()}
    log.info("Niederer dx %.3g mm dt %.3g ms: %s (%.1f s)", dx, dt, times, wall)
    return NiedererResult(dx_mm=dx, dt_ms=dt, times_ms=times, n_voxels=problem.grid.n_tissue,
                          steps=result.steps, wall_s=round(wall, 2))
