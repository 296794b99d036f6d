"""Benchmarks of the TP06 step: cell-steps per second, eager vs compiled, and pacing cost.

``run`` times :func:`pipeline.cell.tp06.step` on N cells (a mix of the three cell types,
per-cell G_Kr) for N = 1e3 ... 1e6, in eager mode and under ``torch.compile``, in float32
and float64. ``run_pacing`` times single-cell pacing (3 cells) for several numbers of
steps fused into one compiled call, the remedy for per-call overhead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import torch

from pipeline.cell import pacing, tp06

log = logging.getLogger(__name__)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(n_cells: int, dtype: torch.dtype, mode: str, device: torch.device,
              seconds: float = 3.0) -> dict[str, Any]:
    """Cell-steps per second of ``tp06.step`` on ``n_cells`` cells (dt 0.02 ms)."""
    gen = torch.Generator().manual_seed(0)
    codes = torch.randint(1, 4, (n_cells,), generator=gen).to(device)
    state = tp06.initial_state(codes, dtype=dtype, device=device)
    params = tp06.make_params(codes, dtype=dtype, device=device,
                              g_Kr=torch.rand(n_cells, generator=gen, dtype=dtype).to(device))
    dt = torch.tensor(0.02, dtype=dtype, device=device)
    stim = torch.zeros((), dtype=dtype, device=device)
    fn = tp06.step if mode == "eager" else torch.compile(tp06.step, dynamic=True)
    t0 = time.perf_counter()
    state = fn(state, params, stim, dt)
    _sync(device)
    first = time.perf_counter() - t0
    n_steps, t0 = 0, time.perf_counter()
    while True:
        state = fn(state, params, stim, dt)
        n_steps += 1
        if n_steps % 5 == 0 or n_cells >= 100_000:
            _sync(device)
            if time.perf_counter() - t0 > seconds:
                break
    _sync(device)
    elapsed = time.perf_counter() - t0
    tp06.check_state(state, "benchmark")
    return {"N": n_cells, "dtype": str(dtype).removeprefix("torch."), "mode": mode,
            "device": str(device), "steps": n_steps, "seconds": elapsed,
            "first_call_s": first, "cell_steps_per_s": n_cells * n_steps / elapsed}


def run(sizes: Sequence[int] = (1000, 10_000, 100_000, 1_000_000),
        dtypes: Sequence[str] = ("float32", "float64"),
        modes: Sequence[str] = ("eager", "compiled"), threads: int = 2,
        device: str = "cpu", seconds: float = 3.0) -> list[dict[str, Any]]:
    """Time every configuration and print a table; returns the rows."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    rows = []
    print(f"TP06 step, device {dev}, {threads} threads, torch {torch.__version__}")
    print(f"{'N':>9} {'dtype':>8} {'mode':>9} {'steps':>7} {'first call s':>13} "
          f"{'cell-steps/s':>14}")
    for dtype in dtypes:
        for mode in modes:
            for n in sizes:
                row = time_step(int(n), getattr(torch, dtype), mode, dev, seconds)
                rows.append(row)
                print(f"{row['N']:>9d} {row['dtype']:>8} {row['mode']:>9} {row['steps']:>7d} "
                      f"{row['first_call_s']:>13.2f} {row['cell_steps_per_s']:>14.3e}",
                      flush=True)
    return rows


def run_pacing(steps_per_call: Sequence[int] = (1, 5, 10), threads: int = 2,
               device: str = "cpu", model_ms: float = 200.0,
               dt_ms: float = 0.01) -> list[dict[str, Any]]:
    """Per-step cost of pacing 3 cells (endo, M, epi) vs steps fused per compiled call."""
    torch.set_num_threads(threads)
    names = ["endo", "M", "epi"]
    state = tp06.initial_state(names, device=device)
    params = tp06.make_params(names, device=device)
    rows = []
    print(f"TP06 pacing of 3 cells, dt {dt_ms} ms, device {device}, {threads} threads")
    print(f"{'steps/call':>10} {'first run s':>12} {'us/step':>9} {'100 beats @1000 ms, s':>22}")
    for k in steps_per_call:
        t0 = time.perf_counter()
        pacing.pace(state, params, 10.0, dt_ms=dt_ms, beats=1, steps_per_call=k,
                    progress=False)
        first = time.perf_counter() - t0
        res = pacing.pace(state, params, model_ms, dt_ms=dt_ms, beats=1, steps_per_call=k,
                          progress=False)
        per_step = res.wall_s / (model_ms / dt_ms)
        rows.append({"steps_per_call": k, "first_run_s": first, "us_per_step": per_step * 1e6,
                     "beats100_s": per_step * 100 * 1000.0 / dt_ms, "dt_ms": dt_ms})
        print(f"{k:>10d} {first:>12.1f} {per_step * 1e6:>9.1f} "
              f"{rows[-1]['beats100_s']:>22.0f}", flush=True)
    return rows
