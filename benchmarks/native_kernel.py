"""The native CPU kernel of the explicit step against the torch.compile one, interleaved.

On a shared machine the throughput of one configuration drifts by tens of per cent between
processes and minutes, so two kernels timed in separate runs cannot be compared. This
script builds one problem (a heart, B normal beats), then times the two kernels of the same
step in alternating rounds in one process: the compiled torch step (inductor: a gather
kernel and a pointwise kernel) and the native kernel (:mod:`pipeline.monodomain.native`,
one pass). Each round advances ``--steps`` steps from the same mid-activation state.
Printed: best and median voxel-steps/s of each kernel, their ratio, and the largest
difference between the two kernels' states after one step (relative to each state's
range) and between their activation times after the rounds.

Run: ``python benchmarks/native_kernel.py --anatomy A.h5 --batch 1 8 --rounds 12``
(default: parametric heart 0 at 1 mm, built on the fly; about 3 minutes on 2 cores with
inductor's compilation).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch

from pipeline.cell.tp06 import N_STATES
from pipeline.monodomain.batch import build_problem, prepare_anatomy
from pipeline.monodomain.solver import MonodomainSolver
from pipeline.monodomain.throughput import _heart
from pipeline.params import SimParams


def _advance(solver: MonodomainSolver, state: torch.Tensor, act: torch.Tensor,
             rep: torch.Tensor, k0: int, steps: int) -> tuple[torch.Tensor, ...]:
    dt = solver.problem.dt_ms
    t = torch.zeros(())
    for k in range(k0, k0 + steps):
        t.fill_(k * dt)
        i_stim = solver.stimuli.current(k * dt, dt, state[0])
        state, act, rep = solver.step(state, act, rep, t, i_stim)
    return state, act, rep


def compare(anatomy: str | None, resolution: float, batch: int, rounds: int, steps: int,
            threads: int) -> dict:
    """Time both kernels in alternating rounds; returns a row of figures."""
    torch.set_num_threads(threads)
    heart = _heart(anatomy, resolution)
    prep = prepare_anatomy(heart)
    specs = [SimParams(sim_id=b, pattern="normal", sigma_l=0.15 + 0.01 * b, sigma_t=0.04,
                       sigma_fast_endo=0.8, seed=b) for b in range(batch)]
    problem = build_problem(prep, specs, dt_ms=0.04, duration_ms=100.0)
    solvers = {kind: MonodomainSolver(problem, compile=True, native=kind == "native",
                                      check_every=10 ** 9) for kind in ("compiled", "native")}
    assert solvers["native"].kernel == "native", "the native kernel did not build"
    ref = solvers["compiled"]
    state = ref.initial_state()
    act = torch.full(state.shape[1:], math.nan)
    rep = torch.full_like(act, math.nan)
    k0 = 250                                   # 10 ms in: fronts are moving
    state, act, rep = _advance(ref, state, act, rep, 0, k0)
    for s in solvers.values():                 # warm-up (inductor compiles here)
        _advance(s, state, act, rep, k0, 3)
    one = {kind: _advance(s, state, act, rep, k0, 1) for kind, s in solvers.items()}
    span = state.flatten(1).amax(1) - state.flatten(1).amin(1) + 1e-30
    state_diff = float(((one["native"][0] - one["compiled"][0]).abs().flatten(1).amax(1)
                        / span).max())
    times: dict[str, list[float]] = {kind: [] for kind in solvers}
    finals = {}
    for _ in range(rounds):
        for kind, s in solvers.items():
            t0 = time.perf_counter()
            finals[kind] = _advance(s, state, act, rep, k0, steps)
            times[kind].append(time.perf_counter() - t0)
    work = steps * batch * problem.grid.n_tissue
    rate = {k: (work / min(v), work / statistics.median(v)) for k, v in times.items()}
    a, b = finals["native"][1], finals["compiled"][1]
    both = ~torch.isnan(a) & ~torch.isnan(b)
    return {"heart": str(heart.name), "resolution_mm": float(heart.spacing[0]),
            "n_voxels": problem.grid.n_tissue, "batch": batch, "threads": threads,
            "rounds": rounds, "steps": steps,
            "compiled_best": float(f"{rate['compiled'][0]:.4g}"),
            "compiled_median": float(f"{rate['compiled'][1]:.4g}"),
            "native_best": float(f"{rate['native'][0]:.4g}"),
            "native_median": float(f"{rate['native'][1]:.4g}"),
            "speedup_median": round(rate["native"][1] / rate["compiled"][1], 2),
            "state_diff_rel_one_step": float(f"{state_diff:.3g}"),
            "activation_pattern_equal": bool(torch.equal(torch.isnan(a), torch.isnan(b))),
            "activation_max_diff_ms": float(f"{float((a - b)[both].abs().max()):.3g}")
            if bool(both.any()) else 0.0,
            "states": N_STATES}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--anatomy", default=None, help="anatomy.h5 (default: parametric heart 0)")
    ap.add_argument("--resolution", type=float, default=1.0)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    for b in args.batch:
        row = compare(args.anatomy, args.resolution, b, args.rounds, args.steps, args.threads)
        print(json.dumps(row))
        rows.append(row)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"native_kernel": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
