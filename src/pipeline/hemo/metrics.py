"""Clinical indices of a simulated beat: volumes, ejection fraction, output, pressures.

Definitions (one periodic beat sampled uniformly in time):

- EDV, ESV: largest and smallest LV volume over the beat (mL). With ideal valves these are
  the volumes at mitral and aortic valve closure.
- EF = 100 (EDV - ESV) / EDV (%).
- CO: mean aortic flow Qt over the beat, in L/min. At a periodic state without a pump it
  equals (EDV - ESV) 60 / Tc / 1000 (checked in the tests); with a pump it adds the pump
  flow to the valve flow, as a clinician measuring systemic flow would see it.
- plv_min, plv_max: LV pressure extremes (mmHg); MAP: mean arterial pressure Pa (mmHg).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from pipeline.hemo.solver import Trajectory

log = logging.getLogger(__name__)

#: Keys of :func:`indices`, all shaped (B,).
INDEX_KEYS: tuple[str, ...] = ("EDV_mL", "ESV_mL", "EF_percent", "CO_L_per_min", "plv_min_mmHg",
                               "plv_max_mmHg", "SV_mL", "HR_bpm", "MAP_mmHg", "pla_mean_mmHg",
                               "pump_flow_L_per_min")


def mean_over_beat(y: torch.Tensor) -> torch.Tensor:
    """Time average of a uniformly sampled beat (B, n + 1) by the trapezoidal rule."""
    return (y[:, 1:] + y[:, :-1]).mean(-1) * 0.5


def indices(traj: Trajectory) -> dict[str, torch.Tensor]:
    """The clinical indices of :data:`INDEX_KEYS` for every patient of a trajectory."""
    v = traj.volume
    edv = v.max(-1).values
    esv = v.min(-1).values
    tc = traj.t[:, -1]
    return {
        "EDV_mL": edv,
        "ESV_mL": esv,
        "EF_percent": 100.0 * (edv - esv) / edv,
        "CO_L_per_min": mean_over_beat(traj.x[..., 4]) * 60.0 / 1000.0,
        "plv_min_mmHg": traj.plv.min(-1).values,
        "plv_max_mmHg": traj.plv.max(-1).values,
        "SV_mL": edv - esv,
        "HR_bpm": 60.0 / tc,
        "MAP_mmHg": mean_over_beat(traj.x[..., 2]),
        "pla_mean_mmHg": mean_over_beat(traj.x[..., 1]),
        "pump_flow_L_per_min": mean_over_beat(traj.x[..., 5]) * 60.0 / 1000.0,
    }


def resample(y: torch.Tensor, n: int) -> torch.Tensor:
    """Resample a beat (B, m) to ``n`` points uniform in phase (first and last kept)."""
    return F.interpolate(y.unsqueeze(1), size=n, mode="linear", align_corners=True).squeeze(1)
