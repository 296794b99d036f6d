"""Figures for one simulation: the 12-lead ECG, the activation map in 3-D, Vm traces.

- :func:`plot_ecg12`: the standard clinical layout, three rows by four columns
  (I aVR V1 V4 / II aVL V2 V5 / III aVF V3 V6) on ECG paper (1 mm boxes, 5 mm bold),
  10 mm/mV (5 mm/mV when complexes exceed 3 mV, as ECG machines halve the gain) and
  50 mm/s; the record is 500 ms, so each column shows all of it (one beat); a 1 mV
  calibration pulse starts every row.
- :func:`plot_activation_3d`: the tissue voxels coloured by activation time (pyvista,
  off-screen), with the 75 recording points; without a full activation map only the
  points are coloured.
- :func:`plot_vm_traces`: Vm at a few recording points with their activation times.

matplotlib runs with the Agg backend; pyvista needs an off-screen OpenGL (EGL or OSMesa,
``VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.signals.leads import LEAD_NAMES

log = logging.getLogger(__name__)

#: Clinical layout of the 12 leads: rows of columns.
CLINICAL_LAYOUT: tuple[tuple[str, ...], ...] = (("I", "aVR", "V1", "V4"),
                                                 ("II", "aVL", "V2", "V5"),
                                                 ("III", "aVF", "V3", "V6"))
PAPER_SPEED_MM_PER_S = 50.0
GAIN_MM_PER_MV = 10.0


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_ecg12(ecg: np.ndarray, dt_ms: float, path: str | Path, title: str = "",
               lead_names: Sequence[str] = LEAD_NAMES) -> Path:
    """Draw a 12-lead ECG on ECG paper in the clinical 3 x 4 layout.

    Parameters
    ----------
    ecg
        Leads ``(12, T)`` in mV, in ``lead_names`` order.
    dt_ms
        Sampling interval (ms).
    path
        Output image (PNG, PDF ...); its folder is created.
    title
        Text above the tracing (simulation id, pattern ...).
    lead_names
        Names of the rows of ``ecg``.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    plt = _pyplot()
    ecg = np.asarray(ecg, dtype=np.float64)
    if ecg.ndim != 2 or ecg.shape[0] != len(lead_names):
        raise ValueError(f"ecg must have shape ({len(lead_names)}, T), got {ecg.shape}")
    index = {name: i for i, name in enumerate(lead_names)}
    n_t = ecg.shape[1]
    x_t = np.arange(n_t) * dt_ms * 1e-3 * PAPER_SPEED_MM_PER_S   # paper mm
    col_mm = n_t * dt_ms * 1e-3 * PAPER_SPEED_MM_PER_S
    cal_mm = 5.0
    # Standard gain, halved (as an ECG machine does) when the complexes would overlap.
    rows = [np.stack([ecg[index[name]] for name in row]) for row in CLINICAL_LAYOUT]
    span_mv = max(float(np.nanmax(r) - np.nanmin(r)) for r in rows)
    gain = GAIN_MM_PER_MV if span_mv <= 3.0 else GAIN_MM_PER_MV / 2
    row_mm = 5.0 * np.ceil((gain * span_mv + 8.0) / 5.0)
    width_mm = cal_mm + 4 * col_mm
    height_mm = len(rows) * row_mm
    fig_w = 10.0
    fig = plt.figure(figsize=(fig_w, fig_w * height_mm / width_mm + 0.4))
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98 - 0.4 / fig.get_figheight()))
    ax.set_xlim(0, width_mm)
    ax.set_ylim(0, height_mm)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for x in np.arange(0, width_mm + 1e-9, 1.0):
        ax.axvline(x, color="#f4c7c3", lw=1.0 if round(x) % 5 == 0 else 0.3, zorder=0)
    for y in np.arange(0, height_mm + 1e-9, 1.0):
        ax.axhline(y, color="#f4c7c3", lw=1.0 if round(y) % 5 == 0 else 0.3, zorder=0)
    for r, (row, traces) in enumerate(zip(CLINICAL_LAYOUT, rows)):
        top_mm = height_mm - r * row_mm
        # Baseline (0 mV) placed so that the row's complexes fit between its edges.
        y0 = top_mm - 4.0 - gain * float(np.nanmax(traces))
        ax.plot([0.5, 1.5, 1.5, 3.5, 3.5, 4.5], y0 + gain * np.array([0, 0, 1, 1, 0, 0]),
                color="k", lw=0.9)                                  # 1 mV calibration
        for c, name in enumerate(row):
            x0 = cal_mm + c * col_mm
            ax.plot(x0 + x_t, y0 + gain * ecg[index[name]], color="k", lw=0.9)
            ax.text(x0 + 0.8, top_mm - 0.6, name, fontsize=10, va="top", weight="bold")
            if c:
                ax.plot([x0, x0], [y0 - 2, y0 + 2], color="k", lw=0.8)
    ax.text(width_mm - 0.5, 0.5, f"{PAPER_SPEED_MM_PER_S:g} mm/s   {gain:g} mm/mV   "
            f"each column {n_t * dt_ms:g} ms", fontsize=8, ha="right", va="bottom")
    if title:
        fig.suptitle(title, fontsize=10, y=0.995)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    log.info("wrote %s", out)
    return out


