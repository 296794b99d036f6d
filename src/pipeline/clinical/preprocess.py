"""From a clinical recording to the beat a network reads: filtering, beats, alignment, scaling.

:func:`preprocess` is the one entry point, for prediction on a patient and for any
training or validation on clinical data alike. Steps, in order (parameters in brackets):

1. checks on the raw leads: finite values, length >= ``min_duration_s`` [1.5 s], no
   saturated lead (a run of identical values at the lead's extreme lasting
   ``saturation_ms`` [20 ms]);
2. baseline removal and zero-phase band-pass: Butterworth ``order`` [2] high-pass at
   ``band[0]`` [0.5 Hz] and low-pass at ``band[1]`` [150 Hz] (clamped below 0.45 fs),
   applied forwards and backwards (``scipy.signal.sosfiltfilt``, no phase shift); optional
   mains notch at ``notch_hz`` [None; 50 or 60] (``iirnotch``, quality 30, ``filtfilt``);
3. resampling to ``fs_out`` [1000 Hz] (polyphase, ``scipy.signal.resample_poly``);
4. flat-lead check: the filtered lead's standard deviation below ``flat_mV`` [0.01 mV];
5. R peaks: the leads band-passed to 8-25 Hz, squared, summed over leads and smoothed
   with a 60-ms moving average (a QRS energy envelope); its peaks at least 250 ms apart
   (``scipy.signal.find_peaks``) above 30 % of the 90th percentile of the peak heights,
   and at least ``min_snr`` [10] times the envelope's median, are the QRS complexes; each
   R peak is then the maximum of the spatial magnitude ``sum_l x_l(t)^2`` within 60 ms;
6. heart rate = 60000 / median RR (ms); outside ``rate_range`` [30, 200] bpm is an error;
7. beats: a window of 300 ms before to 500 ms after every R peak (NaN beyond the record);
   their sample-wise median; beats that correlate below 0.8 with it (ectopic or noisy) are
   dropped from the median, with a warning naming them;
8. QRS onset and offset on the median beat, from the spatial velocity
   ``S(t) = sqrt(sum_l (dx_l/dt)^2)`` after a 5-ms moving average (as
   :mod:`pipeline.signals.features` does on simulated beats): with the level
   ``onset_fraction`` [0.05] of its maximum, the onset is the end of the last run of at
   least 10 ms below that level before the maximum, the offset the start of the first such
   run after it;
9. every beat's isoelectric level (mean of the 20 ms ending 5 ms before the QRS onset) is
   subtracted per lead, and the median is recomputed;
10. alignment: the median and every beat are cut to ``n_samples`` [500] samples at 1 kHz
    starting ``onset_ms`` [0] ms before the QRS onset.

Conventions of the output (those of the simulated dataset, DESIGN.md sections 1, 2, 6):

- **time**: sample ``n`` of :attr:`Beats.median` is at ``n - onset_ms`` ms from the QRS
  onset. A simulation starts at the first stimulus (t = 0), and its QRS starts there, so
  with ``onset_ms = 0`` the QRS onset takes the place of the stimulus and a network's
  activation times are relative to the QRS onset. The networks are trained with the
  paper's shift augmentation (the ECG delayed by 0-40 ms, zeros in front), so an
  ``onset_ms`` in 0..40 is inside the training distribution; subtract ``onset_ms`` from
  predicted times. Before the onset the beat is the isoelectric PR segment, near 0 mV, like
  the zeros of a simulated record before its stimulus.
- **amplitude**: :attr:`Beats.median` stays in mV (clinical amplitudes are not those of
  the simulated pseudo-ECG). The networks read every lead divided by its own range
  (max - min = 1 per lead and beat, no offset removed: ``pipeline.learn.data.scale_ecg``,
  the authors' ``normalized_unit``); :func:`network_input` does exactly that.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import numpy as np
from scipy import signal
from scipy.ndimage import uniform_filter1d

from pipeline.clinical.read import Recording
from pipeline.errors import InputError
from pipeline.signals.leads import LEAD_NAMES

log = logging.getLogger(__name__)

#: Beat window around each R peak (ms before, ms after).
PRE_R_MS = 300
POST_R_MS = 500
#: Band of the QRS energy envelope (Hz) and its smoothing (ms).
QRS_BAND_HZ = (8.0, 25.0)
ENVELOPE_MS = 60
#: Shortest RR interval searched (ms; 240 bpm).
MIN_RR_MS = 250
#: Search half-width for the R peak around an envelope peak (ms).
R_SEARCH_MS = 60
#: A beat correlating less than this with the median is left out of the median.
MIN_BEAT_CORRELATION = 0.8
#: Isoelectric window: from ``ISO_MS[0]`` to ``ISO_MS[1]`` ms before the QRS onset.
ISO_MS = (25, 5)
#: A run below the onset level must last this long (ms) to end/start the QRS.
QUIET_MS = 10
#: Smoothing of the spatial velocity (ms).
VELOCITY_SMOOTH_MS = 5


@dataclass(frozen=True, eq=False)
class Beats:
    """The preprocessed recording: filtered leads, R peaks and aligned beats.

    Attributes
    ----------
    median
        float32 ``(12, L)``, mV, 1 kHz: the median beat, lead order ``I, II, III, aVR, aVL,
        aVF, V1..V6``, QRS onset at sample ``onset_ms``, isoelectric level removed.
    beats
        float32 ``(n_beats, 12, L)``, mV: every beat cut like the median (NaN where the
        window passes the start or end of the recording; see ``complete``).
    complete
        bool ``(n_beats,)``: the beat's window lies inside the recording.
    used
        bool ``(n_beats,)``: the beat entered the median.
    r_peaks
        int64 ``(n_beats,)``: R-peak sample indices in :attr:`signals` (1 kHz).
    qrs_onsets
        int64 ``(n_beats,)``: every beat's QRS onset sample in :attr:`signals` (the median
        beat's onset-to-R lag applied to every R peak).
    signals
        float32 ``(12, T)``, mV: the whole recording band-passed and resampled to ``fs``.
    fs
        Sampling rate of ``signals``, ``median`` and ``beats`` (Hz, 1000).
    heart_rate_bpm
        60000 / median RR; NaN when a single beat was found.
    rr_ms
        ``(n_beats - 1,)`` RR intervals (ms).
    onset_ms
        Time of the QRS onset within the median window (ms; sample index at 1 kHz).
    qrs_onset_ms, qrs_offset_ms
        QRS onset and offset (end) within the median window (ms); ``qrs_onset_ms`` equals
        ``onset_ms``.
    qrs_duration_ms
        ``qrs_offset_ms - qrs_onset_ms``.
    r_lag_ms
        Time from the QRS onset to the R peak (ms).
    source
        The recording's source.
    warnings
        Messages about the recording that did not stop the processing (each names the
        lead or beat); also logged.
    """

    median: np.ndarray
    beats: np.ndarray
    complete: np.ndarray
    used: np.ndarray
    r_peaks: np.ndarray
    qrs_onsets: np.ndarray
    signals: np.ndarray
    fs: float
    heart_rate_bpm: float
    rr_ms: np.ndarray
    onset_ms: float
    qrs_onset_ms: float
    qrs_offset_ms: float
    qrs_duration_ms: float
    r_lag_ms: float
    source: str
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_beats(self) -> int:
        """Number of R peaks found."""
        return int(self.r_peaks.size)

    def network_input(self) -> np.ndarray:
        """The median beat scaled as the networks' training data: float32 ``(12, L)``."""
        return network_input(self.median)

    def summary(self) -> dict[str, object]:
        """JSON-ready figures: rate, beats, QRS, per-lead QRS peak-to-peak (mV), warnings."""
        lo, hi = int(round(self.qrs_onset_ms)), int(round(self.qrs_offset_ms)) + 1
        qrs = self.median[:, lo:hi]
        p2p = qrs.max(axis=1) - qrs.min(axis=1) if qrs.shape[1] else np.full(12, np.nan)
        return {
            "source": self.source, "fs_hz": self.fs, "n_beats": self.n_beats,
            "n_beats_in_median": int(self.used.sum()),
            "heart_rate_bpm": _num(self.heart_rate_bpm),
            "rr_ms": [float(v) for v in self.rr_ms],
            "r_peaks_ms": [float(v) * 1000.0 / self.fs for v in self.r_peaks],
            "onset_ms": self.onset_ms, "qrs_onset_ms": self.qrs_onset_ms,
            "qrs_offset_ms": self.qrs_offset_ms, "qrs_duration_ms": self.qrs_duration_ms,
            "r_lag_ms": self.r_lag_ms, "median_shape": list(self.median.shape),
            "lead_names": list(LEAD_NAMES),
            "qrs_p2p_mV": {n: round(float(v), 4) for n, v in zip(LEAD_NAMES, p2p)},
            "max_abs_mV": float(np.abs(self.median).max()),
            "warnings": list(self.warnings),
        }


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def network_input(ecg: np.ndarray) -> np.ndarray:
    """Scale every lead to range 1, as the networks' training data (no offset removed).

    Identical to ``pipeline.learn.data.scale_ecg`` (the authors' ``normalized_unit``):
    each lead of each beat is divided by its own max - min over time; a flat lead is
    left as it is.

    Parameters
    ----------
    ecg
        ``(..., 12, L)`` in mV (e.g. :attr:`Beats.median`).

    Returns
    -------
    numpy.ndarray
        float32, same shape, each lead with max - min = 1.
    """
    ecg = np.asarray(ecg, dtype=np.float32)
    rng = ecg.max(axis=-1, keepdims=True) - ecg.min(axis=-1, keepdims=True)
    return ecg / np.where(rng > 0, rng, 1.0).astype(np.float32)


