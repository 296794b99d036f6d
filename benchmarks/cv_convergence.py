"""Is the CV-sigma relation converged? Cable CVs against voxel size and time step.

The reaction-eikonal mode's speeds (:func:`pipeline.monodomain.cv_relation.cv_from_sigma`) and
the monodomain's per-direction calibration targets are the planar CVs of TP06 cables at
dx 0.1 mm, dt 0.005 ms. This measures the same cables (15 mm, TP06 endo, chi 140/mm,
Cm 1 uF/cm^2) on finer grids and steps, and extrapolates to dx -> 0 by Richardson
(second order in dx, from the two finest grids at one dt), so that each conductivity's
0.1 mm value can be read against the continuum monodomain's.

``--parts`` picks what runs (default ``sweep``). ``table`` measures every conductivity of
``CV_TABLE`` this way (two grids, one batch each) and prints the extrapolated table.
``orientation``: the monodomain grid's own anisotropy, per voxel size with the simulate
stage's per-direction calibration. A 12 mm square sheet (fibres out of its plane, which
conducts at sigma_t in every direction) with a planar wave along a grid axis and along
its diagonal, and a 6 mm cube with a planar wave across the fibres along the cube's
diagonal. Figures: docs/fidelity-log.md, "Session 30".

    python benchmarks/cv_convergence.py [--sigma 0.02 0.04 0.15 0.8]
        [--parts sweep orientation table] [--json F]

About 12 minutes for the sweep, 6 for ``orientation`` and about an hour for ``table`` on
2 cores. The JSON is written after each part.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

#: (dx mm, dt ms) of the sweep; the last two share a dt for the extrapolation in dx.
SWEEP = ((0.1, 0.005), (0.1, 0.0025), (0.1, 0.001), (0.05, 0.0004), (0.025, 0.0004))
#: The two grids of the extrapolation (dt 0.0004 ms: the explicit limit at 0.025 mm and
#: 1 S/m is 0.00044 ms).
FINE = ((0.05, 0.0004), (0.025, 0.0004))


def richardson(coarse: np.ndarray, fine: np.ndarray, ratio: float = 2.0,
               order: float = 2.0) -> np.ndarray:
    """Extrapolated value of a quantity measured at h and h / ratio (error ~ h^order)."""
    k = ratio ** order
    return fine + (fine - coarse) / (k - 1.0)


def cables(sigma: np.ndarray, dx: float, dt: float) -> np.ndarray:
    """Planar CV (mm/ms) of a cable per conductivity."""
    from pipeline.monodomain.cv import measure_cv_table
    return measure_cv_table(sigma, dx=dx, dt=dt).cv_mm_per_ms


def sheet_cv(dx: float, dt: float, sigma_t: float, diagonal: bool, size_mm: float = 12.0
             ) -> float:
    """CV (mm/ms) of a planar wave in an isotropic sheet (sigma_t in its plane), along x
    or along the diagonal of the grid: slope of time against distance, 4-8 mm out."""
    from pipeline.cell import tp06
    from pipeline.monodomain.problem import Conductivities, Grid, MonodomainProblem
    from pipeline.monodomain.solver import MonodomainSolver
    from pipeline.monodomain.stimulus import Stimulus

    n = int(round(size_mm / dx))
    mask = np.ones((n, n, 1), dtype=bool)
    ijk = np.argwhere(mask)
    x, y = (ijk[:, 0] + 0.5) * dx, (ijk[:, 1] + 0.5) * dx
    s = (x + y) / np.sqrt(2.0) if diagonal else x
    state = tp06.initial_state("endo", dtype=torch.float64).numpy()
    stim = Stimulus(voxels=np.flatnonzero(s < 1.0), start_ms=0.0, duration_ms=2.0,
                    amplitude=-80.0, name="face")
    p = MonodomainProblem(
        grid=Grid(origin=np.zeros(3), spacing=np.full(3, dx), mask=mask),
        fibre=np.tile([0.0, 0.0, 1.0], (mask.sum(), 1)),
        conductivities=Conductivities(sigma_l=np.array([0.15]), sigma_t=np.array([sigma_t]),
                                      sigma_fast_endo=np.array([0.15])),
        celltype=np.full(mask.sum(), tp06.CELLTYPES["endo"], dtype=np.uint8),
        initial_states=np.broadcast_to(state, (1, 4, state.size)).copy(),
        stimuli=((stim,),), dt_ms=dt, duration_ms=60.0)
    act = np.asarray(MonodomainSolver(p).run(stop_when_activated=True).activation_ms[0],
                     dtype=np.float64)
    off = np.abs(x - y) if diagonal else np.abs(y - size_mm / 2)
    sel = (off < 1.5) & (s > 4.0) & (s < 8.0)
    return float(1.0 / np.polyfit(s[sel], act[sel], 1)[0])


def cube_cv(dx: float, dt: float, sigma_l: float, sigma_t: float, size_mm: float = 6.0
            ) -> float:
    """CV (mm/ms) of a planar wave along the cube diagonal (1, 1, 1) / sqrt(3) of the grid,
    fibres along (1, -1, 0) / sqrt(2) (across the front: the continuum speed is the
    transverse CV): slope of time against distance on the diagonal, 3-7 mm out."""
    from pipeline.cell import tp06
    from pipeline.monodomain.problem import Conductivities, Grid, MonodomainProblem
    from pipeline.monodomain.solver import MonodomainSolver
    from pipeline.monodomain.stimulus import Stimulus

    n = int(round(size_mm / dx))
    mask = np.ones((n, n, n), dtype=bool)
    xyz = (np.argwhere(mask) + 0.5) * dx
    s = xyz.sum(axis=1) / np.sqrt(3.0)
    off = np.linalg.norm(xyz - s[:, None] / np.sqrt(3.0), axis=1)
    state = tp06.initial_state("endo", dtype=torch.float64).numpy()
    stim = Stimulus(voxels=np.flatnonzero(s < 1.0), start_ms=0.0, duration_ms=2.0,
                    amplitude=-80.0, name="corner")
    p = MonodomainProblem(
        grid=Grid(origin=np.zeros(3), spacing=np.full(3, dx), mask=mask),
        fibre=np.tile([2 ** -0.5, -(2 ** -0.5), 0.0], (mask.sum(), 1)),
        conductivities=Conductivities(sigma_l=np.array([sigma_l]), sigma_t=np.array([sigma_t]),
                                      sigma_fast_endo=np.array([sigma_l])),
        celltype=np.full(mask.sum(), tp06.CELLTYPES["endo"], dtype=np.uint8),
        initial_states=np.broadcast_to(state, (1, 4, state.size)).copy(),
        stimuli=((stim,),), dt_ms=dt, duration_ms=40.0)
    sel = (off < 1.0) & (s > 3.0) & (s < 7.0)
    act = np.asarray(MonodomainSolver(p).run(stop_when_activated=True, stop_voxels=np.flatnonzero(
        sel)).activation_ms[0], dtype=np.float64)
    return float(1.0 / np.polyfit(s[sel], act[sel], 1)[0])


def orientation(sigma_t: float = 0.04) -> list[dict]:
    """Axis and diagonal CV in a sheet at 0.1 mm (uncalibrated) and at 0.25 / 0.5 mm with
    the simulate stage's per-direction calibration of (0.15, sigma_t)."""
    from pipeline.simulate.calibration import direction_calibration
    from pipeline.simulate.convergence import DT_MS

    rows = []
    for dx in (0.1, 0.25, 0.5):
        dt = 0.005 if dx == 0.1 else DT_MS[dx]
        scale = 1.0 if dx == 0.1 else direction_calibration(
            0.15, sigma_t, dx, dt, cv_relation="cable_0.1mm")["t"]["scale"]
        axis, diag = (sheet_cv(dx, dt, sigma_t * scale, d) for d in (False, True))
        scale_l = 1.0 if dx == 0.1 else direction_calibration(
            0.15, sigma_t, dx, dt, cv_relation="cable_0.1mm")["l"]["scale"]
        cube = cube_cv(dx, dt, 0.15 * scale_l, sigma_t * scale)
        rows.append({"dx_mm": dx, "dt_ms": dt, "scale_t": round(scale, 4),
                     "axis_mm_per_ms": round(axis, 4), "diagonal_mm_per_ms": round(diag, 4),
                     "cube_diagonal_mm_per_ms": round(cube, 4)})
        print(f"sigma_t {sigma_t:g} at {dx:g} mm (scale {scale:.3f}): axis {axis:.4f}, "
              f"sheet diagonal {diag:.4f} ({100 * (diag / axis - 1):+.1f} %), cube diagonal "
              f"{cube:.4f} mm/ms ({100 * (cube / axis - 1):+.1f} %)", flush=True)
    return rows


