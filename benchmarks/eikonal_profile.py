"""Where the eikonal's map departs from the fine monodomain: by distance from the sites
and by depth below the fast layers.

Solves the reaction-eikonal mode's eikonal alone (curvature-corrected, as the simulate
stage does; without the R-E+ drive's latency) for the study's fixed parameters
(:data:`pipeline.simulate.convergence.STUDY_ROW`), patterns normal and LBBB, on one heart
of the study's cache at the eikonal's voxel size. Its times and the reference's map (the
0.25 mm monodomain by default) are compared at the eikonal grid's voxel centres. Prints
the mean signed error (ms, eikonal minus reference) of the fast layers and of the
myocardium by distance from the nearest stimulated voxel, and of each wall region by
depth below the nearest layer voxel (more than 8 mm from the sites). Figures:
docs/monodomain.md, "Session 29".

    python benchmarks/eikonal_profile.py --cache results/bench/convergence --heart param001 \\
        --eikonal-dx 0.5 [--no-mean-slowness] [--no-layer-curvature] [--json F]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

DISTANCE_MM = (0.0, 0.01, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 200.0)
DEPTH_MM = (0.0, 0.01, 0.6, 1.1, 1.6, 2.6, 4.0, 6.0, 10.0, 99.0)
REGIONS = {1: "LV free wall", 2: "RV free wall", 3: "septum"}


def binned(err: np.ndarray, x: np.ndarray, edges: tuple[float, ...], sel: np.ndarray
           ) -> list[dict]:
    """Mean signed error and count per bin of ``x`` over the selected voxels."""
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = sel & (x >= lo) & (x < hi) & np.isfinite(err)
        if m.sum() > 5:
            out.append({"from": lo, "to": hi, "mean_ms": round(float(err[m].mean()), 3),
                        "n": int(m.sum())})
    return out


def main(argv: list[str] | None = None) -> int:
    from pipeline.anatomy.grid import sample_tissue
    from pipeline.anatomy.io import read_anatomy
    from pipeline.monodomain.batch import prepare_anatomy, problem_from_settings
    from pipeline.monodomain.curvature import corrected_times
    from pipeline.monodomain.eikonal import EikonalSolver
    from pipeline.params import SimParams
    from pipeline.settings import SimulateSettings
    from pipeline.simulate.convergence import STUDY_ROW

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--heart", default="param001")
    ap.add_argument("--eikonal-dx", type=float, default=0.5)
    ap.add_argument("--reference-dx", type=float, default=0.25)
    ap.add_argument("--duration", type=float, default=250.0, help="the reference's ms")
    ap.add_argument("--no-mean-slowness", action="store_true")
    ap.add_argument("--no-layer-curvature", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    s = SimulateSettings.defaults()
    fine = read_anatomy(args.cache / f"{args.heart}_{args.eikonal_dx:g}mm" / "anatomy.h5")
    prep = prepare_anatomy(fine, fast_depth_mm=s.fast_endo_depth_mm,
                           fast_max_apicobasal=s.fast_endo_max_apicobasal,
                           fast_septal_max_apicobasal=s.fast_endo_septal_max_apicobasal,
                           diffusion=False)
    patterns = ["normal", "lbbb"]
    problem = problem_from_settings(prep, [SimParams(sim_id=i, pattern=p, **STUDY_ROW)
                                           for i, p in enumerate(patterns)], s)
    g = prep.grid
    solver = EikonalSolver(g.mask, g.spacing, prep.fibre,
                           mean_slowness=not args.no_mean_slowness)
    times, _ = corrected_times(solver, problem, layer_curvature=not args.no_layer_curvature)
    times = times.to(torch.float64).numpy()
    ref = read_anatomy(args.cache / f"{args.heart}_{args.reference_dx:g}mm" / "anatomy.h5")
    ref_file = (args.cache / f"{args.heart}_{args.reference_dx:g}mm_monodomain_srcmyo_"
                f"{args.duration:g}ms.npz")
    xyz, region = prep.coords.xyz, prep.coords.region
    layer = np.zeros(len(xyz), dtype=bool)
    for sel in prep.fast.values():
        layer |= np.asarray(sel, dtype=bool)
    depth = cKDTree(xyz[layer]).query(xyz)[0]
    result = {"heart": args.heart, "eikonal_dx_mm": args.eikonal_dx,
              "mean_slowness": not args.no_mean_slowness,
              "layer_curvature": not args.no_layer_curvature, "patterns": {}}
    with np.load(ref_file) as z:
        for i, p in enumerate(patterns):
            r = sample_tissue(ref.mask, ref.origin, float(np.max(ref.spacing)),
                              z[f"{p}/map"].astype(np.float64), xyz)
            err = times[i] - r
            stim = np.zeros(len(xyz), dtype=bool)
            for st in problem.stimuli[i]:
                stim[st.voxels] = True
            dist = cKDTree(xyz[stim]).query(xyz)[0]
            row = {"all_mean_ms": round(float(np.nanmean(err)), 3),
                   "all_mae_ms": round(float(np.nanmean(np.abs(err))), 3),
                   "layer_by_distance": binned(err, dist, DISTANCE_MM, layer),
                   "myocardium_by_distance": binned(err, dist, DISTANCE_MM, ~layer)}
            for k, name in REGIONS.items():
                row[f"{name} by depth"] = binned(err, depth, DEPTH_MM,
                                                 (region == k) & (dist > 8.0))
            result["patterns"][p] = row
            print(f"{p}: all {row['all_mean_ms']:+.2f} / {row['all_mae_ms']:.2f} ms")
            for key, bins in row.items():
                if isinstance(bins, list):
                    print(f"  {key}: " + " ".join(f"{b['from']:g}-{b['to']:g} {b['mean_ms']:+.2f}"
                                                  for b in bins))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
