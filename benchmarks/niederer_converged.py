"""The Niederer et al. 2011 benchmark on this solver's monodomain, extrapolated to dx, dt -> 0,
against the reaction-eikonal mode's eikonal per CV-sigma relation.

Input: the JSON files of ``pipeline bench niederer --dx DX --dt DT --json F`` (P1..P9 in ms,
``dx_mm``, ``dt_ms``; or several as ``{"runs": [...]}``) and, optionally, of
``benchmarks/niederer_eikonal.py --json F`` or of this script's ``--cube`` mode.

- The two finest grids run at one time step are extrapolated to dx -> 0 at second order
  (Richardson: T0 = T_f + (T_f - T_c) / (r^2 - 1), r = dx_c / dx_f). Where a third grid at that
  step exists, the observed order per point is printed, log2 of the ratio of successive
  differences for a refinement ratio of 2.
- A grid run at that step and at another, dt2, gives the step's error at first order (the
  splitting and the cell model's update are first order in dt), (T(dt) - T(dt2)) dt /
  (dt - dt2) per point, which is subtracted from the extrapolation.
- Each eikonal run starts the stimulus cube at 0 ms; its script adds the 0.1 mm
  monodomain's cube time (``cube_ms``). Here that is replaced by the converged P1, so that
  the eikonal is read on the converged monodomain's clock.

Published: at dx 0.1 mm / dt 0.005 ms the eleven codes gave P8 between 37.8 and 48.7 ms,
converging to about 42.5-43 ms. Figures: docs/fidelity-log.md, "Session 32".

    python benchmarks/niederer_converged.py RUN.json [RUN.json ...] [--eikonal E.json ...]
        [--json OUT]
    python benchmarks/niederer_converged.py --cube 0.1 0.05 [--dt 0.005] [--eikonal-dx 0.1]
        [--json OUT]

Session 32's figures: ``pipeline bench niederer`` at 0.2 / 0.1 / 0.05 mm with dt 0.005 ms and
at 0.1 mm with 0.0025 ms (5, 18, 56 and 40 min on the 2-core machine, one thread each but
the 0.05 mm run's two, partly side by side;
``docs/figures/niederer_monodomain_runs_session32.json``), ``--cube 0.1 0.05`` (22 min,
``docs/figures/niederer_cube_session32.json``), then

    python benchmarks/niederer_converged.py docs/figures/niederer_monodomain_runs_session32.json \
        --eikonal docs/figures/niederer_eikonal_session30.json \
        docs/figures/niederer_cube_session32.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

POINTS = [f"P{i}" for i in range(1, 10)]


def _load(path: Path) -> list[dict]:
    """The runs of one JSON: one run, or ``{"runs": [run, ...]}``."""
    data = json.loads(path.read_text())
    runs = data["runs"] if isinstance(data.get("runs"), list) else [data]
    for run in runs:
        missing = [k for k in ("dx_mm", "dt_ms", *POINTS) if k not in run]
        if missing:
            raise SystemExit(f"{path}: not a `pipeline bench niederer` JSON (missing {missing})")
    return runs


def extrapolate(runs: list[dict]) -> dict:
    """The dx -> 0, dt -> 0 estimate per point (ms) and how it was made."""
    by_dt: dict[float, list[dict]] = {}
    for run in runs:
        by_dt.setdefault(run["dt_ms"], []).append(run)
    usable = {dt: sorted(rs, key=lambda r: r["dx_mm"]) for dt, rs in by_dt.items()
              if len({r["dx_mm"] for r in rs}) >= 2}
    if not usable:
        raise SystemExit("need two grids run at one time step to extrapolate in dx")
    dt = min(usable, key=lambda d: (usable[d][0]["dx_mm"], d))
    fine, coarse = usable[dt][0], usable[dt][1]
    r = coarse["dx_mm"] / fine["dx_mm"]
    out = {"dt_ms": dt, "dx_pair_mm": [coarse["dx_mm"], fine["dx_mm"]],
           "dx0": {p: fine[p] + (fine[p] - coarse[p]) / (r * r - 1) for p in POINTS}}
    if len(usable[dt]) >= 3 and math.isclose(usable[dt][2]["dx_mm"], 2 * coarse["dx_mm"]) \
            and math.isclose(r, 2.0):
        third = usable[dt][2]
        out["observed_order"] = {
            p: (math.log2((third[p] - coarse[p]) / (coarse[p] - fine[p]))
                if (third[p] - coarse[p]) * (coarse[p] - fine[p]) > 0 else float("nan"))
            for p in POINTS}
    # the step's error at dt: one grid run at dt and at another step dt2
    pairs = [(a, b) for a in runs for b in runs if math.isclose(a["dx_mm"], b["dx_mm"])
             and math.isclose(a["dt_ms"], dt) and not math.isclose(b["dt_ms"], dt)]
    if pairs:
        a, b = min(pairs, key=lambda ab: (ab[0]["dx_mm"], ab[1]["dt_ms"]))
        out["dt_pair"] = {"dx_mm": a["dx_mm"], "dt_ms": [a["dt_ms"], b["dt_ms"]]}
        out["dt_error"] = {p: (a[p] - b[p]) * dt / (dt - b["dt_ms"]) for p in POINTS}
        out["converged"] = {p: out["dx0"][p] - out["dt_error"][p] for p in POINTS}
    else:
        out["converged"] = dict(out["dx0"])
    return out


def cube_map(dx: float, dt: float, duration_ms: float = 6.0):
    """The monodomain's activation times (ms, (n,), NaN where not yet active) over the
    benchmark's first ``duration_ms``, and the problem."""
    import numpy as np
    import torch

    from pipeline.monodomain.niederer import slab_problem
    from pipeline.monodomain.solver import MonodomainSolver
    problem = slab_problem(dx, dt, duration_ms)
    solver = MonodomainSolver(problem, dtype=torch.float32, compile=True)
    return solver.run(progress=True).activation_ms[0].astype(np.float64), problem


