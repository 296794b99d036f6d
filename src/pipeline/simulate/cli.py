"""Command line of the simulate stage: ``pipeline simulate`` and ``pipeline simulate-figures``.

``pipeline simulate --anatomy H5 --cells H5 --params CSV --out H5 [--calibration JSON]
[--eikonal-anatomy H5] [--settings JSON]`` checks every input, then runs the shard's
simulations in batches and writes the shard file atomically. ``pipeline calibrate --anatomy H5
--out JSON [--campaign NAME] [--settings JSON]`` finds a heart's CV calibration once for all
its shards (:mod:`pipeline.simulate.calibration`). ``pipeline simulate-figures --shard H5
--anatomy H5 --index I --out DIR`` draws the 12-lead ECG, the activation map and Vm traces of
one simulation. ``pipeline bench shard`` times one shard on a parametric heart; ``pipeline
bench convergence`` runs the resolution study (:mod:`pipeline.simulate.convergence`). """

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from pipeline.cliutil import add_common, add_settings, load_settings

log = logging.getLogger(__name__)


def register(sub: Any, bench: Any) -> None:
    """Add ``simulate``, ``simulate-figures`` and ``bench shard`` to the CLI."""
    p = sub.add_parser("simulate", help="run one shard of monodomain simulations",
                       description="Run the simulations of one parameter table (one anatomy) "
                                   "and write the shard file: ECG, electrodes, Vm at the 75 "
                                   "points, activation times, APD90.")
    p.add_argument("--anatomy", required=True, help="anatomy.h5 of the shard's heart")
    p.add_argument("--cells", required=True, help="cells/initial_states.h5")
    p.add_argument("--params", required=True, help="the shard's parameter CSV")
    p.add_argument("--out", required=True, help="output shard .h5")
    p.add_argument("--calibration", default=None, metavar="JSON",
                   help="the heart's CV calibration ('pipeline calibrate'), checked against "
                        "the shard; without it the shard finds its own")
    p.add_argument("--eikonal-anatomy", default=None, metavar="H5",
                   help="the heart's anatomy.h5 at simulate.eikonal_resolution_mm (the "
                        "reaction-eikonal mode's finer eikonal grid)")
    add_settings(p, "JSON/YAML config mapping (or @FILE); section 'simulate' is used")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    _add_run_options(p)
    add_common(p)
    p.set_defaults(func=_simulate)
    _register_calibrate(sub)

    f = sub.add_parser("simulate-figures", help="figures of one simulation of a shard",
                       description="12-lead ECG (clinical layout), activation map on the 3-D "
                                   "anatomy, Vm traces at a few points.")
    f.add_argument("--shard", required=True, help="shard .h5 written by 'pipeline simulate'")
    f.add_argument("--anatomy", required=True, help="the shard's anatomy.h5")
    f.add_argument("--index", type=int, default=0, help="row of the simulation in the shard")
    f.add_argument("--out", required=True, help="output folder")
    f.add_argument("--points", type=int, nargs="+", default=[1, 17, 67],
                   help="1-based recording points for the Vm figure (default 1 17 67, "
                        "as in the paper)")
    add_common(f)
    f.set_defaults(func=_figures)

    b = bench.add_parser("shard", help="wall time of one shard on a parametric heart",
                         description="Simulate one shard on a parametric heart and print the "
                                     "wall time per stage and per simulated ms.")
    b.add_argument("--resolution", type=float, default=1.0, help="voxel edge (mm)")
    b.add_argument("--n", type=int, default=8, help="simulations")
    b.add_argument("--duration", type=float, default=500.0, help="simulated ms")
    b.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    b.add_argument("--out", default=None, help="keep the shard file and figures here")
    add_settings(b, "config mapping ('simulate' section)")
    add_common(b)
    b.set_defaults(func=_bench_shard)
    _register_convergence(bench)
    g = bench.add_parser("gpu", help="CUDA checks: CPU agreement, Niederer, throughput, memory",
                         description="On a CUDA machine: CPU-vs-CUDA agreement of a short "
                                     "simulate run, Niederer P8 on CUDA, compiled throughput "
                                     "at 1 and 0.5 mm for batches 1/8/64, memory per "
                                     "voxel-simulation and the largest batch, kernels per "
                                     "step; one JSON (pipeline.simulate.gpucheck).")
    g.add_argument("--json", default="results/bench/gpu_check.json", metavar="OUT")
    g.add_argument("--cache", default="results/bench/gpu", metavar="DIR")
    g.add_argument("--quick", action="store_true", help="1 mm, batches 1 and 8, dx 0.2 only")
    g.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                   help="cpu: the same sections on the CPU, a dry run of the bench itself")
    g.add_argument("--budget", type=float, default=None, metavar="S",
                   help="skip the sections that would start after S seconds (the JSON is "
                        "written after every section)")
    from pipeline.simulate.gpucheck import SECTIONS

    g.add_argument("--skip", nargs="+", default=[], metavar="SECTION", choices=SECTIONS,
                   help="sections not to run (measured in an earlier call, say)")
    add_common(g)
    g.set_defaults(func=_bench_gpu)