def bandpass(x: np.ndarray, fs: float, band: tuple[float, float] = (0.5, 150.0), *,
             order: int = 2, notch_hz: float | None = None,
             source: str = "ECG") -> tuple[np.ndarray, list[str]]:
    """Zero-phase Butterworth band-pass (and optional mains notch) along the last axis.

    Parameters
    ----------
    x
        ``(..., T)`` signals (mV) sampled at ``fs`` Hz.
    fs
        Sampling rate (Hz).
    band
        (high-pass, low-pass) corner frequencies (Hz); the low-pass is clamped to 0.45 fs
        (with a warning) and left out when it would exceed it anyway.
    order
        Butterworth order of each of the two filters (doubled by the forward-backward pass).
    notch_hz
        Mains frequency to notch out (50 or 60 Hz), or None.
    source
        Name for the warnings.

    Returns
    -------
    (numpy.ndarray, list of str)
        The filtered signals (float64, same shape) and the warnings raised.
    """
    warnings: list[str] = []
    low, high = float(band[0]), float(band[1])
    nyq_limit = 0.45 * fs
    if high > nyq_limit:
        msg = (f"{source}: low-pass {high:g} Hz is above 0.45 x the sampling rate "
               f"{fs:g} Hz; using {nyq_limit:g} Hz")
        warnings.append(msg)
        log.warning("%s", msg)
        high = nyq_limit
    if not 0 < low < high:
        raise InputError(f"{source}: invalid band ({band[0]}, {band[1]}) Hz at {fs:g} Hz")
    sos = signal.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    y = signal.sosfiltfilt(sos, np.asarray(x, dtype=np.float64), axis=-1)
    if notch_hz is not None:
        if not 0 < notch_hz < fs / 2:
            raise InputError(f"{source}: notch {notch_hz} Hz outside (0, {fs / 2:g}) Hz")
        b, a = signal.iirnotch(notch_hz, 30.0, fs=fs)
        y = signal.filtfilt(b, a, y, axis=-1)
    return y, warnings