def plot_vm_traces(vm: np.ndarray, dt_ms: float, point_names: Sequence[str],
                   indices: Sequence[int], path: str | Path,
                   activation_ms: np.ndarray | None = None, title: str = "") -> Path:
    """Vm (mV) against time at a few recording points, activation times marked.

    Parameters
    ----------
    vm
        ``(n_points, T)`` mV.
    dt_ms
        Sampling interval (ms).
    point_names
        Names of the rows of ``vm``.
    indices
        Rows to draw (0-based).
    path
        Output image.
    activation_ms
        ``(n_points,)`` ms, drawn as dots at 0 mV.
    title
        Figure title.
    """
    plt = _pyplot()
    vm = np.asarray(vm, dtype=np.float64)
    t_ms = np.arange(vm.shape[1]) * dt_ms
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for i in indices:
        (line,) = ax.plot(t_ms, vm[i], lw=1.2, label=f"{point_names[i]} (#{i + 1})")
        if activation_ms is not None and np.isfinite(activation_ms[i]):
            ax.plot([activation_ms[i]], [0.0], "o", color=line.get_color(), ms=4)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("Vm (mV)")
    ax.set_title(title or "Vm at recording points")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    log.info("wrote %s", out)
    return out


def plot_activation_3d(mask: np.ndarray, origin: np.ndarray, spacing: np.ndarray,
                       path: str | Path, activation_map_ms: np.ndarray | None = None,
                       point_xyz: np.ndarray | None = None,
                       point_activation_ms: np.ndarray | None = None,
                       title: str = "") -> Path:
    """Render the activation map on the 3-D anatomy off-screen with pyvista.

    Parameters
    ----------
    mask
        bool ``(nx, ny, nz)`` tissue.
    origin, spacing
        ``(3,)`` mm.
    path
        Output PNG.
    activation_map_ms
        ``(n_tissue,)`` ms over the tissue voxels in C order (NaN = never activated), or
        None to draw the tissue grey.
    point_xyz
        ``(n_points, 3)`` mm, drawn as spheres.
    point_activation_ms
        ``(n_points,)`` ms, the spheres' colours.
    title
        Text in the picture.
    """
    import pyvista as pv

    pv.OFF_SCREEN = True
    mask = np.asarray(mask, dtype=bool)
    grid = pv.ImageData(dimensions=np.array(mask.shape) + 1,
                        spacing=tuple(float(s) for s in spacing),
                        origin=tuple(float(o) - 0.5 * float(s) for o, s in zip(origin, spacing)))
    # Cell data in VTK (Fortran) order; the tissue list is in C order.
    values = np.full(mask.shape, np.nan)
    if activation_map_ms is not None:
        values[mask] = np.asarray(activation_map_ms, dtype=np.float64)
    grid.cell_data["tissue"] = mask.ravel(order="F").astype(np.uint8)
    grid.cell_data["activation_ms"] = values.ravel(order="F")
    tissue = grid.threshold(0.5, scalars="tissue")
    surface = tissue.extract_surface(algorithm="dataset_surface")
    plotter = pv.Plotter(off_screen=True, window_size=(900, 800))
    colour_range = None
    if point_activation_ms is not None:
        finite = np.asarray(point_activation_ms, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        colour_range = (float(finite.min()), float(finite.max())) if finite.size else None
    if activation_map_ms is not None:
        finite = surface.cell_data["activation_ms"]
        finite = finite[np.isfinite(finite)]
        if finite.size:
            colour_range = (float(finite.min()), float(finite.max()))
        plotter.add_mesh(surface, scalars="activation_ms", cmap="jet_r", clim=colour_range,
                         nan_color="grey", scalar_bar_args={"title": "activation (ms)"})
    else:
        plotter.add_mesh(surface, color="lightgrey", opacity=0.35)
    if point_xyz is not None:
        cloud = pv.PolyData(np.asarray(point_xyz, dtype=np.float64))
        radius = 1.5 * float(np.max(spacing))
        if point_activation_ms is not None:
            cloud["activation_ms"] = np.asarray(point_activation_ms, dtype=np.float64)
            glyphs = cloud.glyph(geom=pv.Sphere(radius=radius), scale=False, orient=False)
            plotter.add_mesh(glyphs, scalars="activation_ms", cmap="jet_r", clim=colour_range,
                             show_scalar_bar=activation_map_ms is None,
                             scalar_bar_args={"title": "activation (ms)"})
        else:
            glyphs = cloud.glyph(geom=pv.Sphere(radius=radius), scale=False, orient=False)
            plotter.add_mesh(glyphs, color="black")
    if title:
        plotter.add_text(title, font_size=10)
    plotter.view_isometric()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    plotter.screenshot(str(out))
    plotter.close()
    log.info("wrote %s", out)
    return out