def convergence(sig: np.ndarray) -> dict:
    """Cable CVs over :data:`SWEEP` and their extrapolation to dx -> 0."""
    out: dict = {}
    sweep = {}
    for dx, dt in SWEEP:
        t0 = time.perf_counter()
        sweep[(dx, dt)] = cables(sig, dx, dt)
        print(f"dx {dx:g} mm, dt {dt:g} ms: " + ", ".join(
            f"{s:g} S/m {c:.4f}" for s, c in zip(sig, sweep[(dx, dt)]))
            + f" mm/ms ({time.perf_counter() - t0:.0f} s)", flush=True)
    limit = richardson(sweep[FINE[0]], sweep[FINE[1]])
    print("extrapolated (dx -> 0): " + ", ".join(
        f"{s:g} S/m {c:.4f} (0.1 mm: {100 * (r / c - 1):+.1f} %)"
        for s, c, r in zip(sig, limit, sweep[SWEEP[0]])))
    k = limit / np.sqrt(sig)
    print("CV / sqrt(sigma) of the extrapolated CVs: " + ", ".join(f"{v:.4f}" for v in k))
    out["sqrt_law_k"] = np.round(k, 5).tolist()
    out["sweep"] = [{"dx_mm": dx, "dt_ms": dt, "cv_mm_per_ms": np.round(v, 5).tolist()}
                    for (dx, dt), v in sweep.items()]
    out["sigma_S_per_m"] = sig.tolist()
    out["extrapolated_mm_per_ms"] = np.round(limit, 5).tolist()
    return out


