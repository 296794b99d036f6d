"""ECG intervals and amplitudes of a simulated beat: QRS duration, T wave.

The QRS complex is located on the *spatial velocity* of the 12 leads,
:math:`S(t) = \\sqrt{\\sum_\\ell (dE_\\ell/dt)^2}` (mV/ms), computed after a ``smooth_ms`` moving
average (a low-pass like an ECG machine's, which also removes the voxel-scale spikes of
coarse grids): its onset is the first sample where S exceeds ``fraction`` of its maximum;
its end is the first sample after the maximum from which S stays below that level for
``quiet_ms`` (the isoelectric ST segment of a simulated beat), or, where no such stretch
starts within ``max_qrs_ms`` of the onset (a sloping ST segment that runs into the T wave,
as after a bundle-branch block), the start of the quietest stretch before the T wave
(:func:`_st_valley`). The fraction is 1.5 %: low enough to see slow, low-amplitude terminal
forces as part of the QRS (the RV activated through the myocardium after a right
bundle branch block: 1-2.5 % of the peak velocity on the 2 mm LLNL heart, where 3 % cut
that QRS at 68 ms of 153 ms of activation), and still above the drift of the ST segment
(0.4-0.9 %, measured on the same beats; docs/fidelity-log.md, "Session 4 settings",
*Textbook criteria*). The T wave is the largest deflection, relative to the ST level at
the end of the QRS, between ``QRS end + t_gap_ms`` and the end of the record.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

from pipeline.signals.leads import LEAD_NAMES

log = logging.getLogger(__name__)

#: The longest QRS the rule will read (ms): the first quiet stretch must start within this
#: long of the onset. Where the ST segment runs into a discordant T wave (a bundle-branch
#: block), the spatial velocity can dip below the threshold for less than ``quiet_ms`` and
#: then stay above it through the T wave, so the first quiet stretch is the one after the
#: T wave (450-475 ms in seven LBBB beats of the demo, whose last activation is at
#: 135-160 ms). Clinically, a QRS over 200 ms is implausible (:mod:`pipeline.clinical`
#: warns there). A slower simulated beat is read as lasting the limit
#: (docs/fidelity-log.md, "Session 14").
MAX_QRS_MS = 250.0


@dataclass(frozen=True)
class BeatFeatures:
    """Figures of one 12-lead beat (ms, mV)."""

    qrs_onset_ms: float
    qrs_end_ms: float
    qrs_duration_ms: float
    qrs_amplitude_mV: float        # largest peak-to-peak within the QRS over the leads
    qrs_amplitude_lead: str
    t_peak_ms: float
    t_amplitude_mV: float          # signed, relative to the ST level, in the lead below
    t_lead: str
    max_abs_mV: float              # over all leads and samples
    qrs_end_by: str = "quiet"      # the rule that ended the QRS: quiet, valley or limit

    def as_dict(self) -> dict[str, float | str]:
        """The figures as a plain mapping (for JSON and logs)."""
        return asdict(self)


def spatial_velocity(ecg: np.ndarray, dt_ms: float, smooth_ms: float = 0.0) -> np.ndarray:
    """``S(t)`` (mV/ms) of leads ``(n_leads, T)``; length T (centred differences).

    ``smooth_ms`` > 0 first applies a moving average of that width to every lead.
    """
    ecg = np.asarray(ecg, dtype=np.float64)
    width = int(round(smooth_ms / dt_ms))
    if width > 1:
        ecg = uniform_filter1d(ecg, width, axis=-1, mode="nearest")
    grad = np.gradient(ecg, dt_ms, axis=-1)
    return np.sqrt((grad ** 2).sum(axis=0))


def beat_features(ecg: np.ndarray, dt_ms: float, fraction: float = 0.015,
                  quiet_ms: float = 20.0, t_gap_ms: float = 60.0, smooth_ms: float = 5.0,
                  lead_names: tuple[str, ...] = LEAD_NAMES,
                  max_qrs_ms: float = MAX_QRS_MS) -> BeatFeatures:
    """QRS onset, end, duration and amplitude, and the T wave of a beat.

    Parameters
    ----------
    ecg
        Leads ``(12, T)`` mV, sample ``n`` at ``n * dt_ms``.
    dt_ms
        Sampling interval (ms).
    fraction
        Threshold of the spatial velocity, relative to its maximum.
    quiet_ms
        How long S must stay below the threshold to end the QRS (ms).
    t_gap_ms
        The T wave is searched from the QRS end plus this gap (ms).
    smooth_ms
        Width of the moving average applied before differentiating (ms).
    lead_names
        Names of the rows.
    max_qrs_ms
        The QRS ends within this long of its onset (ms): a quiet stretch that starts later
        lies after the T wave. A QRS that has not ended by then is read as lasting this long
        (``qrs_end_by == "limit"``).
    """
    ecg = np.asarray(ecg, dtype=np.float64)
    n_t = ecg.shape[1]
    s = spatial_velocity(ecg, dt_ms, smooth_ms)
    level = fraction * s.max()
    above = s > level
    onset = int(np.argmax(above))
    peak = int(np.argmax(s))
    quiet = max(1, int(round(quiet_ms / dt_ms)))
    limit = int(min(n_t, onset + round(min(max_qrs_ms / dt_ms, n_t))))
    end, end_by = _quiet_end(above[:limit + quiet - 1], peak, quiet), "quiet"
    if end is None:
        end = _st_valley(s, peak, quiet, limit)
        end_by = "limit" if end == limit - 1 and limit < n_t else "valley"
    window = ecg[:, onset:end + 1]
    p2p = window.max(axis=1) - window.min(axis=1)
    qrs_lead = int(np.argmax(p2p))
    st = ecg[:, min(end, n_t - 1)]
    start_t = min(n_t - 1, end + int(round(t_gap_ms / dt_ms)))
    tail = ecg[:, start_t:] - st[:, None]
    if tail.shape[1] == 0:
        t_peak, t_amp, t_lead = float("nan"), float("nan"), ""
    else:
        lead, idx = np.unravel_index(int(np.argmax(np.abs(tail))), tail.shape)
        t_peak = (start_t + int(idx)) * dt_ms
        t_amp = float(tail[lead, idx])
        t_lead = lead_names[int(lead)]
    return BeatFeatures(qrs_onset_ms=onset * dt_ms, qrs_end_ms=end * dt_ms,
                        qrs_duration_ms=(end - onset) * dt_ms,
                        qrs_amplitude_mV=float(p2p[qrs_lead]),
                        qrs_amplitude_lead=lead_names[qrs_lead], t_peak_ms=t_peak,
                        t_amplitude_mV=t_amp, t_lead=t_lead,
                        max_abs_mV=float(np.abs(ecg).max()), qrs_end_by=end_by)


def _quiet_end(above: np.ndarray, peak: int, quiet: int) -> int | None:
    """First sample after ``peak`` from which ``above`` stays false for ``quiet`` samples."""
    run = 0
    for i in range(peak, above.size):
        run = run + 1 if not above[i] else 0
        if run >= quiet:
            return i - quiet + 1
    return None


def _st_valley(s: np.ndarray, peak: int, quiet: int, limit: int,
               decayed: float = 0.1) -> int:
    """The QRS end where S does not go quiet in time: the quietest stretch after the QRS.

    The quiet rule asks that the largest S over the next ``quiet`` samples,
    ``R(i) = max S[i:i + quiet]``, fall below the level. Where it does not before ``limit``
    (an ST segment that slopes into the T wave), the end is the first local minimum of R
    in ``[peak, limit)`` once the QRS is mostly over (R below ``decayed`` of the peak S):
    the start of the flattest stretch before the T wave. R, a running maximum, ignores
    wiggles shorter than ``quiet``, and the first minimum comes before the T wave's own
    quiet peak. ``limit - 1`` if S does not decay that far before ``limit`` (a QRS at
    least as long as the limit allows).
    """
    if s.size <= quiet:
        return s.size - 1
    r = np.lib.stride_tricks.sliding_window_view(s, quiet).max(axis=1)[:limit]
    low = np.flatnonzero(r[peak:] < decayed * s.max())
    if low.size == 0:
        return limit - 1
    start = peak + int(low[0])
    rises = np.flatnonzero(np.diff(r[start:]) > 0)
    return start + int(rises[0]) if rises.size else limit - 1
