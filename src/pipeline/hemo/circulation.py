"""The Simaan 2009 five-state left-heart circulation with ideal valves and a rotary LVAD.

State vector (B, 7), in this order (:data:`STATES`):

======  =====  ==========================================================
index   unit   state
======  =====  ==========================================================
0  V     mL     LV volume (Simaan's x1 is LV pressure; P_lv = E(t)(V - V0))
1  Pla   mmHg   left-atrial pressure
2  Pa    mmHg   arterial pressure
3  Pao   mmHg   aortic pressure
4  Qt    mL/s   total flow in the aorta
5  Qp    mL/s   pump flow (0 without an LVAD)
6  w     rpm    pump speed (constant here; a controller would drive dw/dt)
======  =====  ==========================================================

Equations (Simaan et al. 2009, Eq. (1) with the pump of Eq. (5)-(6)); ``r(x) = max(x, 0)``
is an ideal diode, ``Plv = E(t) (V - V0)``:

.. math::

    \\dot V   &= r(P_{la} - P_{lv})/R_m - r(P_{lv} - P_{ao})/R_a - Q_p \\\\
    C_r \\dot P_{la} &= (P_a - P_{la})/R_s - r(P_{la} - P_{lv})/R_m \\\\
    C_s \\dot P_a   &= (P_{la} - P_a)/R_s + Q_t \\\\
    C_a \\dot P_{ao} &= r(P_{lv} - P_{ao})/R_a + Q_p - Q_t \\\\
    L_s \\dot Q_t   &= P_{ao} - P_a - R_c Q_t \\\\
    L^* \\dot Q_p   &= P_{lv} - P_{ao} - (R_i + R_o + R_k - b_0) Q_p + b_2 \\omega^2,
        \\quad L^* = L_i + L_o - b_1, \\\\
    R_k &= \\alpha\\,(P_{lv} - \\bar x_1) \\text{ if } P_{lv} < \\bar x_1 \\text{ else } 0.

The stressed blood volume ``V + Cr Pla + Cs Pa + Ca Pao`` is invariant (the inductances
hold no volume). Every function works on batches (one row per patient) and is
differentiable in torch; the pump rows are multiplied by ``pump_on`` (B,) (0 or 1).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch

from pipeline.hemo.elastance import elastance

log = logging.getLogger(__name__)

#: State names in vector order.
STATES: tuple[str, ...] = ("V", "Pla", "Pa", "Pao", "Qt", "Qp", "w")
#: State units in vector order.
STATE_UNITS: tuple[str, ...] = ("mL", "mmHg", "mmHg", "mmHg", "mL/s", "mL/s", "rpm")
N_STATES = len(STATES)


def initial_state(p: Mapping[str, torch.Tensor], speed_rpm: torch.Tensor | None = None) -> torch.Tensor:
    """The state at t = 0 (start of a beat, end diastole), as Simaan and Med-Real2Sim start.

    LV volume ``v_start``; left-atrial pressure equal to the LV pressure at t = 0
    (``Emin (v_start - V0)``); arterial and aortic pressures ``pa_start``, ``pao_start``;
    no aortic and no pump flow; pump speed ``speed_rpm`` (0 without an LVAD).

    Returns
    -------
    torch.Tensor
        (B, 7).
    """
    v = p["v_start"]
    pla = p["Emin"] * (v - p["V0"])
    zero = torch.zeros_like(v)
    w = zero if speed_rpm is None else torch.as_tensor(speed_rpm, dtype=v.dtype).expand_as(v)
    return torch.stack([v, pla, p["pa_start"].expand_as(v), p["pao_start"].expand_as(v), zero, zero, w], -1)


def stressed_volume(x: torch.Tensor, p: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Blood volume held by the compartments, mL: V + Cr Pla + Cs Pa + Ca Pao; x (..., 7)."""
    return x[..., 0] + p["Cr"] * x[..., 1] + p["Cs"] * x[..., 2] + p["Ca"] * x[..., 3]


