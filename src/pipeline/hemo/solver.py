r"""Integrate the circulation to its periodic steady state (batched, differentiable).

The open aortic valve couples the LV and the small aortic compliance through a tiny
resistance (time constant Ra Ca down to 8e-6 s), so explicit schemes need steps of a few
microseconds, and the ideal valves make the right-hand side only piecewise linear. We use
BDF2, the L-stable two-step backward differentiation formula of order 2 (first step:
backward Euler), solved by a semismooth Newton iteration in which the valves' open/closed
states come from the current iterate (an active-set iteration; for a piecewise-linear
right-hand side it ends in a few iterations):

.. math::

    x_{n+1} - \tfrac43 x_n + \tfrac13 x_{n-1} = \tfrac23 h f(t_{n+1}, x_{n+1}),
    \qquad (I - \tfrac23 h J)\,\delta = -\mathrm{residual}.

Every patient takes ``steps_per_cycle`` steps per beat (h = Tc / steps_per_cycle), so the
beats of a batch stay aligned whatever their cycle lengths. Each Newton update is linear
in the states, so the stressed blood volume is conserved to round-off.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from pipeline.errors import SimulationError
from pipeline.hemo.circulation import N_STATES, initial_state, rhs_and_jacobian
from pipeline.hemo.elastance import elastance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trajectory:
    """The last simulated beat of a batch.

    Attributes
    ----------
    t
        Time since the start of the beat, s, (B, n + 1).
    x
        States (B, n + 1, 7); see :data:`pipeline.hemo.circulation.STATES`.
    plv
        LV pressure, mmHg, (B, n + 1).
    periodicity
        Change of LV volume over the last beat (end minus start), mL, (B,).
    """

    t: torch.Tensor
    x: torch.Tensor
    plv: torch.Tensor
    periodicity: torch.Tensor

    @property
    def volume(self) -> torch.Tensor:
        """LV volume, mL, (B, n + 1)."""
        return self.x[..., 0]


def implicit_step(phase: torch.Tensor, h: torch.Tensor, rhs: torch.Tensor, beta: float,
                  guess: torch.Tensor, p: Mapping[str, torch.Tensor], pump_on: torch.Tensor,
                  newton: int = 3) -> torch.Tensor:
    """Solve ``x - beta h f(phase, x) = rhs`` for x (B, 7) by semismooth Newton.

    Parameters
    ----------
    phase
        Beat phase at the new time, s, (B,).
    h
        Step, s, (B,).
    rhs
        Known part, (B, 7): x_n for backward Euler, (4 x_n - x_{n-1}) / 3 for BDF2.
    beta
        1 for backward Euler, 2/3 for BDF2.
    guess
        Starting iterate (B, 7).
    newton
        Newton iterations (fixed, so that the step is a fixed differentiable graph).
    """
    eye = torch.eye(N_STATES, dtype=rhs.dtype)
    bh = (beta * h).unsqueeze(-1)
    x = guess
    for _ in range(newton):
        f, J, _ = rhs_and_jacobian(phase, x, p, pump_on)
        residual = x - bh * f - rhs
        W = eye - bh.unsqueeze(-1) * J
        x = x - torch.linalg.solve(W, residual)
    return x


def simulate(p: Mapping[str, torch.Tensor], n_cycles: int = 20, steps_per_cycle: int = 400,
             speed_rpm: torch.Tensor | float | None = None, x0: torch.Tensor | None = None,
             check: bool = True, newton: int = 3) -> Trajectory:
    """Simulate ``n_cycles`` beats and return the last one.

    Parameters
    ----------
    p
        Every parameter (see :func:`pipeline.hemo.params.full_batch`), name -> (B,).
    n_cycles
        Beats to simulate; the last is returned. 20 beats bring the Simaan preset to a
        periodic state within 0.1 mL (the slowest mode is Rs Cr = 4.4 s).
    steps_per_cycle
        BDF2 steps per beat.
    speed_rpm
        LVAD speed (rpm), scalar or (B,); ``None`` simulates without a pump. A speed of 0
        with a pump connected means a stopped pump (it regurgitates).
    x0
        Initial state (B, 7); default :func:`pipeline.hemo.circulation.initial_state`.
    newton
        Newton iterations per step (see :func:`implicit_step`).
    check
        Raise :class:`~pipeline.errors.SimulationError` if a state becomes non-finite.

    Returns
    -------
    Trajectory
        The last beat, sampled at every step.
    """
    v = p["Tc"]
    batch = v.shape[0]
    pump_on = torch.zeros(batch, dtype=v.dtype) if speed_rpm is None else torch.ones(batch, dtype=v.dtype)
    speed = None if speed_rpm is None else torch.as_tensor(speed_rpm, dtype=v.dtype).expand(batch)
    x = initial_state(p, speed) if x0 is None else x0
    h = p["Tc"] / steps_per_cycle
    xs: list[torch.Tensor] = []
    x_prev: torch.Tensor | None = None
    for cycle in range(n_cycles):
        last = cycle == n_cycles - 1
        if last:
            xs.append(x)
        for k in range(steps_per_cycle):
            phase = (k + 1) * h
            if x_prev is None:
                x_new = implicit_step(phase, h, x, 1.0, x, p, pump_on, newton)
            else:
                x_new = implicit_step(phase, h, (4.0 * x - x_prev) / 3.0, 2.0 / 3.0, 2.0 * x - x_prev,
                                      p, pump_on, newton)
            x_prev, x = x, x_new
            if last:
                xs.append(x)
        if check and not bool(torch.isfinite(x).all()):
            bad = (~torch.isfinite(x).all(-1)).nonzero().flatten().tolist()
            raise SimulationError(f"hemodynamic simulation diverged in beat {cycle} for patient rows {bad[:10]}")
    traj = torch.stack(xs, 1)
    t = torch.arange(steps_per_cycle + 1, dtype=v.dtype) * h.unsqueeze(-1)
    E, _ = elastance(t, p["Tc"].unsqueeze(-1), p["Emax"].unsqueeze(-1), p["Emin"].unsqueeze(-1))
    plv = E * (traj[..., 0] - p["V0"].unsqueeze(-1))
    periodicity = (traj[:, -1, 0] - traj[:, 0, 0]).abs()
    return Trajectory(t=t, x=traj, plv=plv, periodicity=periodicity.detach())
