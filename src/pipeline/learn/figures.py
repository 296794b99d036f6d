"""Figures of the evaluation and of ``pipeline predict``: ECG, bull's-eyes, errors, Vm traces.

LV bull's-eye: the AHA-17 layout (American Heart Association, Cerqueira et al. 2002) of
points 0-16 (``AHA01``..``AHA17``): basal and mid rings of six 60-degree segments starting
with the anterior one (1, 7) at the top and running counter-clockwise through septal,
inferior and lateral; the apical ring 13-16 (anterior, septal, inferior, lateral); the apex
17 in the centre. RV bull's-eye (schematic, no standard exists): rings basal ``RV01-05``,
mid ``RV06-10``, apical ``RV11-13`` from the outside in, each ring's points in order
counter-clockwise from the top.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import Wedge  # noqa: E402

from pipeline.io import atomic_path  # noqa: E402
from pipeline.signals.leads import LEAD_NAMES  # noqa: E402

log = logging.getLogger(__name__)

#: Point indices (0-based) of the Vm traces the paper shows.
TRACE_POINTS: tuple[int, ...] = (1, 17, 67)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def _rings(ax: Axes, rings: Sequence[tuple[float, float, int, float]], values: np.ndarray,
           labels: Sequence[str], norm: matplotlib.colors.Normalize, cmap: str) -> None:
    """Draw wedge rings: (r_in, r_out, n, start_deg) each, counter-clockwise."""
    cm = plt.get_cmap(cmap)
    k = 0
    for r_in, r_out, n, start in rings:
        for j in range(n):
            a0 = start + j * 360.0 / n
            v = values[k]
            colour = cm(norm(v)) if np.isfinite(v) else (0.85, 0.85, 0.85, 1.0)
            ax.add_patch(Wedge((0, 0), r_out, a0, a0 + 360.0 / n, width=r_out - r_in,
                               facecolor=colour, edgecolor="k", linewidth=0.6))
            mid = np.deg2rad(a0 + 180.0 / n)
            rr = 0.5 * (r_in + r_out) if (r_in > 0 or n == 1) else 0.6 * r_out
            rr = 0.0 if n == 1 and r_in == 0 else rr
            ax.text(rr * np.cos(mid), rr * np.sin(mid), labels[k], ha="center", va="center",
                    fontsize=6)
            k += 1
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")
    ax.axis("off")


def bullseye_lv(ax: Axes, values17: np.ndarray, norm: matplotlib.colors.Normalize,
                cmap: str = "jet_r") -> None:
    """AHA-17 bull's-eye of 17 values (points AHA01..AHA17)."""
    values17 = np.asarray(values17, dtype=float)
    rings = [(0.75, 1.0, 6, 60.0), (0.5, 0.75, 6, 60.0), (0.25, 0.5, 4, 45.0), (0.0, 0.25, 1, 0.0)]
    _rings(ax, rings, values17, [str(i) for i in range(1, 18)], norm, cmap)


def bullseye_rv(ax: Axes, values13: np.ndarray, norm: matplotlib.colors.Normalize,
                cmap: str = "jet_r") -> None:
    """Schematic RV bull's-eye of 13 values (points RV01..RV13)."""
    values13 = np.asarray(values13, dtype=float)
    rings = [(0.67, 1.0, 5, 90.0), (0.34, 0.67, 5, 90.0), (0.0, 0.34, 3, 90.0)]
    _rings(ax, rings, values13, [f"RV{i}" for i in range(1, 14)], norm, cmap)


def plot_bullseyes(maps: dict[str, np.ndarray], path: str | Path,
                   title: str = "activation time (ms)") -> Path:
    """LV and RV bull's-eyes for each named activation map (75,), one column per map."""
    finite = np.concatenate([np.asarray(m, float)[:30] for m in maps.values()])
    finite = finite[np.isfinite(finite)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    norm = matplotlib.colors.Normalize(vmin=lo, vmax=max(hi, lo + 1e-6))
    fig, axes = plt.subplots(2, len(maps), figsize=(3.2 * len(maps) + 0.8, 6.4), squeeze=False)
    for col, (name, m) in enumerate(maps.items()):
        m = np.asarray(m, dtype=float)
        bullseye_lv(axes[0, col], m[:17], norm)
        bullseye_rv(axes[1, col], m[17:30], norm)
        axes[0, col].set_title(f"{name}: LV")
        axes[1, col].set_title(f"{name}: RV")
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap="jet_r")
    fig.colorbar(sm, ax=axes, shrink=0.7, label=title)
    return _save(fig, path)


