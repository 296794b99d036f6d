"""Digital twins: simulate presets, infer patients' parameters, run in-silico LVAD trials.

A twin is the seven inferred parameters of a patient (the others at Simaan's values)
simulated to its periodic state. The LVAD trial connects the Simaan 2009 rotary pump at
each speed of ``hemo.lvad.speeds_rpm`` and compares EF and cardiac output with the
unassisted heart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.hemo import params as P
from pipeline.hemo.metrics import indices
from pipeline.hemo.solver import Trajectory, simulate

log = logging.getLogger(__name__)

#: Keys written by ``pipeline hemo simulate --json``.
SIMULATE_KEYS: tuple[str, ...] = ("EDV_mL", "ESV_mL", "EF_percent", "CO_L_per_min", "plv_min_mmHg",
                                  "plv_max_mmHg")


def simulate_one(preset: str, overrides: Mapping[str, float], solver: Mapping[str, Any],
                 speed_rpm: float | None = None) -> dict[str, Any]:
    """Simulate one parameter set to its periodic state.

    Parameters
    ----------
    preset
        Preset name (``simaan2009``).
    overrides
        Parameter name -> value replacing the preset's.
    solver
        ``hemo.solver`` config (n_cycles, steps_per_cycle, newton).
    speed_rpm
        LVAD speed, or ``None`` for no pump.

    Returns
    -------
    dict
        :data:`SIMULATE_KEYS` (floats) plus the other indices, the parameters used, the
        LVAD speed and the periodicity residual (mL).
    """
    values = P.preset(preset)
    values.update(overrides)
    p = P.full_batch({k: torch.tensor([v], dtype=torch.float64) for k, v in values.items()})
    with torch.no_grad():
        traj = simulate(p, speed_rpm=speed_rpm, **solver)
    out: dict[str, Any] = {k: float(v[0]) for k, v in indices(traj).items()}
    out["periodicity_mL"] = float(traj.periodicity[0])
    out["lvad_speed_rpm"] = speed_rpm
    out["preset"] = preset
    out["parameters"] = values
    return out


def simulate_batch(values: torch.Tensor, solver: Mapping[str, Any],
                   speed_rpm: torch.Tensor | float | None = None, chunk: int = 1024) -> tuple[dict[str, torch.Tensor], Trajectory | None]:
    """Simulate patients given their inferred parameters (B, 7) in chunks, without gradients.

    Returns the indices (name -> (B,)) and, when B <= ``chunk``, the trajectory.
    """
    out: dict[str, list[torch.Tensor]] = {}
    traj = None
    with torch.no_grad():
        for start in range(0, values.shape[0], chunk):
            v = values[start:start + chunk].to(torch.float64)
            sp = speed_rpm
            if isinstance(speed_rpm, torch.Tensor) and speed_rpm.ndim > 0:
                sp = speed_rpm[start:start + chunk]
            traj = simulate(P.full_batch(P.unstack(v)), speed_rpm=sp, **solver)
            for k, val in indices(traj).items():
                out.setdefault(k, []).append(val)
    result = {k: torch.cat(v) for k, v in out.items()}
    return result, (traj if values.shape[0] <= chunk else None)
