"""The front below a driving fast layer: the 0.1 mm monodomain against the eikonal.

A two-dimensional layered slab (:func:`pipeline.monodomain.layer.layer_slab`: x along the
layer, y across the wall, one voxel in z with no-flux faces), 16 mm long, a 1 mm layer at
0.8 S/m on 7 mm of myocardium (sigma_l 0.15, sigma_t 0.04 S/m), stimulated at the layer's
x = 0 end. The fibres lie along x, along z (out of the slab's plane) or rotate about y
from +60 deg at the endocardium to -60 deg at 9 mm (a helix angle's transmural turn). The
monodomain runs on the 0.1 mm grid (the grid of ``cv_from_sigma``'s table); the eikonal
on the same grid with ``cv_from_sigma`` speeds and the layer's load, with the hop at the
speed of the voxel it reaches and with the mean slowness of its two voxels. Printed at
x = 10 mm: the time (ms) from the layer's middle row to each depth below the layer.
Figures: docs/fidelity-log.md, "Session 29" and "Session 30".

The slab is one voxel thick with no-flux faces, so the monodomain solves the z-invariant
problem, whose diffusion tensor is the in-plane (x, y) block of sigma. Its eikonal is the
one of the in-plane block of V = c_t^2 I + (c_l^2 - c_t^2) f f^T: fibres along x with
c_l' = sqrt(c_t^2 + (c_l^2 - c_t^2) f_x^2) ("eikonal, in-plane metric"). The 3-D solver
given the tilted fibres themselves ("eikonal, mean slowness") holds its rays in the
plane although the characteristics of a z-invariant front leave it (in a tilted
anisotropic medium the ray is not along the front's normal), so with the rotating
fibres it is late by 0.29 ms at 6 mm: that, not the monodomain, was session 29's
"rotating-fibre" lag.

With ``--converged DX DX``, the same slabs (13 mm long, 7 mm of myocardium) run the
monodomain at both voxel edges with one time step, extrapolated to dx -> 0 (second order,
from the two finest), against the eikonal on the finest grid with the speeds of each
CV-sigma relation (in-plane metric, the layer's load); every map is read bilinearly at the
same points, and the layer's front speed over x 4-10 mm is printed beside each row.
docs/fidelity-log.md, "Session 31".

    python benchmarks/layer_transmural.py [--fibre x z rotating] [--json F]
    python benchmarks/layer_transmural.py --converged 0.1 0.05 --dt 0.001 [--json F]

About 1.5 minutes per fibre field on 2 cores; with ``--converged 0.1 0.05 --dt 0.001``
about 8 minutes per fibre field.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

SIGMA_L, SIGMA_T, SIGMA_FAST, DEPTH_MM, DX_MM, DT_MS = 0.15, 0.04, 0.8, 1.0, 0.1, 0.0025
BELOW_MM = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def fibres(kind: str, y_mm: np.ndarray) -> np.ndarray:
    """(n, 3) unit fibres of the slab's voxels at depth ``y_mm`` from the endocardium."""
    if kind == "x":
        return np.tile([1.0, 0.0, 0.0], (y_mm.size, 1))
    if kind == "z":
        return np.tile([0.0, 0.0, 1.0], (y_mm.size, 1))
    th = np.deg2rad(60.0 - 120.0 * np.clip(y_mm / 9.0, 0.0, 1.0))
    return np.stack([np.cos(th), np.zeros_like(th), np.sin(th)], axis=1)


