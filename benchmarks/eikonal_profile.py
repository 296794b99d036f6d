"""Where the eikonal's map departs from the fine monodomain: by distance from the sites
and by depth below the fast layers.

Solves the reaction-eikonal mode's eikonal alone (curvature-corrected, as the simulate
stage does; without the R-E+ drive's latency) for the study's fixed parameters
(:data:`pipeline.simulate.convergence.STUDY_ROW`), patterns normal and LBBB, on one heart
of the study's cache at the eikonal's voxel size. Its times and the reference's map (the
0.25 mm monodomain by default) are compared at the eikonal grid's voxel centres. Prints
the mean signed error (ms, eikonal minus reference) of the fast layers and of the
myocardium by distance from the nearest stimulated voxel, and of each wall region by
depth below the nearest layer voxel (more than 8 mm from the sites). Also, per wall
region and depth, each map's local front speed over the planar law of the eikonal's own
CVs, 1 / (|grad T| sqrt(c_t^2 + (c_l^2 - c_t^2) (n . f)^2)) - 1 with n = grad T / |grad T|
(central differences on the eikonal grid; 0: the front runs as a planar wave of its
direction would), and the mean |n . f|; and the same ratio over the myocardium's fronts
across the fibres (|n . f| < 0.3, more than 1.1 mm below a layer) by the front normal's
largest grid component, max |n_i| (1 along a grid axis, 0.58 along the cube's
diagonal). Figures: docs/fidelity-log.md, "Session 29" and "Session 30".

    python benchmarks/eikonal_profile.py --cache results/bench/convergence --heart param001 \\
        --eikonal-dx 0.5 [--no-mean-slowness] [--no-layer-curvature]
        [--cv-relation continuum] [--json F]
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


def binned(err: np.ndarray, x: np.ndarray, edges: tuple[float, ...], sel: np.ndarray,
           key: str = "mean_ms") -> list[dict]:
    """Mean of ``err`` (a signed error; ``key`` names it) and count per bin of ``x`` over
    the selected voxels."""
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = sel & (x >= lo) & (x < hi) & np.isfinite(err)
        if m.sum() > 5:
            out.append({"from": lo, "to": hi, key: round(float(err[m].mean()), 3),
                        "n": int(m.sum())})
    return out


#: Bins of the front normal's largest grid component, max |n_i|: 1 along a grid axis,
#: 0.707 along a face diagonal, 0.577 along the cube's diagonal.
AXIS_EDGES = (0.577, 0.65, 0.75, 0.85, 0.95, 1.001)


def speed_over_law(times: np.ndarray, mask: np.ndarray, h: float, fibre: np.ndarray,
                   cv_l: np.ndarray, cv_t: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tissue voxel: local front speed over the planar law minus 1, |n . f| and the
    normal's largest grid component max |n_i| (NaN where a face neighbour is missing)."""
    idx = np.flatnonzero(mask)
    field = np.full(mask.size, np.nan)
    field[idx] = times
    field = field.reshape(mask.shape)
    grad = np.stack([((np.roll(field, -1, a) - np.roll(field, 1, a)) / (2 * h)).reshape(-1)[idx]
                     for a in range(3)], axis=1)
    norm = np.linalg.norm(grad, axis=1)
    along = np.abs((grad * fibre).sum(axis=1)) / norm
    law = np.sqrt(cv_t ** 2 + (cv_l ** 2 - cv_t ** 2) * along ** 2)
    return 1.0 / (norm * law) - 1.0, along, np.abs(grad).max(axis=1) / norm


def main(argv: list[str] | None = None) -> int:
    from pipeline.anatomy.grid import sample_tissue
    from pipeline.anatomy.io import read_anatomy
    from pipeline.monodomain.batch import prepare_anatomy, problem_from_settings
    from pipeline.monodomain.curvature import corrected_times
    from pipeline.monodomain.eikonal import EikonalSolver, problem_inputs
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
    ap.add_argument("--cv-relation", default="continuum", choices=["cable_0.1mm", "continuum"])
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
    times, _ = corrected_times(solver, problem, layer_curvature=not args.no_layer_curvature,
                               cv_relation=args.cv_relation)
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
              "layer_curvature": not args.no_layer_curvature, "cv_relation": args.cv_relation,
              "patterns": {}}
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
            cl, ct, _ = problem_inputs(problem, cv_relation=args.cv_relation)
            law = {m: speed_over_law(amap, g.mask, float(np.max(g.spacing)), prep.fibre,
                                     cl[i].numpy(), ct[i].numpy())
                   for m, amap in (("reference", r), ("eikonal", times[i]))}
            for k, name in REGIONS.items():
                sel = (region == k) & (dist > 8.0)
                row[f"{name} by depth"] = binned(err, depth, DEPTH_MM, sel)
                for m, (ratio, along, _) in law.items():
                    row[f"{name} {m} speed over law by depth"] = binned(
                        ratio, depth, DEPTH_MM, sel & ~layer, key="mean")
                    row[f"{name} {m} |n.f| by depth"] = binned(
                        along, depth, DEPTH_MM, sel & ~layer, key="mean")
            # the reference's excess by the front's direction to the grid (across the
            # fibres, |n . f| < 0.3; myocardium more than 8 mm from the sites)
            ratio, along, axis = law["reference"]
            across = (~layer) & (dist > 8.0) & (along < 0.3) & (depth > 1.1)
            row["reference speed over law by max |n_i|, across the fibres"] = binned(
                ratio, axis, AXIS_EDGES, across, key="mean")
            ratio, along, axis = law["eikonal"]
            row["eikonal speed over law by max |n_i|, across the fibres"] = binned(
                ratio, axis, AXIS_EDGES, (~layer) & (dist > 8.0) & (along < 0.3) & (depth > 1.1),
                key="mean")
            result["patterns"][p] = row
            print(f"{p}: all {row['all_mean_ms']:+.2f} / {row['all_mae_ms']:.2f} ms")
            for key, bins in row.items():
                if isinstance(bins, list):
                    print(f"  {key}: " + " ".join(
                        f"{b['from']:g}-{b['to']:g} {b.get('mean_ms', b.get('mean')):+.3f}"
                        for b in bins))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
