"""From a small source: the curvature-corrected eikonal against the converged monodomain.

A sheet of endocardial TP06 tissue (2-D: one voxel thick, no-flux faces), fibres along x,
sigma 0.15 / 0.04 S/m (the resolution study's, uncalibrated), a disc of radius ``--radius``
stimulated at its centre. The monodomain runs on one quarter (the disc at the corner of an
8 mm square; by symmetry) at two voxel edges with one time step, and is extrapolated to
dx -> 0 (second order). The eikonal runs on the whole 16 mm square (so that no probe lies
on a wall) at the finer edge, with the speeds of each CV-sigma relation, plain and with
the curvature correction (:func:`pipeline.monodomain.curvature.corrected_times`, the
simulate stage's two solves). Every map is read bilinearly (the quarter mirrored) at
3-7.5 mm from the centre along the fibres (x), across them (y) and along the diagonal.
Printed: each model's time there minus the converged monodomain's (ms, at 3 / 5 / 7.5 mm)
and the apparent CV over 3-7.5 mm. The eikonal's disc starts at 0 ms, the monodomain's
after its latency: each eikonal map is shifted so that its mean time at 3 mm over the three
directions is the converged monodomain's. docs/fidelity-log.md, "Session 31".

    python benchmarks/point_source_converged.py [--dx 0.1 0.05] [--dt 0.001] [--radius 2.5]
        [--json F]

About 6 minutes on 2 cores with the defaults.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.interpolate import RegularGridInterpolator

SIGMA_L, SIGMA_T = 0.15, 0.04
HALF_MM = 8.0
D_MM = np.arange(3.0, 7.51, 0.5)
DIRECTIONS = {"x": np.array([1.0, 0.0]), "y": np.array([0.0, 1.0]),
              "diag": np.array([1.0, 1.0]) / np.sqrt(2.0)}


def sheet(dx: float, dt: float, radius_mm: float, centred: bool):
    """The sheet's problem: the whole square (``centred``) or its quarter."""
    from pipeline.cell import tp06
    from pipeline.monodomain.problem import Conductivities, Grid, MonodomainProblem
    from pipeline.monodomain.stimulus import Stimulus

    n = int(round((2 * HALF_MM if centred else HALF_MM) / dx))
    mask = np.ones((n, n, 1), dtype=bool)
    xy = (np.argwhere(mask)[:, :2] + 0.5) * dx - (HALF_MM if centred else 0.0)
    state = tp06.initial_state("endo", dtype=torch.float64).numpy()
    disc = np.flatnonzero(np.linalg.norm(xy, axis=1) <= radius_mm)
    stim = Stimulus(voxels=disc, start_ms=0.0, duration_ms=2.0, amplitude=-80.0, name="disc")
    return MonodomainProblem(
        grid=Grid(origin=np.zeros(3), spacing=np.full(3, dx), mask=mask),
        fibre=np.tile([1.0, 0.0, 0.0], (mask.size, 1)),
        conductivities=Conductivities(sigma_l=np.array([SIGMA_L]), sigma_t=np.array([SIGMA_T]),
                                      sigma_fast_endo=np.array([SIGMA_L])),
        celltype=np.full(mask.size, tp06.CELLTYPES["endo"], dtype=np.uint8),
        initial_states=np.broadcast_to(state, (1, 4, state.size)).copy(),
        stimuli=((stim,),), dt_ms=dt, duration_ms=40.0)


def probe(times: np.ndarray, dx: float, centred: bool) -> dict[str, np.ndarray]:
    """Times (ms) at D_MM along each direction; the quarter's map is mirrored first."""
    n = int(round((2 * HALF_MM if centred else HALF_MM) / dx))
    amap = times.reshape(n, n)
    if not centred:
        amap = np.concatenate([amap[::-1], amap], axis=0)
        amap = np.concatenate([amap[:, ::-1], amap], axis=1)
        n *= 2
    ax = (np.arange(n) + 0.5) * dx - HALF_MM
    f = RegularGridInterpolator((ax, ax), amap)
    return {name: f(D_MM[:, None] * u) for name, u in DIRECTIONS.items()}


def apparent_cv(t: np.ndarray) -> float:
    return float(1.0 / np.polyfit(D_MM, t, 1)[0])


def main(argv: list[str] | None = None) -> int:
    from pipeline.monodomain.curvature import corrected_times
    from pipeline.monodomain.cv_relation import CV_RELATIONS
    from pipeline.monodomain.eikonal import EikonalSolver, problem_inputs
    from pipeline.monodomain.solver import MonodomainSolver

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dx", type=float, nargs=2, default=[0.1, 0.05])
    ap.add_argument("--dt", type=float, default=0.001)
    ap.add_argument("--radius", type=float, default=2.5, help="the disc's radius (mm)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    coarse, fine = sorted(args.dx, reverse=True)
    times: dict[str, dict[str, np.ndarray]] = {}
    out: dict = {"radius_mm": args.radius, "dt_ms": args.dt, "d_mm": D_MM.tolist(),
                 "wall_s": {}}
    for dx in (coarse, fine):
        t0 = time.perf_counter()
        p = sheet(dx, args.dt, args.radius, centred=False)
        act = MonodomainSolver(p, compile=True, check_every=2000).run(
            stop_when_activated=True).activation_ms[0]
        times[f"monodomain {dx:g} mm"] = probe(np.asarray(act, dtype=np.float64), dx, False)
        out["wall_s"][f"monodomain {dx:g} mm"] = round(time.perf_counter() - t0, 1)
    r = (coarse / fine) ** 2 - 1.0
    times["monodomain, dx -> 0"] = {
        k: v + (v - times[f"monodomain {coarse:g} mm"][k]) / r
        for k, v in times[f"monodomain {fine:g} mm"].items()}
    ref = times["monodomain, dx -> 0"]
    e = sheet(fine, args.dt, args.radius, centred=True)
    solver = EikonalSolver(e.grid.mask, fine, e.fibre, dtype=torch.float64)
    for relation in CV_RELATIONS:
        cv_l, cv_t, src = problem_inputs(e, cv_relation=relation)
        runs = {"plain": solver.solve(cv_l, cv_t, src),
                "curvature": corrected_times(solver, e, cv_relation=relation)[0]}
        for name, t in runs.items():
            at = probe(t[0].numpy(), fine, True)
            shift = np.mean([ref[k][0] - at[k][0] for k in DIRECTIONS])
            times[f"eikonal {name}, {relation}"] = {k: v + shift for k, v in at.items()}
    out["runs"] = {}
    print(f"ms minus the converged monodomain at 3 / 5 / 7.5 mm, apparent CV (mm/ms) "
          f"over 3-7.5 mm; disc radius {args.radius:g} mm")
    for name, at in times.items():
        row = {k: {"minus_converged_ms": [round(float(x), 3) for x in (v - ref[k])[[0, 4, 9]]],
                   "cv": round(apparent_cv(v), 4)} for k, v in at.items()}
        out["runs"][name] = row
        print(f"  {name:34s} " + "  ".join(
            f"{k}: {' '.join(f'{x:+.2f}' for x in c['minus_converged_ms'])} cv {c['cv']:.4f}"
            for k, c in row.items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
