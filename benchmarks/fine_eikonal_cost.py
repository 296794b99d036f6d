"""Cost of the eikonal on the LLNL heart at 0.5 mm (871,643 voxels): a batch of simulations
(normal, LBBB, RBBB, RV apex, LV lateral, ...; sites jittered 3 mm, delays up to 10 ms),
compiled local solver, 2 threads, with the time band of ``EikonalSolver.solve`` and
without it (``--band inf``: the plain Jacobi FIM). Prints sweeps, updates per voxel and
wall time, and the largest difference between the two solutions.

Needs the study's 0.5 mm anatomy (made by ``pipeline bench convergence --heart
heart_mesh.vtk ... --resolution 2 0.5 --cache DIR``: DIR/heart_mesh_0.5mm/anatomy.h5).
Usage::

    .venv/bin/python benchmarks/fine_eikonal_cost.py DIR/heart_mesh_0.5mm/anatomy.h5 \\
        --batch 2 --band default inf
"""
import argparse
import time
from dataclasses import replace

import pandas as pd
import torch

from pipeline.anatomy.io import read_anatomy
from pipeline.monodomain.batch import prepare_anatomy, problem_from_settings
from pipeline.monodomain.eikonal import EikonalSolver, problem_inputs
from pipeline.params import rows
from pipeline.settings import SimulateSettings
from pipeline.simulate.convergence import STUDY_ROW

PATTERNS = ["normal", "lbbb", "rbbb", "rv_apex", "lv_lateral", "normal", "lbbb", "normal"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("anatomy", help="anatomy.h5 of the heart on the eikonal's grid")
    ap.add_argument("--batch", type=int, default=8, help="simulations (at most 8)")
    ap.add_argument("--band", nargs="+", default=["default", "inf"],
                    help="band widths in ms ('inf': the plain FIM; 'default': the solver's, "
                         "4 ms per mm of voxel edge)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    a = read_anatomy(args.anatomy)
    s = replace(SimulateSettings.defaults(), model="reaction_eikonal")
    t0 = time.perf_counter()
    prep = prepare_anatomy(a, fast_depth_mm=s.fast_endo_depth_mm,
                           fast_max_apicobasal=s.fast_endo_max_apicobasal,
                           fast_septal_max_apicobasal=s.fast_endo_septal_max_apicobasal,
                           diffusion=False)
    table = pd.DataFrame([{"sim_id": i, "anatomy": str(a.name), "pattern": p, **STUDY_ROW,
                           "seed": 100 + i, "site_jitter_mm": 3.0, "site_delay_max_ms": 10.0}
                          for i, p in enumerate(PATTERNS[:args.batch])])
    prob = problem_from_settings(prep, rows(table), s)
    cv_l, cv_t, src = problem_inputs(prob)
    eik = EikonalSolver(prep.grid.mask, prep.grid.spacing, prep.fibre, compile=True)
    t1 = time.perf_counter()
    eik.solve(cv_l[:args.batch], cv_t[:args.batch], src)     # compiles
    t2 = time.perf_counter()
    n = prep.grid.n_tissue
    print(f"{n} voxels, {args.batch} simulations; prepare {t1 - t0:.1f} s, first solve "
          f"(compilation included) {t2 - t1:.1f} s")
    out = {}
    for band in args.band:
        width = None if band == "default" else float(band)      # float("inf"): plain FIM
        t3 = time.perf_counter()
        out[band] = eik.solve(cv_l, cv_t, src, band_ms=width)
        wall = time.perf_counter() - t3
        print(f"band {band} ms: {wall:.1f} s ({wall / args.batch:.1f} s per simulation), "
              f"{eik.last_sweeps} sweeps, {eik.last_updates / args.batch / n:.2f} updates "
              f"per voxel")
    if len(out) > 1:
        first, *rest = out
        for band in rest:
            d = (out[band] - out[first]).abs()
            print(f"band {band} against {first}: largest |difference| {d.max():.3f} ms, "
                  f"mean {d.mean():.4f} ms")


if __name__ == "__main__":
    main()
