"""Off-screen PNG of a heart: tissue by region, fibre directions, the 75 points, electrodes.

Two views side by side, both from the front of the chest with the head up (patient's
right on the image's left): left, the heart with a translucent surface coloured by region
(LV free wall, RV free wall, septum), epicardial fibre segments and the points coloured by
group; right, the heart with its ten labelled electrodes. Needs an
off-screen OpenGL (``VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow`` with libEGL, or OSMesa).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from pipeline.anatomy.io import Anatomy, to_pyvista
from pipeline.io import atomic_path

log = logging.getLogger(__name__)

GROUP_COLOURS = {"AHA": "red", "RV": "blue", "EPI_": "orange", "MID_": "green",
                 "SEPTM_": "magenta"}
REGION_COLOURS = ["#d9d9d9", "#e8a87c", "#85c1e9", "#c39bd3"]


def _group(name: str) -> str:
    for prefix in ("EPI_", "MID_", "SEPTM_", "AHA", "RV"):
        if name.startswith(prefix):
            return prefix
    return "AHA"


def render_png(path: str | Path, anatomy: Anatomy, n_fibres: int = 2500, seed: int = 0) -> None:
    """Render ``anatomy`` to a PNG (1600 x 800) at ``path``, atomically."""
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import pyvista as pv

    pv.OFF_SCREEN = True
    grid = to_pyvista(anatomy)
    surface = grid.extract_surface(algorithm="dataset_surface")
    # fibre segments on the surface voxels, a deterministic subsample
    centres = np.asarray(grid.cell_centers().points)
    fibre = np.asarray(grid.cell_data["fibre"])
    outer = np.flatnonzero(np.asarray(grid.cell_data["transmural"]) > 0.8)
    rng = np.random.default_rng(seed)
    pick = rng.choice(outer, size=min(n_fibres, outer.size), replace=False)
    length = 2.5 * float(anatomy.spacing[0]) + 2.0
    a = centres[pick] - 0.5 * length * fibre[pick]
    b = centres[pick] + 0.5 * length * fibre[pick]
    lines = pv.line_segments_from_points(np.stack([a, b], axis=1).reshape(-1, 3))

    plotter = pv.Plotter(off_screen=True, shape=(1, 2), window_size=(1600, 800))
    plotter.set_background("white")
    plotter.subplot(0, 0)
    plotter.add_text(f"{anatomy.name}: regions, epicardial fibres, 75 points", font_size=10,
                     color="black")
    plotter.add_mesh(surface, scalars="region", cmap=REGION_COLOURS, clim=[0, 3], opacity=0.25,
                     show_scalar_bar=False)
    plotter.add_mesh(lines, color="saddlebrown", line_width=1.5)
    for prefix, colour in GROUP_COLOURS.items():
        sel = [i for i, n in enumerate(anatomy.point_names) if _group(n) == prefix]
        plotter.add_mesh(pv.PolyData(anatomy.point_xyz[sel]), color=colour, point_size=11,
                         render_points_as_spheres=True, label=prefix.rstrip("_"))
    plotter.add_legend(bcolor="white", size=(0.18, 0.2))
    _camera(plotter, anatomy, distance=2.6)
    plotter.subplot(0, 1)
    plotter.add_text("electrodes (100 mm from the centre)", font_size=10, color="black")
    plotter.add_mesh(surface, scalars="region", cmap=REGION_COLOURS, clim=[0, 3],
                     show_scalar_bar=False)
    plotter.add_point_labels(anatomy.electrode_xyz, list(anatomy.electrode_names),
                             point_size=14, font_size=14, point_color="black",
                             render_points_as_spheres=True, shape_opacity=0.6,
                             always_visible=True)
    _camera(plotter, anatomy, distance=4.0)
    with atomic_path(path) as tmp:
        plotter.screenshot(str(tmp.with_name(tmp.name + ".png")))
        tmp.with_name(tmp.name + ".png").replace(tmp)
    plotter.close()
    log.info("wrote %s", path)


def _camera(plotter, anatomy: Anatomy, distance: float) -> None:
    """Look at the heart from the front of the chest, head up (the body frame in which the
    electrodes were placed, recovered from their directions by a Kabsch fit)."""
    from pipeline.anatomy.electrodes import body_directions

    centre = anatomy.centres().mean(axis=0)
    heart = anatomy.electrode_xyz - centre
    heart /= np.linalg.norm(heart, axis=1, keepdims=True)
    u, _, vt = np.linalg.svd(body_directions().T @ heart)
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rt = u @ fix @ vt  # body-frame rows -> heart frame
    anterior, superior = np.array([0.0, 1.0, 0.0]) @ rt, np.array([0.0, 0.0, 1.0]) @ rt
    size = float(np.ptp(anatomy.centres(), axis=0).max())
    plotter.camera.focal_point = tuple(centre)
    plotter.camera.position = tuple(centre + distance * size * anterior)
    plotter.camera.up = tuple(superior)
    plotter.reset_camera()  # keep the direction, fit every actor in the view
