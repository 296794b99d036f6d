"""Figures of the hemodynamic twins: identifiability, EF recovery, PV loops, LVAD trial."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.hemo import params as P  # noqa: E402
from pipeline.io import atomic_path  # noqa: E402

log = logging.getLogger(__name__)


def _save(fig: Any, path: str | Path) -> None:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png", bbox_inches="tight")
    plt.close(fig)
    log.info("wrote %s", path)


def identifiability_figure(true_unit: np.ndarray, preds: Mapping[str, np.ndarray], report: Mapping[str, Any],
                           path: str | Path) -> None:
    """True vs inferred parameters (unit-scaled) on the test split, one row per network."""
    names = list(preds)
    fig, axes = plt.subplots(len(names), len(P.INFERRED), figsize=(2.1 * len(P.INFERRED), 2.2 * len(names)),
                             squeeze=False)
    for r, net in enumerate(names):
        for c, par in enumerate(P.INFERRED):
            ax = axes[r, c]
            ax.scatter(true_unit[:, c], preds[net][:, c], s=3, alpha=0.4)
            ax.plot([0, 1], [0, 1], "k--", lw=0.8)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            r2 = report["networks"][net]["test_r2"][par]
            ax.set_title(f"{par}  R²={r2:.2f}", fontsize=8)
            ax.tick_params(labelsize=6)
            if c == 0:
                ax.set_ylabel(f"{net}\ninferred (unit range)", fontsize=8)
            if r == len(names) - 1:
                ax.set_xlabel("true (unit range)", fontsize=8)
    fig.suptitle("Identifiability from EDV, ESV, EF, HR (noisy test split)", fontsize=10)
    _save(fig, path)


def ef_recovery_figure(true_ef: np.ndarray, results: Mapping[str, np.ndarray], path: str | Path) -> None:
    """EF of the re-simulated twins vs the true EF, one panel per method."""
    fig, axes = plt.subplots(1, len(results), figsize=(3.6 * len(results), 3.4), squeeze=False)
    for ax, (name, ef) in zip(axes[0], results.items()):
        n = min(len(ef), len(true_ef))
        ax.scatter(true_ef[:n], ef[:n], s=6, alpha=0.6)
        ax.plot([0, 80], [0, 80], "k--", lw=0.8)
        mae = np.nanmean(np.abs(ef[:n] - true_ef[:n]))
        ax.set_title(f"{name}: EF MAE {mae:.1f} points (n={n})", fontsize=9)
        ax.set_xlabel("true EF (%)")
        ax.set_ylabel("twin EF, re-simulated (%)")
    _save(fig, path)


def pv_loops_figure(volumes: np.ndarray, pressures: np.ndarray, labels: Sequence[str], path: str | Path,
                    title: str = "Digital twins: LV pressure-volume loops") -> None:
    """PV loops: volumes and pressures (n, T) in mL and mmHg."""
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    for v, p, lab in zip(volumes, pressures, labels):
        ax.plot(v, p, lw=1.3, label=lab)
    ax.set_xlabel("LV volume (mL)")
    ax.set_ylabel("LV pressure (mmHg)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    _save(fig, path)


def lvad_trial_figure(speeds: np.ndarray, ef: np.ndarray, co: np.ndarray, base_ef: np.ndarray,
                      base_co: np.ndarray, example: Mapping[str, np.ndarray] | None, path: str | Path,
                      low_ef: float) -> None:
    """In-silico LVAD trial.

    Parameters
    ----------
    speeds
        (S,) rpm.
    ef, co
        (N, S) EF (%) and cardiac output (L/min) with the pump.
    base_ef, base_co
        (N,) without the pump.
    example
        Optional PV loops of one patient: ``v0, p0`` (no pump), ``v, p`` (S, T) with the pump.
    low_ef
        EF (%) below which a patient counts as low-EF (drawn in red).
    """
    ncols = 3 if example is not None else 2
    fig, axes = plt.subplots(1, ncols, figsize=(4.2 * ncols, 3.6))
    x = np.concatenate([[0.0], speeds])
    for i in range(ef.shape[0]):
        col = "tab:red" if base_ef[i] < low_ef else "tab:blue"
        axes[0].plot(x, np.concatenate([[base_ef[i]], ef[i]]), color=col, alpha=0.5, lw=0.9, marker=".")
        axes[1].plot(x, np.concatenate([[base_co[i]], co[i]]), color=col, alpha=0.5, lw=0.9, marker=".")
    axes[0].set_ylabel("EF (%)")
    axes[1].set_ylabel("cardiac output (L/min)")
    for ax in axes[:2]:
        ax.set_xlabel("pump speed (rpm; 0 = no LVAD)")
    axes[0].set_title(f"red: baseline EF < {low_ef:g} %", fontsize=9)
    axes[1].set_title("in-silico LVAD trial", fontsize=9)
    if example is not None:
        ax = axes[2]
        ax.plot(example["v0"], example["p0"], "k", lw=1.6, label="no LVAD")
        for s, v, p in zip(speeds, example["v"], example["p"]):
            ax.plot(v, p, lw=1.0, label=f"{s:.0f} rpm")
        ax.set_xlabel("LV volume (mL)")
        ax.set_ylabel("LV pressure (mmHg)")
        ax.set_title("PV loops of the lowest-EF twin", fontsize=9)
        ax.legend(fontsize=6)
    _save(fig, path)
