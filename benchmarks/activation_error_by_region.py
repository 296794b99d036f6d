"""Where a coarse run's activation error lives: by region, fast layer and time.

Reads the resolution study's cache (``pipeline bench convergence --cache C``): the
monodomain reference's activation map (0.5 mm, or ``--reference-dx``), sampled at the 2 mm
grid's voxel centres (:func:`pipeline.anatomy.grid.sample_tissue`), against each run's
map there (a run on another grid, ``NAME=FILE@DX``, sampled at the same centres). Prints,
per pattern and run, the mean signed / absolute error (ms) over all voxels, the fast layers (the
eikonal's unjoined rule, 1 mm), the LV and RV free walls and the septum outside them, and
the voxels the reference activates before 20 ms, between 20 and 50 ms and after 50 ms.
Figures: docs/fidelity-log.md, "Session 24".

    python benchmarks/activation_error_by_region.py --cache C [--heart heart_mesh] \
        [--reference-dx 0.5] [--duration 450] \
        [--run eik1=heart_mesh_2mm_reaction_eikonal_eik1mm_curv_srcmyo_450ms.npz ...] \
        [--run mono05=heart_mesh_0.5mm_monodomain_srcmyo_250ms.npz@0.5]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pipeline.anatomy.grid import sample_tissue
from pipeline.anatomy.io import read_anatomy
from pipeline.monodomain.batch import prepare_anatomy

RUNS = {"eikonal 1 mm": "{h}_2mm_reaction_eikonal_eik1mm_curv_srcmyo_{d}ms.npz",
        "eikonal 0.5 mm": "{h}_2mm_reaction_eikonal_eik0.5mm_curv_srcmyo_{d}ms.npz",
        "monodomain 2 mm": "{h}_2mm_monodomain_srcmyo_{d}ms.npz"}


def groups(coords, layer: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
    """Masks (n,) of the 2 mm voxels by region, layer and the reference's time."""
    rest = ~layer
    return {"all": np.ones_like(layer), "layer": layer,
            "LV free wall": rest & (coords.region == 1),
            "RV free wall": rest & (coords.region == 2),
            "septum": rest & (coords.region == 3),
            "t < 20 ms": ref < 20, "t 20-50 ms": (ref >= 20) & (ref < 50),
            "t > 50 ms": ref >= 50}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--heart", default="heart_mesh")
    ap.add_argument("--run", nargs="*", default=[], help="NAME=FILE[@DX] in the cache, DX "
                    "the run's grid (2 by default; default runs: the 1 and 0.5 mm eikonals "
                    "and the 2 mm monodomain)")
    ap.add_argument("--reference-dx", type=float, default=0.5)
    ap.add_argument("--duration", type=float, default=450.0, help="the runs' ms (file names)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    h, d = args.heart, f"{args.duration:g}"
    runs = dict(r.split("=", 1) for r in args.run) or {k: v.format(h=h, d=d) for k, v in
                                                       RUNS.items()}
    coarse = prepare_anatomy(read_anatomy(args.cache / f"{h}_2mm" / "anatomy.h5"),
                             fast_depth_mm=1.0, diffusion=False)
    layer = coarse.fast["fast_lv"] | coarse.fast["fast_rv"]
    grids: dict[float, object] = {}

    def at_coarse(dx: float, amap: np.ndarray) -> np.ndarray:
        """A map on the grid of ``dx`` mm at the 2 mm voxel centres."""
        if dx == 2.0:
            return amap
        if dx not in grids:
            grids[dx] = read_anatomy(args.cache / f"{h}_{dx:g}mm" / "anatomy.h5")
        a = grids[dx]
        return sample_tissue(a.mask, a.origin, float(np.max(a.spacing)),
                             amap.astype(np.float64), coarse.coords.xyz)

    ref = np.load(args.cache / f"{h}_{args.reference_dx:g}mm_monodomain_srcmyo_{d}ms.npz")
    out = []
    for pattern in ("normal", "lbbb"):
        r = at_coarse(args.reference_dx, ref[f"{pattern}/map"])
        for name, spec in runs.items():
            file, _, dx = spec.partition("@")
            e = at_coarse(float(dx or 2.0), np.load(args.cache / file)[f"{pattern}/map"]) - r
            ok = np.isfinite(e)
            row = {"pattern": pattern, "run": name}
            for label, m in groups(coarse.coords, layer, r).items():
                m = m & ok
                row[label] = [round(float(e[m].mean()), 2), round(float(np.abs(e[m]).mean()),
                                                                     2), int(m.sum())]
            out.append(row)
            print(f"{pattern:6s} {name:16s} " + " | ".join(
                f"{k} {v[0]:+.1f}/{v[1]:.1f}" for k, v in row.items() if isinstance(v, list)))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