def plot_ecg(ecg: np.ndarray, path: str | Path, title: str = "12-lead ECG",
             dt_ms: float = 1.0) -> Path:
    """The 12 leads (12, T) in mV (or scaled units) as a 6 x 2 grid."""
    t = np.arange(ecg.shape[-1]) * dt_ms
    fig, axes = plt.subplots(6, 2, figsize=(8, 7), sharex=True)
    for i, ax in enumerate(axes.T.ravel()):
        ax.plot(t, ecg[i], "k", lw=0.8)
        ax.set_ylabel(LEAD_NAMES[i], rotation=0, labelpad=14)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("time (ms)")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_error_boxes(abs_err: np.ndarray, point_names: Sequence[str], path: str | Path,
                     title: str = "") -> Path:
    """Box plot of the absolute activation error per point; ``abs_err`` (N, 75) in ms."""
    cols = [c[np.isfinite(c)] for c in np.asarray(abs_err, float).T]
    fig, ax = plt.subplots(figsize=(14, 4))
    ax.boxplot(cols, showfliers=False)
    ax.set_xticks(np.arange(1, len(cols) + 1), list(point_names), rotation=90, fontsize=6)
    ax.set_ylabel("|activation error| (ms)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_vm_traces(vm_true: np.ndarray, path: str | Path, point_names: Sequence[str],
                   vm_pred: np.ndarray | None = None, act_pred: np.ndarray | None = None,
                   points: Sequence[int] = TRACE_POINTS, dt_ms: float = 1.0) -> Path:
    """Vm true (and predicted) at ``points`` (0-based) for one sample; (75, T) in mV.

    For an activation network, the predicted activation times ``act_pred`` (75,) are drawn
    as vertical lines on the true traces.
    """
    t = np.arange(vm_true.shape[-1]) * dt_ms
    fig, axes = plt.subplots(len(points), 1, figsize=(7, 2.2 * len(points)), sharex=True)
    for ax, p in zip(np.atleast_1d(axes), points, strict=True):
        ax.plot(t, vm_true[p], "k", lw=1.2, label="true")
        if vm_pred is not None:
            ax.plot(t, vm_pred[p], "r--", lw=1.2, label="predicted")
        if act_pred is not None and np.isfinite(act_pred[p]):
            ax.axvline(act_pred[p], color="r", ls="--", label="predicted activation")
        ax.set_ylabel(f"{point_names[p]}\nVm (mV)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    np.atleast_1d(axes)[-1].set_xlabel("time (ms)")
    fig.tight_layout()
    return _save(fig, path)


def plot_message(text: str, path: str | Path) -> Path:
    """A placeholder figure that says why the real one is missing."""
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.axis("off")
    return _save(fig, path)


def plot_anatomy_3d(anatomy: str | Path, maps: dict[str, np.ndarray], path: str | Path) -> Path:
    """Activation at the 75 points on the 3-D anatomy (tissue surface, pyvista off-screen).

    Reads ``grid/origin``, ``grid/spacing``, ``mask`` and ``points/xyz`` of anatomy.h5.
    """
    import h5py
    import pyvista as pv

    with h5py.File(anatomy, "r") as f:
        origin = f["grid/origin"][...]
        spacing = f["grid/spacing"][...]
        mask = f["mask"][...].astype(np.float32)
        xyz = f["points/xyz"][...]
    grid = pv.ImageData(dimensions=mask.shape, spacing=tuple(spacing), origin=tuple(origin))
    grid.point_data["mask"] = mask.ravel(order="F")
    surface = grid.contour([0.5], scalars="mask")
    finite = np.concatenate([np.asarray(m, float) for m in maps.values()])
    finite = finite[np.isfinite(finite)]
    clim = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pv.OFF_SCREEN = True
    plotter = pv.Plotter(off_screen=True, shape=(1, len(maps)), window_size=(450 * len(maps), 450))
    for col, (name, m) in enumerate(maps.items()):
        plotter.subplot(0, col)
        if surface.n_points:
            plotter.add_mesh(surface, color="lightgrey", opacity=0.25)
        cloud = pv.PolyData(np.asarray(xyz, float))
        cloud.point_data["activation (ms)"] = np.asarray(m, float)
        plotter.add_mesh(cloud, scalars="activation (ms)", cmap="jet_r", clim=clim,
                         point_size=12, render_points_as_spheres=True, nan_color="grey")
        plotter.add_text(name, font_size=10)
    plotter.link_views()
    path = Path(path)
    with atomic_path(path) as tmp:
        plotter.screenshot(str(tmp.with_suffix(".png")))
        tmp.with_suffix(".png").replace(tmp)
    plotter.close()
    return path


def plot_ecg_pair(left: np.ndarray, right: np.ndarray, path: str | Path,
                  titles: tuple[str, str] = ("patient", "nearest training sample"),
                  onset_ms: float = 0.0, dt_ms: float = 1.0) -> Path:
    """Two 12-lead ECGs (12, T) side by side, the leads stacked top to bottom.

    Each lead is drawn scaled to range 1 (what the network reads; clinical and simulated
    amplitudes differ) and labelled with its peak-to-peak amplitude in mV. ``onset_ms``
    (the QRS onset of ``left`` in its window) is marked on the left; the right one (a
    simulation) starts at its first stimulus, t = 0.
    """
    t = np.arange(left.shape[-1]) * dt_ms
    fig, axes = plt.subplots(1, 2, figsize=(9, 8), sharey=True)
    for ax, ecg, name in zip(axes, (left, right), titles, strict=True):
        ecg = np.asarray(ecg, dtype=float)
        p2p = ecg.max(axis=1) - ecg.min(axis=1)
        scaled = ecg / np.where(p2p > 0, p2p, 1.0)[:, None]
        for i in range(12):
            ax.plot(t, scaled[i] - 1.2 * i, "k", lw=0.8)
            ax.text(t[-1], -1.2 * i + 0.3, f"{p2p[i]:.2g} mV", fontsize=6, ha="right")
        ax.set_yticks(-1.2 * np.arange(12), list(LEAD_NAMES))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("time (ms)")
        ax.grid(alpha=0.3)
    if onset_ms:
        axes[0].axvline(onset_ms, color="r", lw=0.6, ls="--")
    fig.tight_layout()
    return _save(fig, path)


def plot_prediction_bullseyes(maps: dict[str, np.ndarray], path: str | Path,
                              sd: np.ndarray | None = None,
                              title: str = "activation time (ms)") -> Path:
    """LV/RV bull's-eyes of activation maps (75,) on one scale, plus an SD map on its own.

    Parameters
    ----------
    maps
        Named activation maps (75,), ms, drawn with a common colour scale.
    sd
        (75,) ensemble SD (ms), drawn in a last column with its own scale, or None.
    """
    finite = np.concatenate([np.asarray(m, float)[:30] for m in maps.values()])
    finite = finite[np.isfinite(finite)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    norm = matplotlib.colors.Normalize(vmin=lo, vmax=max(hi, lo + 1e-6))
    cols = list(maps.items()) + ([("ensemble SD", sd)] if sd is not None else [])
    fig, axes = plt.subplots(2, len(cols), figsize=(3.2 * len(cols) + 1.2, 6.4), squeeze=False)
    sd_norm = None
    for col, (name, m) in enumerate(cols):
        m = np.asarray(m, dtype=float)
        nrm, cmap = norm, "jet_r"
        if sd is not None and col == len(cols) - 1:
            top = float(np.nanmax(m[:30])) if np.isfinite(m[:30]).any() else 1.0
            nrm = sd_norm = matplotlib.colors.Normalize(vmin=0.0, vmax=max(top, 1e-6))
            cmap = "viridis"
        bullseye_lv(axes[0, col], m[:17], nrm, cmap)
        bullseye_rv(axes[1, col], m[17:30], nrm, cmap)
        axes[0, col].set_title(f"{name}: LV", fontsize=9)
        axes[1, col].set_title(f"{name}: RV", fontsize=9)
    n_act = len(maps)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap="jet_r"), ax=axes[:, :n_act],
                 shrink=0.7, label=title)
    if sd_norm is not None:
        fig.colorbar(matplotlib.cm.ScalarMappable(norm=sd_norm, cmap="viridis"),
                     ax=axes[:, -1], shrink=0.7, label="SD (ms)")
    return _save(fig, path)
