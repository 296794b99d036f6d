"""Activation times and action potential durations from sampled Vm traces.

Four markers per trace, all in ms from time 0 of the simulation (all but the sustained
activation are DESIGN.md section 6's):

- activation, interpolated: the first upward crossing of a threshold (0 mV), linearly
  interpolated between the two samples around it;
- the paper's label: the time of the first sample with Vm > threshold (Landajuela et al.
  2022 label activation on the 1-ms grid that way);
- the sustained activation: the first upward crossing that opens an action potential, one
  after which Vm stays above a floor (-40 mV) for a hold time (50 ms); a transient that
  crosses and falls back (a network's spurious bump) does not count. On a simulated trace
  it equals the plain crossing;
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
    return _interpolate(vm, idx, dt_ms, t0_ms, threshold_mV).reshape(batch_shape)


def _interpolate(vm: np.ndarray, idx: np.ndarray, dt_ms: float, t0_ms: float,
                 threshold_mV: float) -> np.ndarray:
    """Crossing time (ms) between samples ``idx - 1`` and ``idx`` of traces ``(M, T)``.

    ``idx`` (M,) is the first sample above the threshold (``-1``: none, NaN; ``0``:
    ``t0_ms``), with the sample before it at or below the threshold.
    """
    out = np.full(idx.shape, np.nan)
    hit = idx >= 0
    out[hit & (idx == 0)] = t0_ms
    inner = hit & (idx > 0)
    if inner.any():
        i = idx[inner]
        v1 = np.take_along_axis(vm[inner], i[:, None], axis=-1)[:, 0]
        v0 = np.take_along_axis(vm[inner], (i - 1)[:, None], axis=-1)[:, 0]
        frac = (threshold_mV - v0) / (v1 - v0)
        out[inner] = t0_ms + (i - 1 + frac) * dt_ms
    return out


def activation_labels(vm: np.ndarray, dt_ms: float, t0_ms: float = 0.0,
                      threshold_mV: float = ACTIVATION_THRESHOLD_MV) -> np.ndarray:
    """The paper's label: time of the first sample with Vm > threshold (ms), NaN if none.

    Shapes and units as :func:`activation_times`.
    """
    vm = np.asarray(vm, dtype=np.float64)
    idx = _first_upward(vm, threshold_mV)
    return np.where(idx >= 0, t0_ms + idx * dt_ms, np.nan)


#: Floor (mV) and hold time (ms) of :func:`sustained_activation`: an action potential's
#: upstroke is followed by a plateau far above -40 mV for well over 50 ms (TP06's APD90 in
#: tissue is 200-400 ms over the sweep's cycle lengths and G_Kr scales, tests/test_simulate.py).
SUSTAIN_FLOOR_MV = -40.0
SUSTAIN_HOLD_MS = 50.0


def sustained_activation(vm: np.ndarray, dt_ms: float, t0_ms: float = 0.0, *,
                         interpolate: bool = False,
                         threshold_mV: float = ACTIVATION_THRESHOLD_MV,
                         floor_mV: float = SUSTAIN_FLOOR_MV,
                         hold_ms: float = SUSTAIN_HOLD_MS) -> np.ndarray:
    """First upward crossing of ``threshold_mV`` that Vm holds above ``floor_mV``.

    The crossing counts when every sample from it for ``hold_ms`` (or to the end of the
    record, for a late activation) lies above ``floor_mV``. A network's predicted Vm can
    carry a brief bump above 0 mV long before its upstroke; the paper's label
    (:func:`activation_labels`) puts the activation on the bump, this one on the upstroke.

    Parameters
    ----------
    vm
        Traces ``(*batch, T)`` in mV, sample ``n`` at ``t0_ms + n * dt_ms``.
    dt_ms, t0_ms
        Sampling interval and time of the first sample (ms).
    interpolate
        False: the time of the first sample above the threshold (as
        :func:`activation_labels`); True: the crossing interpolated between the two
        samples around it (as :func:`activation_times`).
    threshold_mV, floor_mV, hold_ms
        Crossing level, plateau floor (mV) and hold time (ms).

    Returns
    -------
    numpy.ndarray
        float64 ``(*batch,)`` ms; NaN where no crossing is held.
    """
    vm = np.asarray(vm, dtype=np.float64)
    batch_shape, n_t = vm.shape[:-1], vm.shape[-1]
    flat = vm.reshape(-1, n_t)
    ok = flat > floor_mV
    run = np.zeros((flat.shape[0], n_t + 1), dtype=np.int64)   # samples above the floor
    for i in range(n_t - 1, -1, -1):                            # from i on, consecutive
        run[:, i] = np.where(ok[:, i], run[:, i + 1] + 1, 0)
    hold = max(int(round(hold_ms / dt_ms)), 1)
    need = np.minimum(hold, n_t - np.arange(n_t))
    start = (flat > threshold_mV) & (run[:, :n_t] >= need)
    idx = np.where(start.any(axis=-1), np.argmax(start, axis=-1), -1)
    if interpolate:
        out = _interpolate(flat, idx, dt_ms, t0_ms, threshold_mV)
    else:
        out = np.where(idx >= 0, t0_ms + idx * dt_ms, np.nan)
    return out.reshape(batch_shape)


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
