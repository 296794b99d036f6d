"""The host's work per time step: one compiled call per step against steps chained per call.

Each configuration is a :class:`~pipeline.monodomain.solver.MonodomainSolver` of the same
problem, built and compiled first (its first run's wall time, compilation included, is
reported), then timed in alternating rounds in this one process, so that the machine's
drift falls on every configuration alike (``paired``: the median over rounds of the first
configuration's time over this one's). A configuration is ``DRIVE:K``:

- ``DRIVE`` ``window``: the reaction-eikonal drive evaluated inside the compiled kernel
  (:class:`~pipeline.monodomain.stimulus.ActivationStimulus`, the simulate stage's);
  ``eager``: the same drive computed by eager torch ops on the host every step and passed
  in as a current (the loop before session 20); ``sites``: the problem's site stimuli
  (monodomain);
- ``K``: ``steps_per_call``.

Problems: ``--problem cable`` (two 15 mm cables at 0.1 mm, site stimuli, one thread: a
CV measurement's size), ``--problem heart`` (parametric heart 0 at ``--resolution``,
``--batch`` normal beats, dt 0.1 ms, two threads: the demo's shard). Every run records V
every 10 steps as the simulate stage does. Also reports the largest differences of the
activation times and of the final V from the first configuration.

    python benchmarks/steps_per_call.py --problem heart --resolution 2 --batch 8 \
        --configs eager:1 window:1 window:5 [--json out.json]
    python benchmarks/steps_per_call.py --problem cable --configs sites:1 sites:5 sites:10

Measured figures: docs/fidelity-log.md, "Session 20".
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch


class EagerDrive:
    """A drive's current computed on the host each step (no ``window``: not fusable)."""

    def __init__(self, drive: Any) -> None:
        self.drive, self.last_off_ms = drive, drive.last_off_ms

    def current(self, t_ms: float, dt_ms: float, v: torch.Tensor | None = None) -> torch.Tensor:
        return self.drive.current(t_ms, dt_ms, v)


def problem_and_drive(args: argparse.Namespace) -> tuple[Any, Any]:
    """The problem and, for a heart, its reaction-eikonal drive."""
    if args.problem == "cable":
        from pipeline.monodomain.cv import cable_problem
        problem = cable_problem(np.array([0.1, 0.12]), 0.1, 0.01, length_mm=15.0)
        from dataclasses import replace
        return replace(problem, duration_ms=0.01 * args.steps), None
    from pipeline.monodomain.batch import build_problem, prepare_anatomy
    from pipeline.monodomain.throughput import _eikonal_drive, _heart
    from pipeline.params import SimParams
    prep = prepare_anatomy(_heart(None, args.resolution))
    specs = [SimParams(sim_id=b, pattern="normal", sigma_l=0.15 + 0.01 * b, sigma_t=0.04,
                       sigma_fast_endo=0.8, seed=b) for b in range(args.batch)]
    problem = build_problem(prep, specs, dt_ms=0.1, duration_ms=0.1 * args.steps)
    return problem, _eikonal_drive(problem, prep, "cpu")[0]


def main() -> int:
    from pipeline.monodomain.solver import MonodomainSolver

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", choices=["cable", "heart"], default="heart")
    ap.add_argument("--resolution", type=float, default=2.0, metavar="MM")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=300, help="steps per timed run")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--configs", nargs="+", default=["eager:1", "window:1", "window:5"])
    ap.add_argument("--json", default=None, metavar="OUT")
    args = ap.parse_args()
    torch.set_num_threads(1 if args.problem == "cable" else 2)
    problem, drive = problem_and_drive(args)
    solvers, rows = {}, []
    for config in args.configs:
        kind, k = config.split(":")
        if kind != "sites" and drive is None:
            ap.error(f"{config}: a cable has site stimuli only (use sites:K)")
        stimulus = {"sites": None, "window": drive,
                    "eager": EagerDrive(drive) if drive is not None else None}[kind]
        t0 = time.perf_counter()
        solvers[config] = MonodomainSolver(problem, compile=True, steps_per_call=int(k),
                                           stimulus=stimulus)
        solvers[config].run(lambda t, v: None, record_every=10)
        rows.append({"config": config, "first_run_s": round(time.perf_counter() - t0, 1)})
    times: dict[str, list[float]] = {c: [] for c in args.configs}
    results = {}
    for _ in range(args.rounds):
        for config in args.configs:
            t0 = time.perf_counter()
            results[config] = solvers[config].run(lambda t, v: None, record_every=10)
            times[config].append(time.perf_counter() - t0)
    first = args.configs[0]
    work = problem.batch * problem.grid.n_tissue
    for row in rows:
        config, ts = row["config"], np.array(times[row["config"]])
        res, ref = results[config], results[first]
        row.update({
            "problem": args.problem, "n_voxels": problem.grid.n_tissue, "batch": problem.batch,
            "steps": res.steps, "us_per_step_best": round(1e6 * ts.min() / res.steps, 1),
            "voxel_steps_per_s_best": float(f"{res.steps * work / ts.min():.3g}"),
            "voxel_steps_per_s_median": float(f"{res.steps * work / np.median(ts):.3g}"),
            "paired": round(float(np.median(np.array(times[first]) / ts)), 3),
            "activation_diff_ms": float(np.nanmax(np.abs(res.activation_ms - ref.activation_ms),
                                                  initial=0.0)),
            "v_final_diff_mV": float(np.abs(res.v_final - ref.v_final).max())})
        print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