def cube_surface(act, problem) -> dict[str, float]:
    """Activation times (ms) on the stimulus cube's outer surface.

    The eikonal starts the whole cube at one time; the monodomain's cube fires first at
    the slab's corner (P1, no tissue around it to load it) and last on its faces inside the
    slab, which the surrounding tissue loads. Read at P1, the three outer faces' centres,
    their three shared edges' midpoints and the outer corner, and averaged over the three
    faces (a 10 x 10 sample each).
    """
    import numpy as np

    from pipeline.monodomain.niederer import STIM_CUBE_MM, interpolate
    c, h = STIM_CUBE_MM, STIM_CUBE_MM / 2
    at = {"P1": (0.0, 0.0, 0.0), "face_x": (c, h, h), "face_y": (h, c, h), "face_z": (h, h, c),
          "edge_xy": (c, c, h), "edge_xz": (c, h, c), "edge_yz": (h, c, c),
          "corner": (c, c, c)}
    values = interpolate(problem.grid, act, np.array(list(at.values())))
    out = {name: float(v) for name, v in zip(at, values)}
    u = (np.arange(10) + 0.5) * c / 10
    faces = np.array([np.insert([a, b], axis, c) for axis in range(3) for a in u for b in u])
    out["faces_mean"] = float(np.mean(interpolate(problem.grid, act, faces)))
    return {k: round(v, 4) for k, v in out.items()}


