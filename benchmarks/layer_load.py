"""The fast layer's load: its front speed on the myocardium over a free cable's, at 0.1 mm.

Measures, on 0.1 mm layered slabs (:func:`pipeline.monodomain.layer.layer_cv`: 12 mm
along the layer, 3 mm of myocardium, fibres along the layer, dt 0.0025 ms, float64), the
front speed in a fast layer of each depth for sigma_fast_endo 0.5 / 0.75 / 1 S/m, with the
myocardium at (sigma_l, sigma_t) = (0.15, 0.04), (0.15, 0.02), (0.15, 0.06), (0.1, 0.04),
(0.2, 0.04) S/m, divides it by the free cable's CV (``cv_from_sigma``), fits the
coefficients of :data:`pipeline.monodomain.layer.LOAD_COEF` per depth and prints the
table, the fit's error and the coefficients.

Run: ``python benchmarks/layer_load.py [--depths 0.5 0.75 1 1.5 2 3] [--json F]`` (about
15-25 s per slab batch on one core: 30 batches, 8-10 min). ``--refit F`` refits the rows
of an earlier JSON without running anything.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.monodomain.cv_relation import cv_from_sigma
from pipeline.monodomain.layer import LOAD_COEF, LOAD_DEPTHS_MM, fit_load, layer_cv

SIGMA_FAST = (0.5, 0.75, 1.0)
MYOCARDIUM = ((0.15, 0.04), (0.15, 0.02), (0.15, 0.06), (0.1, 0.04), (0.2, 0.04))


def measure(depths: list[float]) -> list[dict]:
    """One row per slab: depth, sigma_l, sigma_t, sigma_fast (S/m), cv (mm/ms), load."""
    rows = []
    sf = np.array(SIGMA_FAST)
    for depth in depths:
        for sigma_l, sigma_t in MYOCARDIUM:
            t0 = time.perf_counter()
            cv = layer_cv(sf, 0.1, 0.0025, depth_mm=depth, sigma_l=sigma_l, sigma_t=sigma_t)
            load = cv / cv_from_sigma(sf, "cable_0.1mm")   # the free cable on the same grid
            print(f"depth {depth:g} mm, sigma_l {sigma_l:g}, sigma_t {sigma_t:g}: load "
                  f"{np.round(load, 4).tolist()} ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
            rows += [{"depth_mm": depth, "sigma_l": sigma_l, "sigma_t": sigma_t,
                      "sigma_fast": float(s), "cv_mm_per_ms": float(c), "load": float(x)}
                     for s, c, x in zip(sf, cv, load)]
    return rows


def report(rows: list[dict]) -> dict:
    """Fit per depth; print the table of loads and the fit's largest error."""
    a = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    depths, coef = fit_load(a["depth_mm"], a["sigma_fast"], a["sigma_l"], a["sigma_t"],
                            a["load"])
    from pipeline.monodomain.layer import load_features

    print("\ndepth (mm) | load at sigma_fast 0.5 / 0.75 / 1 S/m (myocardium 0.15 / 0.04) | "
          "largest fit error (%)")
    worst = {}
    for h, c in zip(depths, coef):
        sel = a["depth_mm"] == h
        fit = 1.0 - np.exp(load_features(a["sigma_fast"][sel], a["sigma_l"][sel],
                                         a["sigma_t"][sel]) @ c)
        worst[float(h)] = float(100 * np.max(np.abs(fit / a["load"][sel] - 1)))
        base = sel & (a["sigma_l"] == 0.15) & (a["sigma_t"] == 0.04)
        print(f"{h:g} | {' / '.join(f'{x:.4f}' for x in a['load'][base])} | {worst[h]:.3f}")
    same = depths.shape == LOAD_DEPTHS_MM.shape and np.allclose(depths, LOAD_DEPTHS_MM)
    if same:
        print(f"largest change from LOAD_COEF: {np.max(np.abs(coef - LOAD_COEF)):.2e}")
    print("coefficients:\n" + json.dumps(np.round(coef, 5).tolist()))
    return {"rows": rows, "depths_mm": depths.tolist(), "coef": coef.tolist(),
            "fit_error_pct": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=float, nargs="+",
                        default=[float(h) for h in LOAD_DEPTHS_MM])
    parser.add_argument("--json", default=None)
    parser.add_argument("--refit", default=None, metavar="JSON")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = json.loads(Path(args.refit).read_text())["rows"] if args.refit else measure(
        args.depths)
    out = report(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
