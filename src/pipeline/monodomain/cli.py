"""Command line of the monodomain stage: benchmarks that print figures.

``pipeline bench niederer``   Niederer et al. 2011 slab, activation times at P1..P9 (JSON).
``pipeline bench throughput`` voxel-steps per second of the full step on a heart.
``pipeline bench cv``         conduction velocity and CV calibration on a cable.
``pipeline bench beat``       one 500 ms beat of a pattern on a heart: activation and
                              repolarisation figures.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from pipeline.cliutil import add_common
from pipeline.errors import InputError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    """Add ``bench niederer``, ``bench throughput``, ``bench cv`` and ``bench beat``."""
    p = bench.add_parser("niederer", help="Niederer 2011 slab benchmark: P1..P9 activation (ms)")
    p.add_argument("--dx", type=float, required=True, metavar="MM", help="voxel size (mm)")
    p.add_argument("--dt", type=float, required=True, metavar="MS", help="time step (ms)")
    p.add_argument("--json", metavar="OUT", default=None, help="write P1..P9 (ms) to OUT")
    p.add_argument("--diffusion", choices=["explicit", "implicit"], default="explicit")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--no-compile", action="store_true", help="eager mode (slow)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    add_common(p)
    p.set_defaults(func=run_niederer_cmd)

    t = bench.add_parser("throughput", help="voxel-steps/s of the full step on a heart")
    t.add_argument("--anatomy", metavar="H5", nargs="*", default=None,
                   help="anatomy.h5 files (default: parametric heart 0 at --resolution)")
    t.add_argument("--resolution", type=float, nargs="*", default=[1.0, 0.5], metavar="MM")
    t.add_argument("--batch", type=int, nargs="*", default=[1, 8])
    t.add_argument("--mode", nargs="*", choices=["eager", "compiled"],
                   default=["eager", "compiled"])
    t.add_argument("--steps", type=int, default=50, help="timed steps per configuration")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    t.add_argument("--model", nargs="*", default=["monodomain"],
                   choices=["monodomain", "reaction_eikonal"])
    t.add_argument("--timeout", type=float, default=1800.0, metavar="S",
                   help="give up on a configuration's child process after S seconds")
    t.add_argument("--tables", choices=["auto", "shared", "per-simulation"], default="auto",
                   help="diffusion coefficient tables shared by the batch or one per "
                        "simulation (auto: shared when compiled on CUDA and fewer)")
    t.add_argument("--steps-per-call", type=int, nargs="*", default=[1], metavar="K",
                   help="compiled steps chained per call (simulate.steps_per_call); one row "
                        "per value")
    t.add_argument("--ell-layout", nargs="*", default=["auto"],
                   choices=["auto", "voxel", "slot"],
                   help="the diffusion tables in memory: voxel by voxel or slot by slot "
                        "(coalesced loads on CUDA); auto: slot on CUDA, voxel on the CPU "
                        "(the solver's default); one row per value")
    t.add_argument("--json", metavar="OUT", default=None)
    add_common(t)
    t.set_defaults(func=run_throughput_cmd)

    c = bench.add_parser("cv", help="cable conduction velocity; optional calibration")
    c.add_argument("--dx", type=float, required=True, metavar="MM")
    c.add_argument("--dt", type=float, required=True, metavar="MS")
    c.add_argument("--sigma", type=float, nargs="+", default=[0.1334], metavar="S_PER_M")
    c.add_argument("--target", type=float, default=None, metavar="MM_PER_MS",
                   help="calibrate the first --sigma to this CV")
    c.add_argument("--celltype", default="endo", choices=["endo", "M", "epi"])
    c.add_argument("--json", metavar="OUT", default=None)
    add_common(c)
    c.set_defaults(func=run_cv_cmd)

    b = bench.add_parser("beat", help="simulate one beat on a heart; activation/repolarisation")
    b.add_argument("--anatomy", metavar="H5", required=True)
    b.add_argument("--pattern", default="normal")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--sigma", type=float, nargs=3, default=[0.15, 0.04, 0.8],
                   metavar=("L", "T", "FAST"), help="sigma_l sigma_t sigma_fast_endo (S/m)")
    b.add_argument("--gkr", type=float, default=1.0)
    b.add_argument("--bcl", type=float, default=1000.0)
    b.add_argument("--initial-states", metavar="H5", default=None,
                   help="cells/initial_states.h5 (default: TP06's built-in BCL 1000 states)")
    b.add_argument("--dt", type=float, default=0.04)
    b.add_argument("--duration", type=float, default=500.0)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--no-compile", action="store_true")
    b.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    b.add_argument("--calibrate", action="store_true",
                   help="scale sigma_l and sigma_t separately to their CVs at dx 0.1 mm "
                        "(sigma_fast_endo takes the sigma_l scale)")
    b.add_argument("--json", metavar="OUT", default=None)
    add_common(b)
    b.set_defaults(func=run_beat_cmd)


def _write(path: str | None, obj: Any) -> None:
    print(json.dumps(obj, indent=2))
    if path:
        from pipeline.io import write_json
        write_json(path, obj)


def run_niederer_cmd(args: argparse.Namespace) -> int:
    """Run the Niederer benchmark and print/write P1..P9 (ms)."""
    import torch

    from pipeline.monodomain.niederer import run_niederer
    torch.set_num_threads(max(1, args.threads))
    res = run_niederer(args.dx, args.dt, dtype=args.dtype, compile=not args.no_compile,
                       diffusion=args.diffusion, device=args.device)
    _write(args.json, res.as_dict())
    return 0


def run_cv_cmd(args: argparse.Namespace) -> int:
    """Print cable CVs (and a calibration when --target is given)."""
    import torch

    from pipeline.monodomain.cv import calibrate_conductivity, conduction_velocity
    torch.set_num_threads(1)          # cables are small: one thread
    out: dict[str, Any] = {"dx_mm": args.dx, "dt_ms": args.dt, "celltype": args.celltype}
    cv = conduction_velocity(args.sigma, args.dx, args.dt, celltype=args.celltype)
    out["cv_mm_per_ms"] = {str(s): round(float(v), 5) for s, v in zip(args.sigma, cv)}
    if args.target is not None:
        out["calibration"] = calibrate_conductivity(args.target, args.sigma[0], args.dx, args.dt,
                                                    celltype=args.celltype).as_dict()
    _write(args.json, out)
    return 0


def run_throughput_cmd(args: argparse.Namespace) -> int:
    """Measure voxel-steps/s and memory per (heart, batch, mode), each in a fresh process."""
    from pipeline.monodomain.throughput import measure_all, memory_per_voxel_simulation
    rows = measure_all(anatomies=args.anatomy, resolutions=args.resolution, batches=args.batch,
                       modes=args.mode, steps=args.steps, threads=args.threads,
                       device=args.device, timeout_s=args.timeout, models=args.model,
                       tables=args.tables, steps_per_call=args.steps_per_call,
                       layouts=args.ell_layout)
    key = "peak_cuda_MB" if args.device == "cuda" else "peak_rss_MB"
    _write(args.json, {"throughput": rows, "memory": memory_per_voxel_simulation(rows, key)})
    return 0


def run_beat_cmd(args: argparse.Namespace) -> int:
    """Simulate one beat and print activation / repolarisation figures."""
    import torch

    from pipeline.monodomain.bench import beat_figures
    if not Path(args.anatomy).exists():
        raise InputError(f"--anatomy {args.anatomy}: file not found")
    torch.set_num_threads(max(1, args.threads))
    out = beat_figures(args.anatomy, pattern=args.pattern, seed=args.seed, sigma=args.sigma,
                       gkr_scale=args.gkr, bcl_ms=args.bcl, initial_states=args.initial_states,
                       dt_ms=args.dt, duration_ms=args.duration, compile=not args.no_compile,
                       calibrate=args.calibrate, device=args.device)
    _write(args.json, out)
    return 0