def profile(kind: str, x_mm: float = 10.0) -> dict:
    """Times (ms) from the layer to each depth of :data:`BELOW_MM`, per model."""
    from pipeline.monodomain.cv_relation import cv_from_sigma
    from pipeline.monodomain.eikonal import EikonalSolver
    from pipeline.monodomain.layer import SlabGeometry, layer_load, layer_slab
    from pipeline.monodomain.solver import MonodomainSolver

    p, _ = layer_slab(np.array([SIGMA_FAST]), DX_MM, DT_MS, depth_mm=DEPTH_MM,
                      sigma_l=SIGMA_L, sigma_t=SIGMA_T,
                      geometry=SlabGeometry(length_mm=16.0, myocardium_mm=7.0))
    ijk = np.argwhere(p.grid.mask)
    nx, ny = p.grid.mask.shape[:2]
    fib = fibres(kind, (ijk[:, 1] + 0.5) * DX_MM)
    p = replace(p, fibre=fib, duration_ms=38.0)
    t0 = time.perf_counter()
    mono = MonodomainSolver(p, dtype=torch.float32, check_every=400).run().activation_ms[0]
    wall = time.perf_counter() - t0
    rows = int(np.sum((np.arange(64) + 0.5) * DX_MM < DEPTH_MM))
    in_layer = ijk[:, 1] < rows
    load = float(np.asarray(layer_load(np.array([SIGMA_FAST]), np.array([SIGMA_L]),
                                       np.array([SIGMA_T]), DEPTH_MM))[0])
    cab = "cable_0.1mm"         # the 0.1 mm monodomain's own relation
    fast = float(cv_from_sigma(SIGMA_FAST, cab)) * load
    cl = torch.as_tensor(np.where(in_layer, fast, float(cv_from_sigma(SIGMA_L, cab))))[None]
    ct = torch.as_tensor(np.where(in_layer, fast, float(cv_from_sigma(SIGMA_T, cab))))[None]
    maps = {"monodomain 0.1 mm": np.asarray(mono, dtype=np.float64)}
    src = [(p.stimuli[0][0].voxels, 0.0)]
    for mean in (False, True):
        solver = EikonalSolver(p.grid.mask, DX_MM, fib, mean_slowness=mean,
                               dtype=torch.float64)
        t = solver.solve(cl, ct, src)[0].numpy()
        maps["eikonal, mean slowness" if mean else "eikonal"] = t
    # the in-plane block of V: fibres along x, c_l' from the fibre's x component
    in_plane = torch.sqrt(ct ** 2 + (cl ** 2 - ct ** 2) * torch.as_tensor(fib[:, 0] ** 2)[None])
    solver = EikonalSolver(p.grid.mask, DX_MM, np.tile([1.0, 0.0, 0.0], (len(fib), 1)),
                           dtype=torch.float64)
    maps["eikonal, in-plane metric"] = solver.solve(torch.where(
        torch.as_tensor(in_layer)[None], cl, in_plane), ct, src)[0].numpy()
    i, mid = int(x_mm / DX_MM), rows // 2
    out = {"fibre": kind, "x_mm": x_mm, "monodomain_wall_s": round(wall, 1), "runs": {}}
    for name, amap in maps.items():
        col = amap.reshape(nx, ny)[i]
        out["runs"][name] = {f"{z:g}": round(float(col[int((z + DEPTH_MM) / DX_MM)]
                                                   - col[mid]), 3) for z in BELOW_MM}
    return out


def _sample(amap: np.ndarray, shape: tuple[int, int], dx: float,
            xy_mm: np.ndarray) -> np.ndarray:
    """A slab's map (ms) at the points ``xy_mm`` (k, 2), bilinear between voxel centres."""
    from scipy.interpolate import RegularGridInterpolator
    centres = [(np.arange(m) + 0.5) * dx for m in shape]
    return RegularGridInterpolator(centres, amap.reshape(shape))(xy_mm)


