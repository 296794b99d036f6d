"""``pipeline anatomy`` (one heart) and ``pipeline bench anatomy`` (build time)."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from pipeline.cliutil import add_common, add_settings, load_settings
from pipeline.errors import InputError

log = logging.getLogger(__name__)

SHARED_MESH = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "anatomy" \
    / "cardiac_ml_heart" / "heart_mesh.vtk"


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    """Add ``anatomy`` and ``bench anatomy``."""
    p = sub.add_parser("anatomy", help="build one biventricular heart (anatomy.h5/.vtu/.png)",
                       description="Voxelise a parametric or real heart; compute coordinates, "
                       "LDRB fibres, cell types, the 75 points and the 10 electrodes.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--mesh", metavar="PATH", help="volume mesh (any format meshio reads)")
    src.add_argument("--parametric", metavar="INDEX", type=int,
                     help="parametric heart number; its shape is drawn from (config seed, INDEX)")
    p.add_argument("--resolution", metavar="MM", type=float, default=None,
                   help="voxel size in mm (default: anatomy.resolution_mm of the config)")
    p.add_argument("--name", required=True, help="heart name (letters and digits)")
    p.add_argument("--out", metavar="DIR", required=True, help="output folder")
    p.add_argument("--scale-to-mm", type=float, default=None,
                   help="factor from mesh units to mm (default: the config entry of --name, or 1)")
    p.add_argument("--labels", default=None,
                   help="cell-data array with surface labels (1 base, 2 epi, 3 LV, 4 RV endo)")
    p.add_argument("--no-png", action="store_true", help="skip the rendered PNG")
    add_settings(p, "JSON/YAML {seed, anatomy: {...}} from the workflow config, or @FILE")
    add_common(p)
    p.set_defaults(func=run_anatomy)

    b = bench.add_parser("anatomy", help="time the build of one heart")
    b.add_argument("--resolution", metavar="MM", type=float, default=1.0)
    b.add_argument("--mesh", metavar="PATH", default=None,
                   help=f"mesh to time as well (default: {SHARED_MESH} if present)")
    b.add_argument("--parametric", metavar="INDEX", type=int, default=0)
    add_settings(b)
    add_common(b)
    b.set_defaults(func=run_bench)


def _settings(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    over = {} if args.resolution is None else {"anatomy": {"resolution_mm": args.resolution}}
    return load_settings(args, "anatomy", overrides=over)


def run_anatomy(args: argparse.Namespace) -> int:
    """Build one heart and write DIR/anatomy.h5, DIR/anatomy.vtu and DIR/anatomy.png."""
    import re

    from pipeline.anatomy.build import build_mesh, build_parametric
    from pipeline.anatomy.io import write_anatomy, write_vtu
    from pipeline.anatomy.walls import describe, wall_thickness

    settings, seed = _settings(args)
    if not re.fullmatch(r"[A-Za-z0-9]+", args.name):
        raise InputError(f"--name {args.name!r}: letters and digits only")
    out = Path(args.out)
    if args.mesh:
        entry = next((m for m in settings["meshes"] if m["name"] == args.name), {})
        scale = args.scale_to_mm or entry.get("scale_to_mm", 1.0)
        labels = args.labels or entry.get("labels")
        anatomy, times = build_mesh(args.mesh, settings, args.name, scale, labels)
    else:
        if args.parametric < 0:
            raise InputError(f"--parametric {args.parametric}: must be >= 0")
        anatomy, times = build_parametric(args.parametric, seed, settings, args.name)
    config = {"seed": seed, "anatomy": settings,
              "source": args.mesh or f"parametric {args.parametric}"}
    write_anatomy(out / "anatomy.h5", anatomy, config)
    write_vtu(out / "anatomy.vtu", anatomy)
    if not args.no_png:
        from pipeline.anatomy.render import render_png

        render_png(out / "anatomy.png", anatomy)
    log.info("heart %s: %.1f cm^3 at %.2f mm, step times %s", args.name,
             anatomy.volume_mm3 / 1000, anatomy.spacing[0],
             {k: round(v, 2) for k, v in times.items()})
    log.info("heart %s %s", args.name,
             describe(wall_thickness(anatomy.mask, anatomy.region, anatomy.spacing)))
    return 0


def run_bench(args: argparse.Namespace) -> int:
    """Print the build time of one parametric heart (and the shared mesh) at --resolution."""
    from pipeline.anatomy.build import build_mesh, build_parametric
    from pipeline.naming import parametric_heart

    settings, seed = _settings(args)
    rows = []
    t = time.perf_counter()
    anatomy, times = build_parametric(args.parametric, seed, settings)
    rows.append((parametric_heart(args.parametric), time.perf_counter() - t, anatomy, times, None))
    mesh = Path(args.mesh) if args.mesh else SHARED_MESH
    if mesh.exists():
        from pipeline.anatomy.mesh import read_heart_mesh

        t = time.perf_counter()
        anatomy, times = build_mesh(mesh, settings, "llnl")
        rows.append((mesh.name, time.perf_counter() - t, anatomy, times,
                     read_heart_mesh(mesh).volume_mm3))
    for name, total, anatomy, times, ref in rows:
        extra = "" if ref is None else \
            f", mesh volume {ref / 1000:.2f} cm^3 (voxels {100 * (anatomy.volume_mm3 / ref - 1):+.2f} %)"
        print(f"anatomy {name} at {args.resolution:g} mm: build {total:.1f} s "
              f"({json.dumps({k: round(v, 2) for k, v in times.items()})}), "
              f"{int(anatomy.mask.sum())} voxels, {anatomy.volume_mm3 / 1000:.2f} cm^3{extra}")
    return 0
