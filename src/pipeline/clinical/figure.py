"""Figure of a preprocessed recording: the 12 filtered leads with their R peaks, and the
aligned median beat over every beat. Matplotlib is imported here only (Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.clinical.preprocess import Beats
from pipeline.io import atomic_path
from pipeline.signals.leads import LEAD_NAMES


def plot_beats(beats: Beats, path: str | Path, title: str | None = None) -> None:
    """Write a PNG: left, the 12 leads (mV vs s) with R peaks and QRS onsets marked; right,
    every beat (grey) and the median beat (black) in the aligned window (ms from its start),
    the QRS onset and offset as dashed lines.

    Parameters
    ----------
    beats
        From :func:`pipeline.clinical.preprocess.preprocess`.
    path
        Output ``.png``.
    title
        Figure title (default: the source and the figures).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_t = beats.signals.shape[1]
    t_s = np.arange(n_t) / beats.fs
    t_beat = np.arange(beats.median.shape[1]) * 1000.0 / beats.fs
    fig, axes = plt.subplots(12, 2, figsize=(14, 16), sharex="col",
                             gridspec_kw={"width_ratios": [3, 1]})
    for k, lead in enumerate(LEAD_NAMES):
        ax, bx = axes[k]
        ax.plot(t_s, beats.signals[k], lw=0.6, color="k")
        ax.plot(beats.r_peaks / beats.fs, beats.signals[k, beats.r_peaks], "rv", ms=3)
        onsets = beats.qrs_onsets[(beats.qrs_onsets >= 0) & (beats.qrs_onsets < n_t)]
        ax.plot(onsets / beats.fs, beats.signals[k, onsets], "b|", ms=6)
        ax.set_ylabel(f"{lead}\nmV", rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
        for b, used in zip(beats.beats, beats.used):
            bx.plot(t_beat, b[k], lw=0.5, color="0.7" if used else "tab:orange")
        bx.plot(t_beat, beats.median[k], lw=1.2, color="k")
        for x in (beats.qrs_onset_ms, beats.qrs_offset_ms):
            bx.axvline(x, ls="--", lw=0.6, color="b")
        bx.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 1].set_xlabel("aligned beat (ms; QRS onset at the first dashed line)")
    rate = f"{beats.heart_rate_bpm:.1f} bpm" if np.isfinite(beats.heart_rate_bpm) else "rate ?"
    fig.suptitle(title or f"{Path(beats.source).name}: {beats.n_beats} beats, {rate}, "
                 f"QRS {beats.qrs_duration_ms:.0f} ms (band-passed, 1 kHz)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
