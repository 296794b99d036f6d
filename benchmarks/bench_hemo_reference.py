"""Compare the hemo BDF2 solver with scipy's Radau (rtol 1e-8) on the Simaan 2009 preset.

Prints EDV and ESV of beat 6 from both and the solver's step-size convergence. Takes a
few minutes (Radau on a piecewise-linear stiff system). Usage:
    .venv/bin/python benchmarks/bench_hemo_reference.py
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.integrate import solve_ivp

from pipeline.hemo import params as P
from pipeline.hemo.circulation import initial_state, rhs_and_jacobian
from pipeline.hemo.solver import simulate


def main(n_beats: int = 6) -> None:
    """Run the comparison and print the figures."""
    torch.set_num_threads(1)
    p = P.full_batch({}, batch=1)
    off = torch.zeros(1)
    tc = float(p["Tc"][0])

    def f(t: float, y: np.ndarray) -> np.ndarray:
        ph = torch.tensor([t % tc], dtype=torch.float64)
        return rhs_and_jacobian(ph, torch.from_numpy(y)[None], p, off)[0][0].numpy()

    def jac(t: float, y: np.ndarray) -> np.ndarray:
        ph = torch.tensor([t % tc], dtype=torch.float64)
        return rhs_and_jacobian(ph, torch.from_numpy(y)[None], p, off)[1][0].numpy()

    t0 = time.perf_counter()
    ref = solve_ivp(f, (0.0, n_beats * tc), initial_state(p)[0].numpy(), method="Radau", jac=jac,
                    rtol=1e-8, atol=1e-8, max_step=2e-3,
                    t_eval=np.linspace((n_beats - 1) * tc, n_beats * tc, 4001))
    print(f"Radau: EDV {ref.y[0].max():.4f} mL, ESV {ref.y[0].min():.4f} mL ({time.perf_counter() - t0:.0f} s)")
    for steps in (50, 100, 200, 400, 800):
        t0 = time.perf_counter()
        tr = simulate(p, n_cycles=n_beats, steps_per_cycle=steps, newton=2)
        print(f"BDF2 {steps:4d} steps/beat: EDV {tr.volume.max():.4f} mL, ESV {tr.volume.min():.4f} mL "
              f"({time.perf_counter() - t0:.2f} s)")


if __name__ == "__main__":
    main()
