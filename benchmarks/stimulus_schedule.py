"""Host cost of the site stimuli's schedule over one run (`StimulusSchedule.current`).

A batch of simulations of the three literature patterns, with jittered and delayed sites
as a campaign draws them, on the parametric heart at 2 mm; the schedule is asked for the
current of every step of a 500 ms run, as the solver's time loop asks it. Prints, per
batch size: the steps with a stimulus on, the steps where the current changes (a
rewrite), and the host time per run and per step. On CUDA the time includes the
copies to the device (``torch.cuda.synchronize`` at the end).

    python benchmarks/stimulus_schedule.py [--batch 8 64] [--device cpu|cuda] [--dt 0.04]

Session 28, 2 cores (a study running beside it), per 500 ms run before / after the
schedule was vectorised: batch 8 (255 stimulated steps, 45 rewrites) 0.15 / 0.03 s;
batch 64 (286 stimulated steps, 187 rewrites) 1.0 / 0.03 s.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    import torch

    from pipeline.monodomain.batch import build_problem, prepare_anatomy
    from pipeline.monodomain.stimulus import StimulusSchedule
    from pipeline.monodomain.throughput import _heart
    from pipeline.params import SimParams

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[8, 64])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dt", type=float, default=0.04, help="ms")
    ap.add_argument("--duration", type=float, default=500.0, help="ms")
    args = ap.parse_args()

    prep = prepare_anatomy(_heart(None, 2.0))
    for batch in args.batch:
        specs = [SimParams(sim_id=b, pattern=("normal", "lbbb", "rbbb")[b % 3], sigma_l=0.15,
                           sigma_t=0.04, sigma_fast_endo=0.8, seed=b, site_jitter_mm=2.0,
                           site_delay_max_ms=5.0) for b in range(batch)]
        problem = build_problem(prep, specs, dt_ms=args.dt, duration_ms=args.duration)
        schedule = StimulusSchedule(problem.stimuli, problem.grid.n_tissue,
                                    dtype=torch.float32, device=args.device)
        steps = int(round(args.duration / args.dt))
        active = rewrites = 0
        key = None
        t0 = time.perf_counter()
        for k in range(steps):
            if schedule.current(k * args.dt, args.dt) is not schedule._zero:
                active += 1
                rewrites += schedule._key != key
                key = schedule._key
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
        print(f"batch {batch}: {len(schedule.events)} pulses, {steps} steps, {active} "
              f"stimulated, {rewrites} rewrites; {wall:.3f} s per run, "
              f"{1e6 * wall / steps:.1f} us per step ({args.device})")


if __name__ == "__main__":
    main()