def converged(kind: str, dxs: tuple[float, ...], dt: float, x_mm: float = 10.0) -> dict:
    """The same slab's monodomain at each voxel edge of ``dxs`` (one time step ``dt``),
    extrapolated to dx -> 0 from the two finest (second order), against the eikonal on the
    finest grid with the speeds of each CV-sigma relation (in-plane metric, the layer's
    load). Times (ms) from the layer's middle (y = 0.5 mm) at x = ``x_mm`` to each depth of
    :data:`BELOW_MM`, bilinear in the maps; and the layer's front speed over x 4-10 mm."""
    from pipeline.monodomain.cv_relation import CV_RELATIONS, cv_from_sigma
    from pipeline.monodomain.eikonal import EikonalSolver
    from pipeline.monodomain.layer import SlabGeometry, layer_load, layer_slab
    from pipeline.monodomain.solver import MonodomainSolver

    depth = np.array([0.5 * DEPTH_MM] + [DEPTH_MM + z for z in BELOW_MM])
    pts = np.stack([np.full(depth.size, x_mm), depth], axis=1)
    along = np.array([[4.0, 0.5 * DEPTH_MM], [x_mm, 0.5 * DEPTH_MM]])
    out = {"fibre": kind, "x_mm": x_mm, "dt_ms": dt, "runs": {}, "wall_s": {}}
    rows: dict[str, np.ndarray] = {}
    speeds: dict[str, float] = {}

    def record(name: str, amap: np.ndarray, shape: tuple[int, int], dx: float) -> None:
        t = _sample(amap, shape, dx, pts)
        rows[name] = t[1:] - t[0]
        ta = _sample(amap, shape, dx, along)
        speeds[name] = (along[1, 0] - along[0, 0]) / (ta[1] - ta[0])

    for dx in dxs:
        p, _ = layer_slab(np.array([SIGMA_FAST]), dx, dt, depth_mm=DEPTH_MM, sigma_l=SIGMA_L,
                          sigma_t=SIGMA_T, geometry=SlabGeometry(length_mm=x_mm + 3.0,
                                                                 myocardium_mm=7.0))
        ijk = np.argwhere(p.grid.mask)
        shape = p.grid.mask.shape[:2]
        fib = fibres(kind, (ijk[:, 1] + 0.5) * dx)
        p = replace(p, fibre=fib, duration_ms=34.0)
        t0 = time.perf_counter()
        mono = MonodomainSolver(p, dtype=torch.float32, check_every=2000).run().activation_ms[0]
        out["wall_s"][f"monodomain {dx:g} mm"] = round(time.perf_counter() - t0, 1)
        record(f"monodomain {dx:g} mm", np.asarray(mono, dtype=np.float64), shape, dx)
    fine, coarse = sorted(dxs)[:2]
    r = (coarse / fine) ** 2 - 1.0
    for table in (rows, speeds):
        f, c = table[f"monodomain {fine:g} mm"], table[f"monodomain {coarse:g} mm"]
        table["monodomain, dx -> 0"] = f + (f - c) / r
    # the eikonal on the finest grid, with the in-plane block of V (the z-invariant metric)
    load = float(np.asarray(layer_load(np.array([SIGMA_FAST]), np.array([SIGMA_L]),
                                       np.array([SIGMA_T]), DEPTH_MM))[0])
    in_layer = ijk[:, 1] < int(np.sum((np.arange(10 ** 4) + 0.5) * fine < DEPTH_MM))
    solver = EikonalSolver(p.grid.mask, fine, np.tile([1.0, 0.0, 0.0], (len(fib), 1)),
                           dtype=torch.float64)
    for relation in CV_RELATIONS:
        fast = float(cv_from_sigma(SIGMA_FAST, relation)) * load
        c_l, c_t = float(cv_from_sigma(SIGMA_L, relation)), float(cv_from_sigma(SIGMA_T, relation))
        c_x = np.sqrt(c_t ** 2 + (c_l ** 2 - c_t ** 2) * fib[:, 0] ** 2)
        cl = torch.as_tensor(np.where(in_layer, fast, c_x))[None]
        ct = torch.as_tensor(np.where(in_layer, fast, c_t))[None]
        t = solver.solve(cl, ct, [(p.stimuli[0][0].voxels, 0.0)])[0].numpy()
        record(f"eikonal, {relation}", t, shape, fine)
    out["runs"] = {name: {f"{z:g}": round(float(v), 3) for z, v in zip(BELOW_MM, row)}
                   for name, row in rows.items()}
    out["layer_speed_mm_per_ms"] = {k: round(float(v), 4) for k, v in speeds.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fibre", nargs="+", default=["x", "z", "rotating"],
                    choices=["x", "z", "rotating"])
    ap.add_argument("--converged", type=float, nargs="+", metavar="DX",
                    help="instead: the monodomain at these voxel edges (mm; at least two), "
                         "extrapolated to dx -> 0, against the eikonal of each CV-sigma "
                         "relation")
    ap.add_argument("--dt", type=float, default=0.00025,
                    help="with --converged: the time step of every grid (ms)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    results = []
    if args.converged:
        if len(args.converged) < 2:
            ap.error("--converged needs at least two voxel edges")
        for kind in args.fibre:
            r = converged(kind, tuple(args.converged), args.dt)
            results.append(r)
            print(f"fibres {kind} (walls {r['wall_s']} s): ms from the layer to depth "
                  + ", ".join(f"{z:g}" for z in BELOW_MM) + " mm; layer speed mm/ms")
            for name, row in r["runs"].items():
                print(f"  {name:26s} " + " ".join(f"{v:6.2f}" for v in row.values())
                      + f"   {r['layer_speed_mm_per_ms'][name]:.4f}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        return 0
    for kind in args.fibre:
        r = profile(kind)
        results.append(r)
        print(f"fibres {kind} (monodomain {r['monodomain_wall_s']} s): ms from the layer to "
              f"depth " + ", ".join(f"{z:g}" for z in BELOW_MM) + " mm")
        for name, row in r["runs"].items():
            print(f"  {name:26s} " + " ".join(f"{v:6.2f}" for v in row.values()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
