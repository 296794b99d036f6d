"""Textbook criteria of a 12-lead beat: does a normal beat look normal, an LBBB like an LBBB?

Each lead's QRS (the window of :func:`pipeline.signals.features.beat_features`) is read as
a clinician reads it:

* ``R`` = largest positive value, ``S`` = largest negative value (mV, relative to the
  level at QRS onset), ``net`` = R - |S| (the dominant deflection);
* ``terminal`` = the last wave of the QRS, as a reader names it (R' of an RBBB in V1, the
  wide S of an RBBB in I and V6): the value of the last peak or trough of the QRS (5 ms
  moving average, relative to the level at QRS onset) whose height from that level and
  whose prominence are both at least 20 % of the lead's largest deflection. A slow, small
  return to the baseline after it (a QRS end kept open by the spatial-velocity rule) does
  not count as a wave;
* ``r_ms`` / ``s_ms`` = the durations of the R wave (the run above the onset level that
  holds the largest positive value) and of the S wave (the longest run below it after the
  R peak), each a run deviating at least 30 uV from the onset level for at least 6 ms, the
  least recognisable wave of IEC 60601-2-51:2003, Annex GG.5 (0 where there is none);
* ``T`` = the ST-T deflection of largest magnitude after the QRS, relative to the ST level
  (:func:`beat_features` convention), signed;
* the frontal QRS axis (:attr:`Morphology.frontal_axis_deg`) from the net QRS of I and
  aVF; a criterion of the normal beat only.

Criteria (each a named boolean; thresholds in the functions' arguments):

* **normal** (Surawicz & Knilans, *Chou's Electrocardiography*; AHA/ACCF/HRS 2009
  recommendations, part II): QRS 80-110 ms; rS in V1 (|S| > R); R-wave progression
  (R/S rises from V1 to V6, R/S > 1 in V5 and V6); dominant positive QRS and upright T
  in I, II, V5, V6; peak-to-peak QRS amplitude 0.5-2.5 mV in the limb leads and at most
  3.5 mV in the precordial leads; a frontal axis from -30 to +90 deg (AHA/ACCF/HRS 2009,
  part II: left axis deviation below -30 deg). "Positive QRS in I and II" implies that
  axis only when the leads' nets are consistent; a net of +0.01 mV in II beside a
  negative aVF is not (since 2026-12-02; the shells' beats with a -46 to -59 deg axis
  passed the other criteria).
* **LBBB** (AHA/ACCF/HRS 2009): QRS >= 120 ms; V1 dominantly negative (QS or rS); I and
  V6 dominantly positive (broad R).
* **RBBB** (AHA/ACCF/HRS 2009, Surawicz et al., Circulation 119:e235, criteria 1-3): QRS
  >= 120 ms; a positive terminal deflection in V1 (rsR', R'); in I and V6 an "S wave of
  greater duration than R wave or greater than 40 ms", read as written: by the waves'
  durations, not their heights (the RV's late forces reach V6 from across the heart and
  are small there; until 2026-12-02 this criterion asked for a terminal wave of at least
  20 % of the lead's largest deflection, which no guideline states).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.signals.features import beat_features
from pipeline.signals.leads import LEAD_NAMES

LIMB = ("I", "II", "III", "aVR", "aVL", "aVF")
PRECORDIAL = ("V1", "V2", "V3", "V4", "V5", "V6")


@dataclass(frozen=True)
class LeadMorphology:
    """The QRS and T of one lead (mV; the R and S waves' durations ``r_ms``, ``s_ms`` in ms)."""

    r: float
    s: float
    net: float
    p2p: float
    terminal: float
    t: float
    r_ms: float = 0.0
    s_ms: float = 0.0

    @property
    def rs_ratio(self) -> float:
        """R / |S| (inf for a pure R)."""
        return self.r / abs(self.s) if self.s < 0 else float("inf")


@dataclass(frozen=True)
class Morphology:
    """QRS duration (ms) and per-lead morphology of a beat."""

    qrs_ms: float
    leads: dict[str, LeadMorphology]

    @property
    def frontal_axis_deg(self) -> float:
        """The frontal-plane QRS axis (degrees, hexaxial: 0 toward the left arm, +90 toward
        the feet), from the net QRS of I and aVF: ``atan2(2 aVF / sqrt(3), I)``, the
        clinical net-amplitude reading. Normal adults: -30 to +90 (mean about +40 to +50).
        """
        return float(np.degrees(np.arctan2(2.0 * self.leads["aVF"].net / np.sqrt(3.0),
                                           self.leads["I"].net)))


def terminal_wave(qrs: np.ndarray, dt_ms: float, fraction: float = 0.2,
                  smooth_ms: float = 5.0) -> float:
    """The value (mV) of the last wave of one lead's QRS (module docstring).

    Parameters
    ----------
    qrs
        (n,) mV, the QRS relative to its onset level.
    dt_ms
        Sampling interval (ms).
    fraction
        Least height and prominence of a wave, as a fraction of max |qrs|.
    smooth_ms
        Moving-average window (ms) before the waves are found.

    Returns
    -------
    float
        Positive for a terminal R (R'), negative for a terminal S; 0.0 for a flat lead.
    """
    from scipy.signal import find_peaks

    qrs = np.asarray(qrs, dtype=np.float64)
    width = max(1, int(round(smooth_ms / dt_ms)))
    x = np.convolve(qrs, np.ones(width) / width, mode="same") if qrs.size > width else qrs
    big = float(np.max(np.abs(x))) if x.size else 0.0
    if big == 0.0:
        return 0.0
    padded = np.concatenate([[0.0], x, [0.0]])      # a wave may end the QRS at its extreme
    last, value = -1, 0.0
    for sign in (1.0, -1.0):
        peaks, _ = find_peaks(sign * padded, height=fraction * big, prominence=fraction * big)
        if peaks.size and peaks[-1] > last:
            last, value = int(peaks[-1]), float(padded[peaks[-1]])
    return value


def wave_durations(qrs: np.ndarray, dt_ms: float, min_mV: float = 0.03,
                   min_ms: float = 6.0) -> tuple[float, float]:
    """Durations (ms) of one lead's R and S waves (module docstring).

    Parameters
    ----------
    qrs
        (n,) mV, the QRS relative to its onset level.
    dt_ms
        Sampling interval (ms).
    min_mV, min_ms
        The least recognisable wave: at least ``min_mV`` from the onset level for at least
        ``min_ms`` (IEC 60601-2-51:2003, Annex GG.5: 30 uV, 6 ms).

    Returns
    -------
    r_ms, s_ms
        The run above ``+min_mV`` holding the QRS maximum, and the longest run below
        ``-min_mV`` after that maximum (after the onset if there is no R); 0.0 for none.
    """
    qrs = np.asarray(qrs, dtype=np.float64)

    def runs(sel: np.ndarray) -> list[tuple[int, int]]:
        """Half-open index runs of ``sel`` at least ``min_ms`` long."""
        edges = np.flatnonzero(np.diff(np.concatenate([[0], sel.astype(np.int8), [0]])))
        return [(a, b) for a, b in zip(edges[::2], edges[1::2])
                if (b - a) * dt_ms >= min_ms]

    peak = int(np.argmax(qrs)) if qrs.size else 0
    r = [(a, b) for a, b in runs(qrs > min_mV) if a <= peak < b]
    r_ms = (r[0][1] - r[0][0]) * dt_ms if r else 0.0
    after = peak if r else 0
    s = [b - max(a, after) for a, b in runs(qrs < -min_mV) if b > after]
    s_ms = max(s) * dt_ms if s else 0.0
    return float(r_ms), float(s_ms)


def morphology(ecg: np.ndarray, dt_ms: float, terminal_fraction: float = 0.2,
               qrs_window_ms: tuple[float, float] | None = None) -> Morphology:
    """Per-lead R, S, net QRS, terminal QRS wave and T of a beat ``(12, T)`` mV.

    Parameters
    ----------
    ecg
        Leads in :data:`~pipeline.signals.leads.LEAD_NAMES` order, mV.
    dt_ms
        Sampling interval (ms).
    terminal_fraction
        Least height and prominence of the terminal wave (:func:`terminal_wave`).
    qrs_window_ms
        QRS onset and end (ms from the first sample) measured elsewhere, e.g. a recorded
        beat's from :func:`pipeline.clinical.preprocess.preprocess` (``qrs_onset_ms``,
        ``qrs_offset_ms``); by default :func:`~pipeline.signals.features.beat_features`'s,
        whose spatial-velocity rule is made for simulated beats (on a recording's median
        beat its quiet threshold sits under the noise: PTB-XL record 1 reads 121 ms
        against the preprocessing's 85).
    """
    ecg = np.asarray(ecg, dtype=np.float64)
    if qrs_window_ms is None:
        f = beat_features(ecg, dt_ms)
        onset_ms, end_ms = f.qrs_onset_ms, f.qrs_end_ms
    else:
        onset_ms, end_ms = (float(v) for v in qrs_window_ms)
        if not 0.0 <= onset_ms < end_ms <= (ecg.shape[1] - 1) * dt_ms:
            raise ValueError(f"qrs_window_ms {qrs_window_ms}: expected 0 <= onset < end <= "
                             f"{(ecg.shape[1] - 1) * dt_ms:g} ms (the beat's length)")
    on, end = int(round(onset_ms / dt_ms)), int(round(end_ms / dt_ms))
    qrs = ecg[:, on:end + 1] - ecg[:, on:on + 1]
    st = ecg[:, min(end, ecg.shape[1] - 1)]
    start_t = min(ecg.shape[1] - 1, end + int(round(60.0 / dt_ms)))
    tail = ecg[:, start_t:] - st[:, None]
    leads = {}
    for i, name in enumerate(LEAD_NAMES):
        r, s = float(max(qrs[i].max(), 0.0)), float(min(qrs[i].min(), 0.0))
        t = float(tail[i, np.argmax(np.abs(tail[i]))]) if tail.shape[1] else float("nan")
        r_ms, s_ms = wave_durations(qrs[i], dt_ms)
        leads[name] = LeadMorphology(r=r, s=s, net=r + s, p2p=r - s,
                                     terminal=terminal_wave(qrs[i], dt_ms, terminal_fraction),
                                     t=t, r_ms=r_ms, s_ms=s_ms)
    return Morphology(qrs_ms=float(end_ms - onset_ms), leads=leads)


def normal_criteria(m: Morphology, qrs_ms: tuple[float, float] = (80.0, 110.0),
                    limb_mV: tuple[float, float] = (0.5, 2.5),
                    precordial_max_mV: float = 3.5,
                    axis_deg: tuple[float, float] = (-30.0, 90.0)) -> dict[str, bool]:
    """The textbook criteria of a normal beat (module docstring), by name."""
    L = m.leads
    ratios = [L[v].rs_ratio for v in PRECORDIAL]
    limb_p2p = max(L[n].p2p for n in LIMB)
    return {
        "qrs_duration": qrs_ms[0] <= m.qrs_ms <= qrs_ms[1],
        "rS_in_V1": abs(L["V1"].s) > L["V1"].r,
        "r_progression": ratios[-1] > ratios[0] and L["V5"].rs_ratio > 1 and
        L["V6"].rs_ratio > 1,
        "positive_qrs_I_II_V5_V6": all(L[n].net > 0 for n in ("I", "II", "V5", "V6")),
        "upright_t_I_II_V5_V6": all(L[n].t > 0 for n in ("I", "II", "V5", "V6")),
        "limb_amplitude": limb_mV[0] <= limb_p2p <= limb_mV[1],
        "precordial_amplitude": max(L[n].p2p for n in PRECORDIAL) <= precordial_max_mV,
        "normal_axis": axis_deg[0] <= m.frontal_axis_deg <= axis_deg[1],
    }


def lbbb_criteria(m: Morphology, min_qrs_ms: float = 120.0) -> dict[str, bool]:
    """Left bundle branch block: wide QRS, negative V1, broad positive I and V6."""
    L = m.leads
    return {"qrs_duration": m.qrs_ms >= min_qrs_ms,
            "negative_V1": L["V1"].net < 0,
            "positive_I_V6": L["I"].net > 0 and L["V6"].net > 0}


def rbbb_criteria(m: Morphology, min_qrs_ms: float = 120.0,
                  wide_s_ms: float = 40.0) -> dict[str, bool]:
    """Right bundle branch block: wide QRS, terminal R' in V1, and in I and V6 an S wave
    longer than the R wave or than ``wide_s_ms`` (module docstring)."""
    L = m.leads
    return {"qrs_duration": m.qrs_ms >= min_qrs_ms,
            "terminal_positive_V1": L["V1"].terminal > 0,
            "wide_S_I_V6": all(L[n].s_ms > min(L[n].r_ms, wide_s_ms) for n in ("I", "V6"))}


#: Criteria per activation pattern (patterns without textbook criteria are absent).
CRITERIA = {"normal": normal_criteria, "lbbb": lbbb_criteria, "rbbb": rbbb_criteria}
