"""Per-patient fitting baseline: gradient descent on the parameters through the ODE solver.

The cost comparison of Med-Real2Sim (Sec. 6, PINN and neural-ODE baselines): instead of
one amortised network, each patient's seven parameters are optimised on their own. Here
the solver itself is differentiated (BDF2 + Newton, backpropagated by torch), with the
same measurement loss as P-SSL (:func:`pipeline.hemo.inverse.pssl_loss` without the
emulator): EDV, ESV, EF and HR scaled by 100.

To keep an iteration cheap, every iteration after the first starts from the previous
iteration's periodic state (detached), with LV volume shifted so that the stressed blood
volume matches the current parameters; ``warm_cycles`` beats then restore periodicity.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import torch

from pipeline.hemo import params as P
from pipeline.hemo.circulation import initial_state, stressed_volume
from pipeline.hemo.inverse import SCALES
from pipeline.hemo.metrics import indices
from pipeline.hemo.solver import simulate

log = logging.getLogger(__name__)


def fit_patient(meas: Mapping[str, float], solver: Mapping[str, Any], iterations: int = 60,
                lr: float = 0.1, warm_cycles: int = 3) -> dict[str, Any]:
    """Fit one patient's parameters to its measurements.

    Parameters
    ----------
    meas
        ``EDV_mL``, ``ESV_mL``, ``EF_percent``, ``HR_bpm``.
    solver
        ``hemo.solver`` config; the first iteration simulates ``n_cycles`` beats.
    iterations
        Adam iterations.
    lr
        Adam learning rate on the logits of the unit-range parameters.
    warm_cycles
        Beats simulated per iteration after the first.

    Returns
    -------
    dict
        ``params`` (7,) float64 physical values, ``seconds``, ``loss`` (final), ``history``.
    """
    t0 = time.perf_counter()
    target = {k: torch.tensor([float(meas[k])], dtype=torch.float64) for k in SCALES}
    z = torch.zeros(1, len(P.INFERRED), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([z], lr=lr)
    x_warm: torch.Tensor | None = None
    best = (float("inf"), z.detach().clone())
    history: list[float] = []
    for it in range(iterations):
        opt.zero_grad()
        p = P.full_batch(P.unstack(P.from_unit(torch.sigmoid(z))))
        if x_warm is None:
            traj = simulate(p, n_cycles=solver["n_cycles"], steps_per_cycle=solver["steps_per_cycle"],
                            newton=solver["newton"])
        else:
            shift = stressed_volume(initial_state(p), p) - stressed_volume(x_warm, p)
            x0 = torch.cat([(x_warm[:, 0] + shift).unsqueeze(-1), x_warm[:, 1:]], -1)
            traj = simulate(p, n_cycles=warm_cycles, steps_per_cycle=solver["steps_per_cycle"],
                            newton=solver["newton"], x0=x0)
        ind = indices(traj)
        loss = sum((((ind[k] - target[k]) / s) ** 2).sum() for k, s in SCALES.items())
        loss.backward()
        value = float(loss.detach())
        history.append(value)
        if value < best[0]:
            best = (value, z.detach().clone())
        opt.step()
        x_warm = traj.x[:, -1].detach()
    theta = P.from_unit(torch.sigmoid(best[1]))[0]
    return {"params": theta, "seconds": time.perf_counter() - t0, "loss": best[0], "history": history}
