"""Build one heart: source geometry -> voxels -> coordinates -> fibres -> points -> electrodes.

:func:`build_parametric` and :func:`build_mesh` are the two entry points; both return an
:class:`~pipeline.anatomy.io.Anatomy` and a dict of step timings (s).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.anatomy.coords import Coordinates, compute_coordinates
from pipeline.anatomy.electrodes import ELECTRODE_NAMES, place_electrodes
from pipeline.anatomy.fibres import ldrb
from pipeline.anatomy.io import Anatomy
from pipeline.anatomy.laplace import tissue_graph
from pipeline.anatomy.mesh import read_heart_mesh
from pipeline.anatomy.parametric import shape_for, voxelise_shape
from pipeline.anatomy.points import place_points
from pipeline.anatomy.voxelise import VoxelHeart, voxelise_surface
from pipeline.naming import parametric_heart

log = logging.getLogger(__name__)

CELLTYPE_ENDO, CELLTYPE_M, CELLTYPE_EPI = 1, 2, 3


def celltypes(transmural: np.ndarray, endo_fraction: float, mid_fraction: float) -> np.ndarray:
    """Cell type codes (uint8) from the transmural coordinate: endo, then M, then epi."""
    out = np.full(transmural.shape, CELLTYPE_EPI, dtype=np.uint8)
    out[transmural < endo_fraction + mid_fraction] = CELLTYPE_M
    out[transmural < endo_fraction] = CELLTYPE_ENDO
    return out


def _scatter(mask: np.ndarray, values: np.ndarray, dtype: Any) -> np.ndarray:
    """Tissue values (n, ...) -> grid array (..., nx, ny, nz), zero outside."""
    if values.ndim == 1:
        out = np.zeros(mask.shape, dtype=dtype)
        out[mask] = values
        return out
    out = np.zeros((values.shape[1], *mask.shape), dtype=dtype)
    out[:, mask] = values.T
    return out


def assemble(heart: VoxelHeart, settings: Mapping[str, Any]) -> tuple[Anatomy, Coordinates,
                                                                       dict[str, float]]:
    """Coordinates, fibres, cell types, points and electrodes of a voxelised heart.

    Parameters
    ----------
    heart
        The voxelised heart with labelled boundary faces.
    settings
        The resolved ``anatomy`` config section.
    """
    times: dict[str, float] = {}
    t = time.perf_counter()
    graph = tissue_graph(heart.mask)
    coords = compute_coordinates(heart, graph)
    times["coordinates"] = time.perf_counter() - t
    t = time.perf_counter()
    fib = settings["fibres"]
    fibre, sheet = ldrb(heart, graph, coords, fib["alpha_endo_deg"], fib["alpha_epi_deg"],
                        fib["beta_endo_deg"], fib["beta_epi_deg"])
    times["fibres"] = time.perf_counter() - t
    t = time.perf_counter()
    points = place_points(heart, graph, coords)
    electrodes = place_electrodes(coords.frame, settings["electrode_radius_mm"],
                                  settings.get("limb_electrode_radius_mm"))
    times["points"] = time.perf_counter() - t
    ct = settings["celltype"]
    mask = heart.mask
    anatomy = Anatomy(
        origin=heart.grid.origin.astype(np.float64),
        spacing=np.full(3, heart.grid.spacing, dtype=np.float64),
        mask=mask,
        region=_scatter(mask, coords.region, np.uint8),
        fibre=_scatter(mask, fibre, np.float32),
        sheet=_scatter(mask, sheet, np.float32),
        transmural=_scatter(mask, coords.transmural, np.float32),
        apicobasal=_scatter(mask, coords.apicobasal, np.float32),
        rotational=_scatter(mask, coords.rotational, np.float32),
        ventricle=_scatter(mask, coords.ventricle, np.float32),
        celltype=_scatter(mask, celltypes(coords.transmural, ct["endo_fraction"],
                                          ct["mid_fraction"]), np.uint8),
        point_names=points.names,
        point_xyz=points.xyz,
        point_ijk=points.ijk,
        electrode_names=list(ELECTRODE_NAMES),
        electrode_xyz=electrodes,
        name=heart.name,
    )
    return anatomy, coords, times


def build_parametric(index: int, seed: int, settings: Mapping[str, Any],
                     name: str | None = None) -> tuple[Anatomy, dict[str, float]]:
    """Build parametric heart ``index`` (shape drawn from ``(seed, index)``)."""
    t = time.perf_counter()
    shape = shape_for(seed, index)
    heart = voxelise_shape(shape, settings["resolution_mm"], name or parametric_heart(index))
    t_vox = time.perf_counter() - t
    anatomy, _, times = assemble(heart, settings)
    return anatomy, {"voxelise": t_vox, **times}


def build_mesh(path: str | Path, settings: Mapping[str, Any], name: str,
               scale_to_mm: float = 1.0, labels: str | None = None
               ) -> tuple[Anatomy, dict[str, float]]:
    """Build a heart from a volume mesh (see :func:`pipeline.anatomy.mesh.read_heart_mesh`)."""
    t = time.perf_counter()
    surface = read_heart_mesh(path, scale_to_mm=scale_to_mm, labels=labels)
    heart = voxelise_surface(surface, settings["resolution_mm"], name)
    t_vox = time.perf_counter() - t
    anatomy, _, times = assemble(heart, settings)
    return anatomy, {"voxelise": t_vox, **times}