def _resample(x: np.ndarray, fs: float, fs_out: float) -> np.ndarray:
    if fs == fs_out:
        return x
    frac = Fraction(fs_out / fs).limit_denominator(1000)
    if abs(float(frac) * fs - fs_out) > 1e-6 * fs_out:
        raise InputError(f"cannot resample {fs:g} Hz to {fs_out:g} Hz by a rational factor")
    return signal.resample_poly(x, frac.numerator, frac.denominator, axis=-1)


def check_saturation(x: np.ndarray, fs: float, source: str, saturation_ms: float = 20.0) -> None:
    """Raise when a lead sits at its own extreme value for ``saturation_ms`` or longer.

    Parameters
    ----------
    x
        ``(12, T)`` raw leads (mV) at ``fs`` Hz, canonical order.

    Raises
    ------
    InputError
        Naming the lead, the value and the time of the run.
    """
    run_min = max(2, int(round(saturation_ms * fs / 1000.0)))
    for lead, row in zip(LEAD_NAMES, x):
        for extreme in (row.max(), row.min()):
            at = np.concatenate(([0], (row == extreme).astype(np.int8), [0]))
            starts = np.flatnonzero(np.diff(at) == 1)
            ends = np.flatnonzero(np.diff(at) == -1)
            longest = int((ends - starts).max()) if starts.size else 0
            if longest >= run_min and np.ptp(row) > 0:
                i = int(starts[np.argmax(ends - starts)])
                raise InputError(f"{source}: lead {lead} is saturated: {longest} samples "
                                 f"({1000.0 * longest / fs:.0f} ms) at its extreme "
                                 f"{extreme:.4g} mV from {i / fs:.3f} s")


