"""Time-varying LV elastance with the double-Hill activation (Stergiopulos 1996, Simaan 2009).

.. math::

    E(t) = (E_{max} - E_{min})\\, E_n(t_n) + E_{min}, \\qquad t_n = t_c / T_{max},
    \\qquad T_{max} = 0.2 + 0.15\\, T_c,

    E_n(t_n) = 1.55 \\left[\\frac{(t_n/0.7)^{1.9}}{1 + (t_n/0.7)^{1.9}}\\right]
               \\left[\\frac{1}{1 + (t_n/1.17)^{21.9}}\\right],

where :math:`t_c \\in [0, T_c)` is the time since the start of the current beat (s). The
factor 1.55 scales the peak of :math:`E_n` to about 1. The shape constants are Simaan et
al. 2009, Eq. (3); they derive from Stergiopulos, Meister, Westerhof 1996 (Am J Physiol
270:H2050).
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

#: Peak scale and Hill constants of the double-Hill activation (Simaan 2009, Eq. 3).
SCALE = 1.55
A1, N1 = 0.7, 1.9
A2, N2 = 1.17, 21.9


def t_max(Tc: torch.Tensor) -> torch.Tensor:
    """Time to peak elastance (s) for a cycle length ``Tc`` (s): 0.2 + 0.15 Tc."""
    return 0.2 + 0.15 * Tc


def activation(tn: torch.Tensor) -> torch.Tensor:
    """Normalised activation :math:`E_n(t_n)` for normalised time ``tn`` >= 0 (any shape)."""
    g1 = (tn / A1) ** N1
    g2 = (tn / A2) ** N2
    return SCALE * g1 / (1.0 + g1) / (1.0 + g2)


def activation_derivative(tn: torch.Tensor) -> torch.Tensor:
    """:math:`dE_n/dt_n` (closed form, finite at ``tn`` = 0)."""
    g1 = (tn / A1) ** N1
    g2 = (tn / A2) ** N2
    h1 = g1 / (1.0 + g1)
    h2 = 1.0 / (1.0 + g2)
    dh1 = N1 * tn ** (N1 - 1.0) / A1 ** N1 / (1.0 + g1) ** 2
    dh2 = -N2 * tn ** (N2 - 1.0) / A2 ** N2 / (1.0 + g2) ** 2
    return SCALE * (dh1 * h2 + h1 * dh2)


def elastance(phase: torch.Tensor, Tc: torch.Tensor, Emax: torch.Tensor,
              Emin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Elastance and its time derivative.

    Parameters
    ----------
    phase
        Time since the start of the beat, s, shape (B,) (or broadcastable).
    Tc, Emax, Emin
        Cycle length (s) and elastances (mmHg/mL), shape (B,).

    Returns
    -------
    E, dE_dt
        mmHg/mL and mmHg/(mL s), shape (B,).
    """
    tm = t_max(Tc)
    tn = phase / tm
    en = activation(tn)
    return (Emax - Emin) * en + Emin, (Emax - Emin) * activation_derivative(tn) / tm
