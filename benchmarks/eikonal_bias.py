"""The eikonal against the monodomain from a point-like source: the curvature correction.

The resolution study (docs/fidelity-log.md, "Session 8") found R-E+ with its eikonal at 0.5 mm
early against the 0.5 mm monodomain in the LBBB beat, by 3-4 % of the activation time. The
eikonal's CVs (``cv_from_sigma``) are planar-wave CVs of 0.1 mm cables; a front leaving a
small stimulated region is convex, and the monodomain slows it (the eikonal-curvature
relation, :mod:`pipeline.monodomain.curvature`).

The monodomain reference: TP06 endocardial tissue, sigma 0.15 / 0.04 S/m (the study's),
per-direction calibration at its dx, fibres along x, a ball of radius 2.5 mm stimulated.
By symmetry it runs on one octant (the ball at the corner of an 8 mm cube with no-flux
faces). The eikonal, plain and curvature-corrected, runs on the whole 16 mm cube with the
ball at its centre (so that the probes are not on walls). Printed: the apparent CV
(mm/ms) between 3 and 7.5 mm from the centre along the fibres (x), across them (y) and
along the diagonal, and the monodomain's lag behind each eikonal there.

Run: ``python benchmarks/eikonal_bias.py --mono-dx 0.1 --eikonal-dx 0.5 0.25 [--json F]``
(the 0.1 mm monodomain, 512,000 voxels, compiled: about 10 minutes on 2 cores; 0.25 mm:
under a minute; measured figures in docs/fidelity-log.md, "Session 9").
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from scipy.interpolate import RegularGridInterpolator

from pipeline.cell import tp06
from pipeline.monodomain.curvature import corrected_times
from pipeline.monodomain.eikonal import EikonalSolver, problem_inputs
from pipeline.monodomain.problem import Conductivities, Grid, MonodomainProblem
from pipeline.monodomain.solver import MonodomainSolver
from pipeline.monodomain.stimulus import Stimulus
from pipeline.simulate.calibration import direction_calibration

SIGMA = (0.15, 0.04)
DT_MS = {0.5: 0.04, 0.25: 0.02, 0.2: 0.01, 0.1: 0.005}
#: Distances (mm) from the ball's centre at which the times are compared.
D_MM = np.arange(3.0, 7.51, 0.5)
#: Probe directions: along the fibres, across them, and the diagonal (unit vectors).
DIRECTIONS = {"x": np.array([1.0, 0.0, 0.0]), "y": np.array([0.0, 1.0, 0.0]),
              "diag": np.ones(3) / np.sqrt(3.0)}


def cube(dx: float, half_mm: float, centred: bool, sigma: tuple[float, float],
         dt: float) -> MonodomainProblem:
    """A cube of endocardial TP06 tissue, fibres along x, a ball of radius 2.5 mm
    stimulated at its centre (``centred``, edge 2 half_mm) or at its corner (edge half_mm,
    the octant of the centred one)."""
    n = int(round((2 * half_mm if centred else half_mm) / dx))
    mask = np.ones((n, n, n), dtype=bool)
    centre = (np.argwhere(mask) + 0.5) * dx - (half_mm if centred else 0.0)
    state = tp06.initial_state("endo", dtype=torch.float64).numpy()
    stim = Stimulus(voxels=np.flatnonzero(np.linalg.norm(centre, axis=1) <= 2.5),
                    start_ms=0.0, duration_ms=2.0, amplitude=-80.0, name="ball")
    return MonodomainProblem(
        grid=Grid(origin=np.zeros(3), spacing=np.full(3, dx), mask=mask),
        fibre=np.tile([1.0, 0.0, 0.0], (mask.size, 1)),
        conductivities=Conductivities(sigma_l=np.array([sigma[0]]),
                                      sigma_t=np.array([sigma[1]]),
                                      sigma_fast_endo=np.array([sigma[0]])),
        celltype=np.full(mask.size, tp06.CELLTYPES["endo"], dtype=np.uint8),
        initial_states=np.broadcast_to(state, (1, 4, state.size)).copy(),
        stimuli=((stim,),), dt_ms=dt, duration_ms=40.0)


def probe(times: np.ndarray, dx: float, half_mm: float, centred: bool
          ) -> dict[str, np.ndarray]:
    """Times (ms) at D_MM along each direction from the ball's centre (trilinear; the
    octant's probes a quarter voxel off its walls, as the centred cube's voxel centres)."""
    n = int(round((2 * half_mm if centred else half_mm) / dx))
    ax = (np.arange(n) + 0.5) * dx - (half_mm if centred else 0.0)
    f = RegularGridInterpolator((ax, ax, ax), times.reshape(n, n, n), bounds_error=False,
                                fill_value=None)
    off = np.full(3, 0.25)
    out = {}
    for name, u in DIRECTIONS.items():
        pts = D_MM[:, None] * u + (off * (u == 0) if name != "diag" else 0.0)
        out[name] = f(np.clip(pts, ax[0], ax[-1]))
    return out


def apparent_cv(times: np.ndarray) -> float:
    return float(1.0 / np.polyfit(D_MM, times, 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mono-dx", type=float, default=0.25, choices=sorted(DT_MS))
    ap.add_argument("--eikonal-dx", type=float, nargs="+", default=[0.5, 0.25])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dx, dt = args.mono_dx, DT_MS[args.mono_dx]
    cal = direction_calibration(SIGMA[0], SIGMA[1], dx, dt, cv_relation="cable_0.1mm")
    scaled = (SIGMA[0] * cal["l"]["scale"], SIGMA[1] * cal["t"]["scale"])
    t0 = time.perf_counter()
    p = cube(dx, 8.0, False, scaled, dt)
    act = MonodomainSolver(p, compile=dx < 0.5).run(stop_when_activated=True).activation_ms[0]
    mono = probe(np.asarray(act, dtype=np.float64), dx, 8.0, False)
    result = {"monodomain": {"dx_mm": dx, "dt_ms": dt, "voxels": p.grid.n_tissue,
                             "scales": [cal["l"]["scale"], cal["t"]["scale"]],
                             "wall_s": time.perf_counter() - t0,
                             "cv": {k: apparent_cv(v) for k, v in mono.items()}},
              "eikonal": []}
    print(json.dumps(result["monodomain"]), flush=True)
    for edx in args.eikonal_dx:
        e = cube(edx, 8.0, True, SIGMA, 0.04)
        solver = EikonalSolver(e.grid.mask, edx, e.fibre)
        cab = "cable_0.1mm"     # as the monodomain above (sessions 9-12)
        cv_l, cv_t, src = problem_inputs(e, cv_relation=cab)
        runs = {"plain": solver.solve(cv_l, cv_t, src),
                "curvature": corrected_times(solver, e, cv_relation=cab)[0]}
        for name, t in runs.items():
            at = probe(t[0].double().numpy(), edx, 8.0, True)
            row = {"dx_mm": edx, "eikonal": name,
                   "cv": {k: apparent_cv(v) for k, v in at.items()},
                   "cv_error_pct": {k: 100.0 * (apparent_cv(v) / result["monodomain"]["cv"][k]
                                                - 1.0) for k, v in at.items()},
                   "lag_ms_at_3_5_7.5mm": {k: (mono[k] - v)[[0, 4, 9]].round(2).tolist()
                                           for k, v in at.items()}}
            result["eikonal"].append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