def _runs_below(mask: np.ndarray, quiet: int) -> np.ndarray:
    """Indices i such that mask[i - quiet + 1 .. i] are all True."""
    c = np.concatenate(([0], np.cumsum(mask.astype(np.int64))))
    idx = np.arange(quiet - 1, mask.size)
    return idx[(c[idx + 1] - c[idx + 1 - quiet]) == quiet]


def qrs_bounds(beat: np.ndarray, r_index: int, fs: float,
               fraction: float = 0.1) -> tuple[int, int]:
    """QRS onset and offset sample indices of a beat from its spatial velocity.

    Parameters
    ----------
    beat
        ``(12, L)`` mV at ``fs`` Hz (no NaN).
    r_index
        The R peak's sample in ``beat``; the velocity maximum is searched within 150 ms.
    fs
        Sampling rate (Hz).
    fraction
        Threshold relative to the maximum of the spatial velocity.

    Returns
    -------
    (int, int)
        Onset and offset sample indices.
    """
    dt_ms = 1000.0 / fs
    width = max(1, int(round(VELOCITY_SMOOTH_MS / dt_ms)))
    smooth = uniform_filter1d(beat, width, axis=-1, mode="nearest")
    vel = np.sqrt((np.gradient(smooth, dt_ms, axis=-1) ** 2).sum(axis=0))
    half = int(round(150 / dt_ms))
    lo, hi = max(0, r_index - half), min(vel.size, r_index + half)
    peak = lo + int(np.argmax(vel[lo:hi]))
    below = vel < fraction * vel[peak]
    quiet = max(2, int(round(QUIET_MS / dt_ms)))
    ends = _runs_below(below, quiet)
    before = ends[ends < peak]
    onset = int(before[-1]) + 1 if before.size else 0
    after = ends[ends - quiet + 1 > peak]
    offset = int(after[0]) - quiet + 1 if after.size else vel.size - 1
    return onset, offset


def detect_r_peaks(x: np.ndarray, fs: float, min_snr: float = 10.0) -> np.ndarray:
    """R-peak sample indices of a band-passed multi-lead ECG.

    Parameters
    ----------
    x
        ``(n_leads, T)`` band-passed leads (mV) at ``fs`` Hz.
    fs
        Sampling rate (Hz).
    min_snr
        A QRS must raise the energy envelope to at least this multiple of its median.

    Returns
    -------
    numpy.ndarray
        int64 sample indices, increasing (empty when no QRS stands out).
    """
    sos = signal.butter(3, QRS_BAND_HZ, btype="bandpass", fs=fs, output="sos")
    energy = (signal.sosfiltfilt(sos, x, axis=-1) ** 2).sum(axis=0)
    env = uniform_filter1d(energy, max(1, int(round(ENVELOPE_MS * fs / 1000))), mode="nearest")
    cand, props = signal.find_peaks(env, distance=max(1, int(round(MIN_RR_MS * fs / 1000))),
                                    height=0.0)
    if cand.size == 0:
        return cand.astype(np.int64)
    heights = props["peak_heights"]
    ref = float(np.percentile(heights, 90))
    floor = float(np.median(env))
    keep = (heights >= 0.3 * ref) & (heights >= min_snr * floor)
    cand = cand[keep]
    mag = (x ** 2).sum(axis=0)
    half = int(round(R_SEARCH_MS * fs / 1000))
    peaks = []
    for c in cand:
        lo, hi = max(0, c - half), min(mag.size, c + half + 1)
        peaks.append(lo + int(np.argmax(mag[lo:hi])))
    peaks_arr = np.unique(np.asarray(peaks, dtype=np.int64))
    # two envelope peaks refined onto one R peak, or closer than the shortest RR: keep the taller
    if peaks_arr.size > 1:
        out = [int(peaks_arr[0])]
        for p in peaks_arr[1:]:
            if p - out[-1] < MIN_RR_MS * fs / 1000:
                if mag[p] > mag[out[-1]]:
                    out[-1] = int(p)
            else:
                out.append(int(p))
        peaks_arr = np.asarray(out, dtype=np.int64)
    return peaks_arr