def _register_calibrate(sub: Any) -> None:
    c = sub.add_parser("calibrate", help="CV calibration of a heart's monodomain shards",
                       description="Find the conductivity scales of the monodomain at the "
                                   "heart's voxel size and the simulate settings, at the "
                                   "middle of the campaign's sigma_l and sigma_t ranges, and "
                                   "write them as JSON (read by 'pipeline simulate "
                                   "--calibration').")
    c.add_argument("--anatomy", required=True, help="anatomy.h5 of the heart")
    c.add_argument("--out", required=True, help="output calibration .json")
    c.add_argument("--campaign", default=None,
                   help="campaign of --settings whose conductivity ranges are served "
                        "(default: the schema's default ranges)")
    add_settings(c, "JSON/YAML config mapping (or @FILE); sections 'simulate' and "
                    "'campaigns' are used")
    c.add_argument("--threads", type=int, default=1, help="torch CPU threads (cables: 1)")
    add_common(c)
    c.set_defaults(func=_calibrate)


def _calibrate(args: argparse.Namespace) -> int:
    import torch

    from pipeline.settings import SimulateSettings
    from pipeline.simulate.calibration import (
        calibrate_heart,
        campaign_ranges,
        write_calibration,
    )

    cfg = load_settings(args)
    ranges = campaign_ranges(cfg, args.campaign)
    torch.set_num_threads(max(1, args.threads))
    cal = calibrate_heart(args.anatomy, SimulateSettings.from_config(cfg["simulate"]), ranges)
    write_calibration(args.out, cal, {"anatomy": str(args.anatomy), "campaign": args.campaign})
    log.info("calibration of %s written to %s in %.1f s", args.anatomy, args.out, cal.wall_s)
    return 0


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Run settings (pipeline.config.RUN_KEYS['simulate']): override simulate.* of --settings."""
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                   help="override simulate.device")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="override simulate.compile (torch.compile of the time step)")
    p.add_argument("--batch-size", type=int, default=None, help="override simulate.batch_size")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help="override simulate.dtype")
    p.add_argument("--steps-per-call", type=int, default=None,
                   help="override simulate.steps_per_call (compiled steps chained per call)")


def _simulate(args: argparse.Namespace) -> int:
    from pipeline.config import RUN_KEYS
    from pipeline.settings import RunSettings, SimulateSettings
    from pipeline.simulate.run import prepare_shard, run_shard

    run = {k: getattr(args, k) for k in RUN_KEYS["simulate"] if getattr(args, k) is not None}
    cfg, _ = load_settings(args, "simulate", overrides={"simulate": run})
    job = prepare_shard(args.anatomy, args.cells, args.params,
                        SimulateSettings.from_config(cfg),
                        calibration_path=args.calibration,
                        eikonal_anatomy_path=args.eikonal_anatomy)   # all checks first
    run_shard(job, args.out, RunSettings.from_config(cfg, threads=args.threads))
    return 0


def _figures(args: argparse.Namespace) -> int:
    from pipeline.simulate.run import shard_figures

    shard_figures(args.shard, args.anatomy, args.index, Path(args.out),
                  points=[p - 1 for p in args.points])
    return 0


def _register_convergence(bench: Any) -> None:
    c = bench.add_parser("convergence", help="resolution study: label and ECG error per grid",
                         description="Simulate fixed parameters at several voxel sizes and "
                                     "models through the simulate stage and compare each "
                                     "run with the finest monodomain run.")
    c.add_argument("--heart", nargs="+", default=["param000"],
                   help="paramNNN (a parametric heart) or a mesh file (e.g. the LLNL heart)")
    c.add_argument("--resolution", type=float, nargs="+", default=[2.0, 1.0], metavar="MM")
    c.add_argument("--model", nargs="+", default=["monodomain", "reaction_eikonal"],
                   choices=["monodomain", "reaction_eikonal"])
    c.add_argument("--pattern", nargs="+", default=["normal"])
    c.add_argument("--duration", type=float, default=400.0, metavar="MS")
    c.add_argument("--cache", default="results/bench/convergence", metavar="DIR",
                   help="runs are kept here and reused")
    c.add_argument("--slab", action="store_true", help="also the slab CVs at 0/45/90 degrees")
    c.add_argument("--finest-too", action="store_true",
                   help="also run the other models on the finest grid (their model error "
                        "against the reference, without grid error)")
    c.add_argument("--eikonal-resolution", type=float, default=None, metavar="MM",
                   help="reaction-eikonal runs on coarser grids solve the eikonal on the "
                        "heart at this voxel size (simulate.eikonal_resolution_mm)")
    c.add_argument("--no-eikonal-curvature", action="store_true",
                   help="reaction-eikonal runs without the curvature correction "
                        "(simulate.eikonal_curvature: false)")
    c.add_argument("--no-eikonal-layer-load", action="store_true",
                   help="reaction-eikonal runs with the fast layers at a free cable's speed "
                        "(simulate.eikonal_layer_load: false)")
    c.add_argument("--cv-relation", default="continuum", choices=["cable_0.1mm", "continuum"],
                   help="every run's CV-sigma relation (simulate.cv_relation)")
    c.add_argument("--reference-cv-relation", default=None,
                   choices=["cable_0.1mm", "continuum"],
                   help="the reference's, if not --cv-relation (the 0.25 mm references of "
                        "sessions 27-30 are cable_0.1mm)")
    c.add_argument("--ecg-fast-layer-source", default="myocardium",
                   choices=["tissue", "myocardium"],
                   help="the fast layers' conductivity in every run's ECG source "
                        "(simulate.ecg_fast_layer_source)")
    c.add_argument("--json", default=None, metavar="OUT")
    c.add_argument("--figure", default=None, metavar="PNG")
    c.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    c.add_argument("--no-compile", action="store_true", help="eager time step (slow)")
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--seed", type=int, default=20221, help="shape seed of parametric hearts")
    add_common(c)
    c.set_defaults(func=_bench_convergence)


def _bench_convergence(args: argparse.Namespace) -> int:
    import json

    from pipeline.io import write_json
    from pipeline.settings import RunSettings
    from pipeline.simulate.convergence import slab_cvs, study, study_figure

    run = RunSettings(device=args.device, dtype="float32", compile=not args.no_compile,
                      batch_size=8, threads=args.threads)
    result = study(args.heart, args.resolution, args.model, args.pattern, args.duration,
                   Path(args.cache), args.seed, run, finest_too=args.finest_too,
                   eikonal_dx=args.eikonal_resolution,
                   eikonal_curvature=not args.no_eikonal_curvature,
                   eikonal_layer_load=not args.no_eikonal_layer_load,
                   cv_relation=args.cv_relation, fast_layer_source=args.ecg_fast_layer_source,
                   reference_cv_relation=args.reference_cv_relation)
    if args.slab:
        result["slab"] = slab_cvs(args.resolution, args.model, cv_relation=args.cv_relation)
    if args.json:
        write_json(args.json, result)
    if args.figure:
        study_figure(result, Path(args.figure))
    print(json.dumps(result, indent=1))
    return 0


def _bench_gpu(args: argparse.Namespace) -> int:
    import json

    from pipeline.simulate.gpucheck import gpu_check

    print(json.dumps(gpu_check(Path(args.json), Path(args.cache), quick=args.quick,
                                budget_s=args.budget, device=args.device,
                                skip=tuple(args.skip)), indent=1))
    return 0


def _bench_shard(args: argparse.Namespace) -> int:
    from pipeline.simulate.bench import bench_shard

    load_settings(args)   # a bad --settings fails here, before any work
    bench_shard(resolution_mm=args.resolution, n=args.n, duration_ms=args.duration,
                threads=args.threads, out=args.out, settings=args.settings)
    return 0
