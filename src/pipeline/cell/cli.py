"""Command line of the cell stage: ``pipeline cell``, ``pipeline cells``, ``pipeline bench cell``."""

from __future__ import annotations

import argparse
import itertools
import logging
import time
from typing import Any

from pipeline.cliutil import add_common, add_settings, load_settings

log = logging.getLogger(__name__)

#: Keys of each object ``pipeline cell --json`` writes, in order.
CELL_JSON_KEYS = ("celltype", "bcl_ms", "gkr_scale", "Vrest_mV", "Vpeak_mV",
                  "dVdt_max_V_per_s", "APD50_ms", "APD90_ms", "trace_mV", "trace_dt_ms")


def register(sub: Any, bench: Any) -> None:
    """Add ``cell``, ``cells`` and ``bench cell`` to the ``pipeline`` command line."""
    p = sub.add_parser("cell", help="pace TP06 single cells and measure the last beat",
                       description="Pace every combination of the cell types, cycle lengths "
                                   "and G_Kr scales given, as one batch, and write the last "
                                   "beat's figures and trace as a JSON list.")
    p.add_argument("--celltype", nargs="+", default=["endo", "M", "epi"],
                   help="cell types: endo, M, epi (default: all three)")
    p.add_argument("--bcl", nargs="+", type=float, default=[1000.0], metavar="MS",
                   help="basic cycle lengths (ms)")
    p.add_argument("--gkr-scale", nargs="+", type=float, default=[1.0],
                   help="G_Kr multipliers")
    p.add_argument("--beats", type=int, default=100, help="beats paced; the last is measured")
    p.add_argument("--dt", type=float, default=0.01, metavar="MS", help="time step (ms)")
    p.add_argument("--stim-amplitude", type=float, default=-52.0, help="stimulus (pA/pF)")
    p.add_argument("--stim-duration", type=float, default=1.0, metavar="MS",
                   help="stimulus duration (ms)")
    p.add_argument("--steps-per-call", type=int, default=10,
                   help="time steps fused into one compiled call")
    p.add_argument("--no-compile", action="store_true", help="eager mode (slow)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--json", required=True, metavar="OUT", help="output JSON file")
    add_common(p)
    p.set_defaults(func=run_cell)

    p = sub.add_parser("cells", help="TP06 steady states for the workflow (cells stage)")
    p.add_argument("--out", required=True, metavar="H5", help="output initial_states.h5")
    add_settings(p, "workflow settings {'seed':..., 'cells': {...}} (JSON/YAML or @FILE)")
    p.add_argument("--steps-per-call", type=int, default=10,
                   help="time steps fused into one compiled call (speed only)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="override cells.compile (--no-compile: eager mode, slow)")
    add_common(p)
    p.set_defaults(func=run_cells)

    if bench is not None:
        p = bench.add_parser("cell", help="TP06 cell-steps per second, eager vs compiled")
        p.add_argument("--sizes", nargs="*", type=float, default=[1e3, 1e4, 1e5, 1e6],
                       help="numbers of cells N (none: skip the step benchmark)")
        p.add_argument("--dtypes", nargs="+", choices=["float32", "float64"],
                       default=["float32", "float64"])
        p.add_argument("--modes", nargs="+", choices=["eager", "compiled"],
                       default=["eager", "compiled"])
        p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
        p.add_argument("--device", default="cpu", help="cpu or cuda")
        p.add_argument("--seconds", type=float, default=3.0,
                       help="time spent measuring each configuration (s)")
        p.add_argument("--pacing", action="store_true",
                       help="also measure single-cell pacing (steps per compiled call)")
        p.add_argument("--json", default=None, metavar="OUT", help="also write results here")
        add_common(p)
        p.set_defaults(func=run_bench)


def _validate_cell_args(args: argparse.Namespace) -> None:
    from pipeline.cell import tp06
    from pipeline.cell.pacing import steps_per_beat
    from pipeline.errors import InputError

    for name in args.celltype:
        if name not in tp06.CELLTYPES:
            raise InputError(f"--celltype: unknown cell type {name!r}; expected one of "
                             f"{list(tp06.CELLTYPES)}")
    if not args.dt > 0:
        raise InputError(f"--dt must be positive, got {args.dt} ms")
    if args.beats < 1:
        raise InputError(f"--beats must be >= 1, got {args.beats}")
    for b in args.bcl:
        if not b > args.stim_duration:
            raise InputError(f"--bcl {b} ms must exceed the stimulus duration")
        steps_per_beat(b, args.dt)
    for g in args.gkr_scale:
        if not g >= 0:
            raise InputError(f"--gkr-scale must be >= 0, got {g}")
    if not args.stim_duration > 0:
        raise InputError(f"--stim-duration must be positive, got {args.stim_duration}")


def run_cell(args: argparse.Namespace) -> int:
    """``pipeline cell``: pace the combinations, measure the last beat, write JSON."""
    _validate_cell_args(args)
    import torch

    from pipeline.cell import beat, pacing, tp06
    from pipeline.io import write_json

    torch.set_num_threads(min(torch.get_num_threads(), 2))
    dtype = getattr(torch, args.dtype)
    combos = list(itertools.product(args.celltype, args.bcl, args.gkr_scale))
    names = [c[0] for c in combos]
    state = tp06.initial_state(names, dtype=dtype)
    params = tp06.make_params(names, dtype=dtype,
                              g_Kr=torch.tensor([c[2] for c in combos], dtype=dtype))
    res = pacing.pace(state, params, [c[1] for c in combos], dt_ms=args.dt, beats=args.beats,
                      stim_amplitude=args.stim_amplitude, stim_duration_ms=args.stim_duration,
                      steps_per_call=args.steps_per_call, compile=not args.no_compile)
    log.info("%d beats of %d cells took %.1f s (dt %.3g ms)", args.beats, len(combos),
             res.wall_s, args.dt)
    out = []
    for (celltype, bcl, gkr), trace in zip(combos, res.traces):
        fig = beat.figures(trace, args.dt)
        record: dict[str, Any] = {"celltype": celltype, "bcl_ms": bcl, "gkr_scale": gkr}
        for key in CELL_JSON_KEYS[3:8]:
            record[key] = round(float(fig[key]), 4)
        record["trace_mV"] = [round(float(v), 4) for v in beat.resample(trace, args.dt, 0.1)]
        record["trace_dt_ms"] = 0.1
        out.append(record)
        log.info("%s BCL %g G_Kr x%g: Vrest %.2f mV, Vpeak %.2f mV, dV/dt %.0f V/s, "
                 "APD50 %.1f ms, APD90 %.1f ms", celltype, bcl, gkr, fig["Vrest_mV"],
                 fig["Vpeak_mV"], fig["dVdt_max_V_per_s"], fig["APD50_ms"], fig["APD90_ms"])
    write_json(args.json, out)
    return 0


def run_cells(args: argparse.Namespace) -> int:
    """``pipeline cells``: the cells stage (steady states to ``initial_states.h5``)."""
    from dataclasses import asdict

    from pipeline.settings import CellsSettings

    over = {} if args.compile is None else {"cells": {"compile": args.compile}}
    cfg, _seed = load_settings(args, "cells", overrides=over)
    s = CellsSettings.from_config(cfg)
    from pipeline.cell.pacing import steps_per_beat
    for b in s.bcl_ms:
        steps_per_beat(b, s.dt_ms)
    import torch

    from pipeline.cell import steady

    torch.set_num_threads(min(torch.get_num_threads(), 2))
    table = steady.compute_initial_states(
        list(s.celltypes), list(s.bcl_ms), list(s.gkr_scale), dt_ms=s.dt_ms,
        min_beats=s.min_beats, max_beats=s.max_beats, tolerance_mV=s.tolerance_mV,
        stim_amplitude=s.stim_amplitude_pA_per_pF, stim_duration_ms=s.stim_duration_ms,
        steps_per_call=args.steps_per_call, compile=s.compile)
    steady.write_initial_states(args.out, table, {**asdict(s), "celltypes": list(s.celltypes),
                                                  "bcl_ms": list(s.bcl_ms),
                                                  "gkr_scale": list(s.gkr_scale)})
    log.info("wrote %s", args.out)
    return 0


def run_bench(args: argparse.Namespace) -> int:
    """``pipeline bench cell``: print cell-steps per second."""
    from pipeline.cell import bench

    t0 = time.perf_counter()
    rows = []
    if args.sizes:
        rows += bench.run(sizes=[int(n) for n in args.sizes], dtypes=args.dtypes,
                          modes=args.modes, threads=args.threads, device=args.device,
                          seconds=args.seconds)
    if args.pacing:
        rows += bench.run_pacing(threads=args.threads, device=args.device)
    if args.json:
        from pipeline.io import write_json
        write_json(args.json, rows)
    log.info("benchmark took %.0f s", time.perf_counter() - t0)
    return 0