def _cut(x: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Windows ``x[:, s:s+length]`` for every start, NaN outside ``x``: (n, n_leads, length)."""
    n_leads, n_t = x.shape
    out = np.full((starts.size, n_leads, length), np.nan)
    for k, s in enumerate(starts):
        a, b = max(0, s), min(n_t, s + length)
        if b > a:
            out[k, :, a - s:b - s] = x[:, a:b]
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 10:
        return float("nan")
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = float(np.sqrt((a ** 2).sum() * (b ** 2).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


@dataclass(frozen=True)
class PreprocessSettings:
    """The parameters of :func:`preprocess` (defaults: the documented convention).

    Attributes
    ----------
    band
        Band-pass (high-pass, low-pass) corners in Hz; the high-pass removes the baseline
        wander.
    notch_hz
        Mains frequency to notch (50 or 60 Hz) or None.
    fs_out
        Output sampling rate (Hz); the simulated dataset is at 1000 Hz.
    n_samples
        Length L of the aligned beats (samples at ``fs_out``; the dataset's T = 500).
    onset_ms
        Where the QRS onset sits in the aligned window (ms, 0..100); see the module
        docstring for the time convention.
    order
        Butterworth order of the high- and low-pass filters.
    min_duration_s
        Shortest recording accepted (s).
    rate_range
        Accepted heart rates (bpm).
    flat_mV
        A lead whose band-passed standard deviation is below this (mV) is flat.
    saturation_ms
        A run of identical values at a lead's extreme this long (ms) is saturation.
    min_snr
        QRS energy peaks must exceed this multiple of the envelope's median.
    onset_fraction
        QRS onset/offset level relative to the maximum spatial velocity of the median beat.
    """

    band: tuple[float, float] = (0.5, 150.0)
    notch_hz: float | None = None
    fs_out: float = 1000.0
    n_samples: int = 500
    onset_ms: float = 0.0
    order: int = 2
    min_duration_s: float = 1.5
    rate_range: tuple[float, float] = (30.0, 200.0)
    flat_mV: float = 0.01
    saturation_ms: float = 20.0
    min_snr: float = 10.0
    onset_fraction: float = 0.05


def preprocess(recording: Recording, settings: PreprocessSettings | None = None,
               **overrides: Any) -> Beats:
    """Filter, resample, find the beats and align the median beat on the QRS onset.

    The steps and conventions are those of the module docstring: the result's
    :attr:`Beats.median` is ``(12, n_samples)`` mV at 1 kHz with the QRS onset at sample
    ``onset_ms`` and the isoelectric level at 0; :meth:`Beats.network_input` scales it per
    lead like the training data.

    Parameters
    ----------
    recording
        From :func:`pipeline.clinical.read.read_ecg`: ``(12, T)`` mV at ``fs`` Hz.
    settings
        The parameters (:class:`PreprocessSettings`; its defaults if None).
    **overrides
        Fields of :class:`PreprocessSettings` to change (``onset_ms=10``...).

    Returns
    -------
    Beats
        Median and all beats, R peaks, heart rate, QRS onset/offset, warnings.

    Raises
    ------
    InputError
        NaN/inf values, a recording shorter than ``min_duration_s``, a saturated or flat
        lead (named), no beats found, a heart rate outside ``rate_range``, or an
        ``onset_ms`` or ``n_samples`` outside the beat window.
    """
    p = replace(settings or PreprocessSettings(), **overrides)
    band, notch_hz, fs_out, n_samples = p.band, p.notch_hz, p.fs_out, p.n_samples
    onset_ms, order, min_duration_s, rate_range = p.onset_ms, p.order, p.min_duration_s, \
        p.rate_range
    flat_mV, saturation_ms, min_snr, onset_fraction = p.flat_mV, p.saturation_ms, p.min_snr, \
        p.onset_fraction
    source, fs = recording.source, float(recording.fs)
    x = _checked_signals(recording, min_duration_s, onset_ms, n_samples, fs_out, saturation_ms)
    warnings: list[str] = []

    def warn(msg: str) -> None:
        warnings.append(msg)
        log.warning("%s", msg)

    y, filt_warnings = bandpass(x, fs, band, order=order, notch_hz=notch_hz, source=source)
    warnings += filt_warnings
    y = _resample(y, fs, fs_out)
    _check_flat(y, flat_mV, source)
    r_peaks, rr, rate = _beats_and_rate(y, fs_out, min_snr, rate_range, x.shape[1] / fs,
                                        source, warn)
    pre = int(round(PRE_R_MS * fs_out / 1000))
    around, used = _beats_around(y, r_peaks, pre, fs_out, source, warn)
    complete = np.isfinite(around).all(axis=(1, 2))
    onset, offset = qrs_bounds(_nanmedian(around, used), pre, fs_out, onset_fraction)
    around = _remove_isoelectric(around, used, onset, fs_out, pre, source, warn)
    median_full = _nanmedian(around, used)
    shift = int(round(onset_ms * fs_out / 1000))
    start = onset - shift
    if start < 0:
        raise InputError(f"{source}: QRS onset {pre - onset} ms before R with onset_ms "
                         f"{onset_ms} leaves the beat window")
    qrs_dur = (offset - onset) * 1000.0 / fs_out
    if qrs_dur > 200:
        warn(f"{source}: QRS duration estimate {qrs_dur:.0f} ms is implausibly long")
    r_lag = (pre - onset) * 1000.0 / fs_out
    result = Beats(
        median=median_full[:, start:start + n_samples].astype(np.float32),
        beats=around[:, :, start:start + n_samples].astype(np.float32), complete=complete,
        used=used, r_peaks=r_peaks, qrs_onsets=(r_peaks - (pre - onset)).astype(np.int64),
        signals=y.astype(np.float32), fs=float(fs_out), heart_rate_bpm=rate, rr_ms=rr,
        onset_ms=float(shift * 1000.0 / fs_out), qrs_onset_ms=float(shift * 1000.0 / fs_out),
        qrs_offset_ms=float((offset - start) * 1000.0 / fs_out), qrs_duration_ms=qrs_dur,
        r_lag_ms=r_lag, source=source, warnings=tuple(warnings))
    log.info("%s: %d beats, %.1f bpm, QRS %.0f ms (onset %.0f ms before R), %d in the median",
             source, result.n_beats, rate, qrs_dur, r_lag, int(used.sum()))
    return result


def _checked_signals(recording: Recording, min_duration_s: float, onset_ms: float,
                     n_samples: int, fs_out: float, saturation_ms: float) -> np.ndarray:
    """The recording's (12, T) signals after the checks that need no filtering."""
    source, fs = recording.source, float(recording.fs)
    x = np.asarray(recording.signals, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(LEAD_NAMES):
        raise InputError(f"{source}: signals of shape {x.shape}; expected (12, T)")
    if not np.isfinite(x).all():
        lead, sample = np.argwhere(~np.isfinite(x))[0]
        raise InputError(f"{source}: NaN or inf in lead {LEAD_NAMES[lead]} at sample {sample}")
    duration = x.shape[1] / fs
    if duration < min_duration_s:
        raise InputError(f"{source}: recording of {duration:.3g} s is shorter than "
                         f"{min_duration_s:g} s")
    if not 0 <= onset_ms <= 100:
        raise InputError(f"onset_ms = {onset_ms} outside 0..100 ms")
    if n_samples < 1 or n_samples - onset_ms * fs_out / 1000 > POST_R_MS * fs_out / 1000:
        raise InputError(f"n_samples = {n_samples} beyond the beat window "
                         f"({POST_R_MS} ms after R)")
    check_saturation(x, fs, source, saturation_ms)
    return x


def _check_flat(y: np.ndarray, flat_mV: float, source: str) -> None:
    """InputError naming every lead whose band-passed standard deviation is below flat_mV."""
    sd = y.std(axis=1)
    flat = [f"{n} (sd {s * 1000:.2g} uV)" for n, s in zip(LEAD_NAMES, sd) if s < flat_mV]
    if flat:
        raise InputError(f"{source}: flat lead(s) {', '.join(flat)}: standard deviation below "
                         f"{flat_mV:g} mV after band-pass; electrode off?")


def _beats_and_rate(y: np.ndarray, fs: float, min_snr: float,
                    rate_range: tuple[float, float], duration_s: float, source: str,
                    warn: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """R peaks (samples), RR intervals (ms) and the heart rate (bpm), checked."""
    r_peaks = detect_r_peaks(y, fs, min_snr)
    if r_peaks.size == 0:
        raise InputError(f"{source}: no beats found (no QRS complex stands out of the "
                         f"{duration_s:.3g} s recording)")
    rr = np.diff(r_peaks) * 1000.0 / fs
    if r_peaks.size < 2:
        warn(f"{source}: a single beat found; heart rate unknown")
        return r_peaks, rr, float("nan")
    rate = 60000.0 / float(np.median(rr))
    if not rate_range[0] <= rate <= rate_range[1]:
        raise InputError(f"{source}: heart rate {rate:.1f} bpm outside {rate_range[0]:g}-"
                         f"{rate_range[1]:g} bpm ({r_peaks.size} beats found)")
    cv = float(np.std(rr) / np.mean(rr))
    if cv > 0.15:
        warn(f"{source}: irregular rhythm (RR {rr.min():.0f}-{rr.max():.0f} ms, "
             f"CV {cv:.2f}); the median beat mixes different RR intervals")
    return r_peaks, rr, rate


def _beats_around(y: np.ndarray, r_peaks: np.ndarray, pre: int, fs: float, source: str,
                  warn: Any) -> tuple[np.ndarray, np.ndarray]:
    """Beats cut around the R peaks (n, 12, L) and which of them make the median (n,):
    beats unlike the median (r < MIN_BEAT_CORRELATION) are left out, if few."""
    length = pre + int(round(POST_R_MS * fs / 1000))
    around = _cut(y, r_peaks - pre, length)
    used = np.ones(r_peaks.size, dtype=bool)
    median0 = _nanmedian(around, used)
    if r_peaks.size >= 3:
        corr = np.array([_corr(b.ravel(), median0.ravel()) for b in around])
        bad = np.flatnonzero(~(corr >= MIN_BEAT_CORRELATION))
        if bad.size and bad.size <= r_peaks.size // 2:
            used[bad] = False
            warn(f"{source}: beat(s) " + ", ".join(
                f"{k} (R at {r_peaks[k] / fs:.2f} s, r = {corr[k]:.2f})" for k in bad)
                + f" differ from the median beat (r < {MIN_BEAT_CORRELATION}); left out of it")
            median0 = _nanmedian(around, used)
        elif bad.size:
            warn(f"{source}: {bad.size} of {r_peaks.size} beats correlate below "
                 f"{MIN_BEAT_CORRELATION} with the median beat; all kept (noisy recording?)")
    if not np.isfinite(median0).all():
        raise InputError(f"{source}: the beats do not cover a whole window of "
                         f"{PRE_R_MS} ms before to {POST_R_MS} ms after the R peak")
    return around, used


def _remove_isoelectric(around: np.ndarray, used: np.ndarray, onset: int, fs: float,
                        pre: int, source: str, warn: Any) -> np.ndarray:
    """Each beat minus its PR-segment level (per lead), so the baseline sits at 0 mV."""
    iso = (int(round(ISO_MS[0] * fs / 1000)), int(round(ISO_MS[1] * fs / 1000)))
    if onset - iso[0] < 0:
        warn(f"{source}: QRS onset {pre - onset} samples before R leaves no PR segment in "
             "the window; isoelectric level taken from the window start")
    a, b = max(0, onset - iso[0]), max(1, onset - iso[1])
    level = np.nanmean(around[:, :, a:b], axis=2)                    # (n_beats, 12)
    level = np.where(np.isfinite(level), level, np.nanmedian(level[used], axis=0))
    return around - level[:, :, None]


def _nanmedian(around: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Sample-wise median over the used beats, ignoring NaN (NaN where no beat covers)."""
    sel = around[used]
    cover = np.isfinite(sel).any(axis=0)
    out = np.full(sel.shape[1:], np.nan)
    if cover.any():
        out[cover] = np.nanmedian(sel[:, cover], axis=0)
    return out
