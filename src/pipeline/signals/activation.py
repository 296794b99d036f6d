"""Activation times and action potential durations from sampled Vm traces.

Three markers per trace (DESIGN.md section 6), all in ms from time 0 of the simulation:

- activation, interpolated: the first upward crossing of a threshold (0 mV), linearly
  interpolated between the two samples around it;
- the paper's label: the time of the first sample with Vm > threshold (Landajuela et al.
  2022 label activation on the 1-ms grid that way);
- APD90: from the interpolated activation to the first downward crossing, after the peak,
  of ``V90 = Vpeak - 0.9 (Vpeak - Vrest)``, interpolated; ``Vrest`` is the trace's minimum
  before the activation (its resting level), ``Vpeak`` the maximum after it.

A trace that never crosses gives NaN for all three; one that does not repolarise to V90
inside the record gives NaN APD90. Arrays carry any leading batch shape, time last.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

#: Activation threshold (mV) of DESIGN.md section 6.
ACTIVATION_THRESHOLD_MV = 0.0


def _first_upward(vm: np.ndarray, threshold: float) -> np.ndarray:
    """Index of the first sample above ``threshold`` (``-1`` if none), ``(*batch,)``."""
    above = vm > threshold
    return np.where(above.any(axis=-1), np.argmax(above, axis=-1), -1)


def activation_times(vm: np.ndarray, dt_ms: float, t0_ms: float = 0.0,
                     threshold_mV: float = ACTIVATION_THRESHOLD_MV) -> np.ndarray:
    """Interpolated first upward crossing of ``threshold_mV`` (ms), NaN if none.

    Parameters
    ----------
    vm
        Traces ``(*batch, T)`` in mV, sample ``n`` at ``t0_ms + n * dt_ms``.
    dt_ms
        Sampling interval (ms).
    t0_ms
        Time of the first sample (ms).
    threshold_mV
        Crossing level (mV).

    Returns
    -------
    numpy.ndarray
        float64 ``(*batch,)`` ms. A trace already above the threshold at its first sample
        gets ``t0_ms``.
    """
    vm = np.asarray(vm, dtype=np.float64)
    batch_shape = vm.shape[:-1]
    vm = vm.reshape(-1, vm.shape[-1])
    idx = _first_upward(vm, threshold_mV)
    out = np.full(idx.shape, np.nan)
    hit = idx >= 0
    first = hit & (idx == 0)
    out[first] = t0_ms
    inner = hit & (idx > 0)
    if inner.any():
        i = idx[inner]
        v1 = np.take_along_axis(vm[inner], i[:, None], axis=-1)[:, 0]
        v0 = np.take_along_axis(vm[inner], (i - 1)[:, None], axis=-1)[:, 0]
        frac = (threshold_mV - v0) / (v1 - v0)
        out[inner] = t0_ms + (i - 1 + frac) * dt_ms
    return out.reshape(batch_shape)


def activation_labels(vm: np.ndarray, dt_ms: float, t0_ms: float = 0.0,
                      threshold_mV: float = ACTIVATION_THRESHOLD_MV) -> np.ndarray:
    """The paper's label: time of the first sample with Vm > threshold (ms), NaN if none.

    Shapes and units as :func:`activation_times`.
    """
    vm = np.asarray(vm, dtype=np.float64)
    idx = _first_upward(vm, threshold_mV)
    return np.where(idx >= 0, t0_ms + idx * dt_ms, np.nan)


def apd(vm: np.ndarray, dt_ms: float, fraction: float = 0.9, t0_ms: float = 0.0,
        activation_ms: np.ndarray | None = None,
        threshold_mV: float = ACTIVATION_THRESHOLD_MV) -> np.ndarray:
    """Action potential duration at ``fraction`` repolarisation (ms), NaN where undefined.

    Parameters
    ----------
    vm
        Traces ``(*batch, T)`` in mV, sample ``n`` at ``t0_ms + n * dt_ms``.
    dt_ms
        Sampling interval (ms).
    fraction
        0.9 for APD90, 0.5 for APD50.
    t0_ms
        Time of the first sample (ms).
    activation_ms
        Activation times ``(*batch,)`` to measure from (ms), for instance captured on line
        at the solver's full time resolution; default :func:`activation_times` of ``vm``.
    threshold_mV
        Activation threshold (mV).

    Returns
    -------
    numpy.ndarray
        float64 ``(*batch,)`` ms.
    """
    vm = np.asarray(vm, dtype=np.float64)
    batch_shape = vm.shape[:-1]
    flat = vm.reshape(-1, vm.shape[-1])
    t_act = activation_times(flat, dt_ms, t0_ms, threshold_mV)
    start = t_act if activation_ms is None else np.asarray(activation_ms, np.float64).reshape(-1)
    out = np.full(flat.shape[0], np.nan)
    n_t = flat.shape[1]
    for b in np.flatnonzero(np.isfinite(t_act) & np.isfinite(start)):
        trace = flat[b]
        i_act = int(np.clip(np.ceil((t_act[b] - t0_ms) / dt_ms), 0, n_t - 1))
        v_rest = trace[: i_act + 1].min()
        i_peak = i_act + int(np.argmax(trace[i_act:]))
        v_level = trace[i_peak] - fraction * (trace[i_peak] - v_rest)
        below = np.flatnonzero(trace[i_peak:] < v_level)
        if below.size == 0:
            continue
        i1 = i_peak + int(below[0])
        v0, v1 = trace[i1 - 1], trace[i1]
        t_rep = t0_ms + (i1 - 1 + (v0 - v_level) / (v0 - v1)) * dt_ms
        out[b] = t_rep - start[b]
    return out.reshape(batch_shape)


def apd90(vm: np.ndarray, dt_ms: float, t0_ms: float = 0.0,
          activation_ms: np.ndarray | None = None) -> np.ndarray:
    """APD90 (ms) of traces ``(*batch, T)``; see :func:`apd`."""
    return apd(vm, dt_ms, 0.9, t0_ms, activation_ms)


def qrs_window(activation_ms: np.ndarray) -> tuple[float, float]:
    """Earliest and latest activation time of a heart (ms), ignoring NaN.

    The total activation time (latest minus earliest) is the model's counterpart of the
    QRS duration.
    """
    finite = np.asarray(activation_ms, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return float("nan"), float("nan")
    return float(finite.min()), float(finite.max())