def main(argv: list[str] | None = None) -> int:
    from pipeline.monodomain.cv_relation import CV_TABLE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigma", type=float, nargs="+", default=[0.02, 0.04, 0.15, 0.8])
    ap.add_argument("--parts", nargs="+", default=["sweep"],
                    choices=["sweep", "orientation", "table"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    out: dict = {}
    sig = np.asarray(args.sigma, dtype=np.float64)
    if "sweep" in args.parts:
        out.update(convergence(sig))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    if "table" in args.parts:
        tsig = CV_TABLE[:, 0]
        coarse, fine = (cables(tsig, dx, dt) for dx, dt in FINE)
        table = richardson(coarse, fine)
        out["table"] = {"sigma_S_per_m": tsig.tolist(), "cv_0.05mm": np.round(coarse, 5).tolist(),
                        "cv_0.025mm": np.round(fine, 5).tolist(),
                        "extrapolated": np.round(table, 5).tolist()}
        for s, c, r in zip(tsig, table, CV_TABLE[:, 1]):
            print(f"  [{s:.2f}, {c:.4f}],   # 0.1 mm: {r:.4f} ({100 * (r / c - 1):+.1f} %)")
        if args.json:
            args.json.write_text(json.dumps(out, indent=1))
    if "orientation" in args.parts:
        out["orientation"] = orientation()
        if args.json:
            args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