def lv_pressure(x: torch.Tensor, E: torch.Tensor, p: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """LV pressure E (V - V0), mmHg."""
    return E * (x[..., 0] - p["V0"])


def flows(x: torch.Tensor, plv: torch.Tensor, p: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mitral and aortic valve flows (mL/s), each (B,)."""
    qm = torch.relu(x[..., 1] - plv) / p["Rm"]
    qa = torch.relu(plv - x[..., 3]) / p["Ra"]
    return qm, qa


def rhs_and_jacobian(phase: torch.Tensor, x: torch.Tensor, p: Mapping[str, torch.Tensor],
                     pump_on: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-hand side, its Jacobian and its explicit time derivative.

    Parameters
    ----------
    phase
        Time since the start of the beat, s, (B,).
    x
        State (B, 7).
    p
        Parameters, name -> (B,).
    pump_on
        (B,) 1 where the LVAD is connected, 0 elsewhere.

    Returns
    -------
    f, J, f_t
        dx/dt (B, 7); df/dx (B, 7, 7) (exact away from the valve switching surfaces);
        df/dt at fixed x (B, 7).
    """
    V, Pla, Pa, Pao, Qt, Qp, w = x.unbind(-1)
    E, dE = elastance(phase, p["Tc"], p["Emax"], p["Emin"])
    plv = E * (V - p["V0"])
    open_m = (Pla > plv).to(x.dtype)
    open_a = (plv > Pao).to(x.dtype)
    suction = (plv < p["p_suction"]).to(x.dtype)
    qm = open_m * (Pla - plv) / p["Rm"]
    qa = open_a * (plv - Pao) / p["Ra"]
    Rs, Cr, Cs, Ca, Ls, Rc = p["Rs"], p["Cr"], p["Cs"], p["Ca"], p["Ls"], p["Rc"]
    rk = p["alpha"] * (plv - p["p_suction"]) * suction
    r_pump = p["Ri"] + p["Ro"] + rk - p["b0"]
    l_pump = p["Li"] + p["Lo"] - p["b1"]
    dqp = pump_on * (plv - Pao - r_pump * Qp + p["b2"] * w * w) / l_pump
    f = torch.stack([
        qm - qa - Qp,
        ((Pa - Pla) / Rs - qm) / Cr,
        ((Pla - Pa) / Rs + Qt) / Cs,
        (qa + Qp - Qt) / Ca,
        (Pao - Pa - Rc * Qt) / Ls,
        dqp,
        torch.zeros_like(V),
    ], -1)

    zero = torch.zeros_like(V)
    gm, ga = open_m / p["Rm"], open_a / p["Ra"]           # conductances of open valves
    # d(qm)/d(plv) = -gm, d(qa)/d(plv) = ga; d(plv)/dV = E
    dq_dplv = pump_on * (1.0 - p["alpha"] * suction * Qp) / l_pump
    col_plv = torch.stack([-gm - ga, gm / Cr, zero, ga / Ca, zero, dq_dplv, zero], -1)  # df/dplv
    rows = [
        [zero, gm, zero, ga, zero, -torch.ones_like(V), zero],
        [zero, (-1.0 / Rs - gm) / Cr, 1.0 / (Rs * Cr), zero, zero, zero, zero],
        [zero, 1.0 / (Rs * Cs), -1.0 / (Rs * Cs), zero, 1.0 / Cs, zero, zero],
        [zero, zero, zero, -ga / Ca, -1.0 / Ca, 1.0 / Ca, zero],
        [zero, zero, -1.0 / Ls, 1.0 / Ls, -Rc / Ls, zero, zero],
        [zero, zero, zero, -pump_on / l_pump, zero, -pump_on * r_pump / l_pump,
         pump_on * 2.0 * p["b2"] * w / l_pump],
        [zero, zero, zero, zero, zero, zero, zero],
    ]
    J = torch.stack([torch.stack(r, -1) for r in rows], -2)
    J = J + torch.nn.functional.pad((col_plv * E.unsqueeze(-1)).unsqueeze(-1), (0, N_STATES - 1))
    f_t = col_plv * (dE * (V - p["V0"])).unsqueeze(-1)
    return f, J, f_t