def seeded_eikonal(maps: list, dx: float) -> dict:
    """The curvature-corrected eikonal on a ``dx`` grid started from the monodomain's cube.

    Each voxel the stimulus touches starts at the cube map's time at its centre,
    extrapolated to dx -> 0 at second order from the two finest ``maps`` (``(act,
    problem)`` pairs, coarse first). Returns P1..P9 (ms) per relation, on the monodomain's
    clock (no shift).
    """
    import numpy as np
    import torch

    from pipeline.monodomain.curvature import corrected_times
    from pipeline.monodomain.cv_relation import CV_RELATIONS
    from pipeline.monodomain.eikonal import EikonalSolver
    from pipeline.monodomain.niederer import interpolate, points, slab_problem
    problem = slab_problem(dx, 0.005)
    g = problem.grid
    (act_c, prob_c), (act_f, prob_f) = maps[-2:]
    r = prob_c.grid.spacing[0] / prob_f.grid.spacing[0]
    cube = np.array(problem.stimuli[0][0].voxels)
    tc = interpolate(prob_c.grid, act_c, g.xyz[cube])
    tf = interpolate(prob_f.grid, act_f, g.xyz[cube])
    seed = tf + (tf - tc) / (r * r - 1)
    if not np.isfinite(seed).all():
        raise SystemExit("the cube has not activated everywhere in the maps' duration")
    solver = EikonalSolver(g.mask, g.spacing, problem.fibre, dtype=torch.float64)
    out = {"dx_mm": dx, "cube_ms": None, "seed_ms": [float(seed.min()), float(seed.max())],
           "runs": {}}
    for relation in CV_RELATIONS:
        times, _ = corrected_times(solver, problem, cv_relation=relation,
                                   sources=[(cube, seed)])
        t = times[0].numpy()
        out["runs"][relation] = {name: round(interpolate(g, t, xyz), 2)
                                 for name, xyz in points().items()}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="*", help="`pipeline bench niederer` JSON files")
    ap.add_argument("--cube", type=float, nargs="+", metavar="DX",
                    help="instead: the monodomain's first 6 ms on these grids (coarse first): "
                         "the cube's surface times, and the eikonal started from them")
    ap.add_argument("--dt", type=float, default=0.005, help="with --cube (ms)")
    ap.add_argument("--eikonal-dx", type=float, default=0.1, help="with --cube (mm)")
    ap.add_argument("--eikonal", type=Path, nargs="*", default=[],
                    help="`benchmarks/niederer_eikonal.py` JSON files")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.cube:
        import torch
        torch.set_num_threads(2)
        maps = [cube_map(dx, args.dt) for dx in args.cube]
        out = {"dt_ms": args.dt, "surface": {}}
        for dx, (act, problem) in zip(args.cube, maps):
            out["surface"][str(dx)] = cube_surface(act, problem)
            print(f"cube surface, {dx} mm:", out["surface"][str(dx)], flush=True)
        if len(maps) >= 2:
            out["eikonal"] = seeded_eikonal(maps, args.eikonal_dx)
            print("eikonal started from the cube:", out["eikonal"]["runs"], flush=True)
        if args.json:
            args.json.write_text(json.dumps(out, indent=1))
        return 0
    runs = [run for p in args.runs for run in _load(p)]
    est = extrapolate(runs)
    conv = est["converged"]
    rows = [(f"monodomain {r['dx_mm']} mm / {r['dt_ms']} ms", {p: r[p] for p in POINTS})
            for r in sorted(runs, key=lambda r: (-r["dx_mm"], -r["dt_ms"]))]
    rows.append((f"monodomain dx -> 0 at {est['dt_ms']} ms", est["dx0"]))
    rows.append(("monodomain dx, dt -> 0", conv))
    for path in args.eikonal:
        eik = json.loads(path.read_text())
        if "eikonal" in eik:            # a --cube JSON
            eik = eik["eikonal"]
        for relation, row in eik["runs"].items():
            if eik["cube_ms"] is None:
                rows.append((f"eikonal {eik['dx_mm']} mm from the cube, {relation}", row))
                continue
            shifted = {p: row[p] - eik["cube_ms"] + conv["P1"] for p in POINTS}
            rows.append((f"eikonal {eik['dx_mm']} mm, {relation}", shifted))
    print("| run | " + " | ".join(POINTS) + " | P8 - converged |")
    print("|---" * (len(POINTS) + 2) + "|")
    for name, row in rows:
        print(f"| {name} | " + " | ".join(f"{row[p]:.2f}" for p in POINTS)
              + f" | {row['P8'] - conv['P8']:+.2f} |")
    if "observed_order" in est:
        print("observed order in dx: " + " ".join(f"{p} {v:.2f}"
                                                  for p, v in est["observed_order"].items()))
    if args.json:
        args.json.write_text(json.dumps({"estimate": est, "rows": dict(rows)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
