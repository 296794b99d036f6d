"""Wall thickness and myocardial mass per region of a voxelised biventricular heart.

What a modeller checks before reading a heart's ECG: a normal adult LV wall is 6-10 mm
thick and an RV free wall at most 5 mm (echocardiography, Lang et al., J Am Soc
Echocardiogr 28:1, 2015; Rudski et al., J Am Soc Echocardiogr 23:685, 2010); thicker RV
walls and a heavier RV are what right ventricular hypertrophy is, and its ECG is a dominant
R in V1 and a right-deviated axis. docs/fidelity-log.md, "Session 18", reads the simulated
normal beats with these figures beside them.

The local thickness is the diameter of the largest ball inscribed in the wall, read on the
wall's medial surface: voxels whose distance to the nearest non-tissue voxel is a local
maximum (3 x 3 x 3). With distances ``d`` between voxel centres, a wall ``n`` voxels thick has
its medial voxels ``(n + 1) / 2`` voxels from the background when ``n`` is odd and ``n / 2``
when it is even; ``2 d - dx / 2`` is then the thickness within half a voxel either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Myocardial density (g/mL), as cardiac MR mass studies use (e.g. Lorenz et al.,
#: J Cardiovasc Magn Reson 1:7, 1999).
MYOCARDIUM_G_PER_ML = 1.05

#: Region labels of ``anatomy.region`` (pipeline.anatomy.coords) and their names.
REGIONS = {1: "lv_free_wall", 2: "rv_free_wall", 3: "septum"}


@dataclass(frozen=True)
class Wall:
    """One region's myocardium.

    Attributes
    ----------
    name
        ``lv_free_wall``, ``rv_free_wall`` or ``septum``.
    volume_ml, mass_g
        Tissue volume (mL) and mass at :data:`MYOCARDIUM_G_PER_ML` (g).
    thickness_mm
        Median local wall thickness on the region's medial surface (mm); NaN where the
        region has no voxels.
    thickness_iqr_mm
        Its 25th and 75th percentiles (mm).
    """

    name: str
    volume_ml: float
    mass_g: float
    thickness_mm: float
    thickness_iqr_mm: tuple[float, float]


def wall_thickness(mask: np.ndarray, region: np.ndarray, spacing) -> dict[str, Wall]:
    """Thickness and mass of the LV free wall, RV free wall and septum.

    Parameters
    ----------
    mask
        Tissue mask, bool ``(nx, ny, nz)``.
    region
        Region label per voxel, ``(nx, ny, nz)``: 1 LV free wall, 2 RV free wall, 3 septum
        (0 outside the tissue).
    spacing
        Voxel edges (mm), a number or ``(3,)``.

    Returns
    -------
    dict
        :class:`Wall` per region name (:data:`REGIONS`).
    """
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    region = np.asarray(region)
    if region.shape != mask.shape:
        raise ValueError(f"region has shape {region.shape}, the mask {mask.shape}")
    h = np.broadcast_to(np.asarray(spacing, np.float64), (3,))
    # A one-voxel margin, so tissue touching the box's edge still has a background there.
    dist = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=h)[1:-1, 1:-1, 1:-1]
    medial = mask & (dist >= ndimage.maximum_filter(dist, size=3))
    voxel_ml = float(np.prod(h)) / 1000.0
    out = {}
    for label, name in REGIONS.items():
        inside = mask & (region == label)
        t = 2.0 * dist[medial & inside] - 0.5 * float(h.max())
        volume = float(inside.sum()) * voxel_ml
        quart = np.percentile(t, [25, 50, 75]) if t.size else np.full(3, np.nan)
        out[name] = Wall(name, volume, volume * MYOCARDIUM_G_PER_ML, float(quart[1]),
                         (float(quart[0]), float(quart[2])))
    return out


def describe(walls: dict[str, Wall]) -> str:
    """One line: each region's thickness and mass, and the RV's share of the LV's mass."""
    parts = [f"{w.name} {w.thickness_mm:.1f} mm ({w.thickness_iqr_mm[0]:.1f}-"
             f"{w.thickness_iqr_mm[1]:.1f}), {w.mass_g:.0f} g" for w in walls.values()]
    lv = walls["lv_free_wall"].mass_g + walls["septum"].mass_g
    ratio = walls["rv_free_wall"].mass_g / lv if lv > 0 else float("nan")
    return "walls: " + "; ".join(parts) + f"; RV / (LV + septum) mass {ratio:.2f}"
