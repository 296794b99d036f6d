"""Action-potential figures of one beat: Vrest, Vpeak, dV/dt max, APD50, APD90.

Definitions (those of the reference ``tp06_single_cell.json``): Vrest is V at the beat
start; the upstroke time is that of the largest forward difference dV/dt (the midpoint of
that step); APD_x runs from the upstroke to the first time after the peak at which V falls
below ``Vpeak - x/100 (Vpeak - Vrest)``, linearly interpolated between steps.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def upstroke(trace_mV: np.ndarray, dt_ms: float) -> tuple[float, float]:
    """Time of the steepest rise (ms from the beat start) and dV/dt there (V/s = mV/ms)."""
    dvdt = np.diff(trace_mV) / dt_ms
    i = int(np.argmax(dvdt))
    return (i + 0.5) * dt_ms, float(dvdt[i])


def apd(trace_mV: np.ndarray, dt_ms: float, percent: float) -> float:
    """Action-potential duration at ``percent`` % repolarisation (ms); NaN if none.

    Parameters
    ----------
    trace_mV
        V over one beat at every step, ``trace_mV[0]`` at the beat start.
    dt_ms
        Sampling interval (ms).
    percent
        Repolarisation level, e.g. 90.
    """
    v = np.asarray(trace_mV, dtype=float)
    t_up, _ = upstroke(v, dt_ms)
    v_rest, i_peak = v[0], int(np.argmax(v))
    v_peak = v[i_peak]
    if not v_peak > 0.0:        # no action potential
        return float("nan")
    level = v_peak - percent / 100.0 * (v_peak - v_rest)
    below = np.nonzero(v[i_peak:] < level)[0]
    if below.size == 0:
        return float("nan")
    i = i_peak + int(below[0])          # first sample below, i - 1 above
    frac = (v[i - 1] - level) / (v[i - 1] - v[i])
    return (i - 1 + frac) * dt_ms - t_up


def resample(trace_mV: np.ndarray, dt_ms: float, out_dt_ms: float = 0.1) -> np.ndarray:
    """V at t = out_dt, 2 out_dt, ... up to the beat's end (linear interpolation)."""
    v = np.asarray(trace_mV, dtype=float)
    duration = (v.size - 1) * dt_ms
    n_out = int(round(duration / out_dt_ms))
    t_out = out_dt_ms * np.arange(1, n_out + 1)
    return np.interp(t_out, dt_ms * np.arange(v.size), v)


def figures(trace_mV: np.ndarray, dt_ms: float) -> dict[str, Any]:
    """All figures of one beat: Vrest_mV, Vpeak_mV, dVdt_max_V_per_s, t_upstroke_ms,
    APD50_ms, APD90_ms."""
    v = np.asarray(trace_mV, dtype=float)
    t_up, dvdt = upstroke(v, dt_ms)
    return {
        "Vrest_mV": float(v[0]),
        "Vpeak_mV": float(v.max()),
        "dVdt_max_V_per_s": dvdt,
        "t_upstroke_ms": t_up,
        "APD50_ms": apd(v, dt_ms, 50.0),
        "APD90_ms": apd(v, dt_ms, 90.0),
    }
