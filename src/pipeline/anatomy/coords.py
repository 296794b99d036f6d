"""Ventricular coordinates and regions from Laplace solves (Bayer et al. 2012 potentials).

Three Laplace problems on the tissue (:mod:`pipeline.anatomy.laplace`):

- ``phi_lv``: 1 on the LV endocardium, 0 on the RV endocardium and the epicardium;
- ``phi_rv``: 1 on the RV endocardium, 0 on the LV endocardium and the epicardium;
- ``phi_ab``: 0 on the epicardium round the apex, 1 on the base;

(zero flux elsewhere). By superposition ``phi_epi = 1 - phi_lv - phi_rv`` solves the third
transmural problem (1 on the epicardium, 0 on both endocardia). From them:

- ``transmural = phi_epi`` (0 at both endocardia, so the septum is "endo" on both sides);
- ``ventricle = 2 phi_rv / (phi_lv + phi_rv) - 1`` (Bayer's d mapped to -1 LV ... +1 RV);
- ``apicobasal``: ``phi_ab`` mapped monotonically so that it equals, on average over its
  level sets, the height above the epicardial apex over the apex-to-base distance;
- ``rotational``: angle about the LV long axis (the line from the LV endocardial apex to
  the centre of the LV endocardium's basal tenth), 0 toward the RV centre, +pi/2 anterior
  (``long axis x septal direction``, right-handed), +-pi lateral;
- ``region``: the surface a random walk from the voxel is least likely to reach first
  (``phi`` are those hitting probabilities): the epicardium -> septum, the RV endocardium
  -> LV free wall, the LV endocardium -> RV free wall.

Right-handedness: ``anterior = long axis x septal`` holds for a heart in its real
(not mirrored) form; a mirrored mesh gets anterior and inferior swapped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from pipeline.anatomy.grid import BASE, EPI, LV_ENDO, RV_ENDO, face_points
from pipeline.anatomy.laplace import TissueGraph, solve
from pipeline.anatomy.voxelise import VoxelHeart

log = logging.getLogger(__name__)

LV_FREE, RV_FREE, SEPTUM = 1, 2, 3


@dataclass(frozen=True)
class Frame:
    """Anatomical axes of a heart (mm, unit vectors).

    Attributes
    ----------
    lv_apex
        LV endocardial apex: the LV endocardial face point farthest from the base.
    epi_apex
        Epicardial apex: the epicardial face point farthest from the base.
    long_axis
        Unit vector apex -> base along the LV long axis.
    septal
        Unit vector from the LV long axis toward the RV centre, perpendicular to it.
    anterior
        ``long_axis x septal``.
    centre
        Centroid of the tissue voxels.
    base_normal, base_offset
        The base plane (apex -> base normal, offset in mm).
    """

    lv_apex: np.ndarray
    epi_apex: np.ndarray
    long_axis: np.ndarray
    septal: np.ndarray
    anterior: np.ndarray
    centre: np.ndarray
    base_normal: np.ndarray
    base_offset: float

    def height(self, xyz: np.ndarray) -> np.ndarray:
        """Signed distance (mm) of points above the base plane (negative in the heart)."""
        return xyz @ self.base_normal - self.base_offset

    def angle(self, xyz: np.ndarray) -> np.ndarray:
        """Rotational angle (rad, in (-pi, pi]) of points about the LV long axis."""
        r = xyz - self.lv_apex
        theta = np.arctan2(r @ self.anterior, r @ self.septal)
        return np.where(theta <= -np.pi, np.pi, theta)

    def radius(self, xyz: np.ndarray) -> np.ndarray:
        """Distance (mm) of points from the LV long axis."""
        r = xyz - self.lv_apex
        return np.linalg.norm(r - np.outer(r @ self.long_axis, self.long_axis), axis=1)


@dataclass(frozen=True)
class Coordinates:
    """Laplace potentials and coordinates at the tissue voxels (n,), tissue order."""

    phi_lv: np.ndarray
    phi_rv: np.ndarray
    phi_ab: np.ndarray
    transmural: np.ndarray
    apicobasal: np.ndarray
    rotational: np.ndarray
    ventricle: np.ndarray
    region: np.ndarray
    frame: Frame

    @property
    def phi_epi(self) -> np.ndarray:
        return np.clip(1.0 - self.phi_lv - self.phi_rv, 0.0, 1.0)


def heart_frame(heart: VoxelHeart) -> Frame:
    """Anatomical axes from the labelled boundary faces."""
    pts = face_points(heart.grid, heart.face_voxel, heart.face_dir)
    n, d = np.asarray(heart.base_normal, dtype=np.float64), float(heart.base_offset)
    height = pts @ n - d
    lv = heart.face_label == LV_ENDO
    epi = heart.face_label == EPI
    lv_apex = pts[lv][np.argmin(height[lv])]
    epi_apex = pts[epi][np.argmin(height[epi])]
    depth = -height[lv].min()
    top = lv & (height > -0.1 * depth)
    axis = pts[top].mean(axis=0) - lv_apex
    axis /= np.linalg.norm(axis)
    rv = pts[heart.face_label == RV_ENDO].mean(axis=0) - lv_apex
    septal = rv - (rv @ axis) * axis
    septal /= np.linalg.norm(septal)
    anterior = np.cross(axis, septal)
    centre = heart.grid.flat_centres(np.flatnonzero(heart.mask)).mean(axis=0)
    log.info("frame: long axis %s (%.1f deg from the base normal), septal %s, anterior %s",
             np.round(axis, 3), np.degrees(np.arccos(np.clip(axis @ n, -1, 1))),
             np.round(septal, 3), np.round(anterior, 3))
    return Frame(lv_apex, epi_apex, axis, septal, anterior, centre, n, d)


def _monotone_map(phi: np.ndarray, target: np.ndarray, bins: int = 200) -> np.ndarray:
    """Monotone non-decreasing f with f(phi) ~ target on average; f in [0, 1]."""
    order = np.argsort(phi)
    edges = np.linspace(0, phi.size, bins + 1).astype(np.int64)
    centres = np.array([phi[order[a:b]].mean() for a, b in zip(edges[:-1], edges[1:]) if b > a])
    means = np.array([target[order[a:b]].mean() for a, b in zip(edges[:-1], edges[1:]) if b > a])
    means = np.maximum.accumulate(means)
    out = np.interp(phi, centres, means)
    return (out - out.min()) / max(out.max() - out.min(), 1e-12)


def compute_coordinates(heart: VoxelHeart, graph: TissueGraph,
                        apex_radius_mm: float = 3.0) -> Coordinates:
    """Solve the three Laplace problems and derive coordinates and regions."""
    frame = heart_frame(heart)
    lab = heart.face_label
    nan = np.full(lab.size, np.nan)
    walls = np.isin(lab, (EPI, LV_ENDO, RV_ENDO))
    g = np.tile(nan, (2, 1))
    g[0, walls] = (lab[walls] == LV_ENDO).astype(float)
    g[1, walls] = (lab[walls] == RV_ENDO).astype(float)
    phi_lv, phi_rv = solve(graph, heart.face_voxel, g, what="phi_lv/phi_rv")

    pts = face_points(heart.grid, heart.face_voxel, heart.face_dir)
    radius = max(apex_radius_mm, 1.5 * heart.grid.spacing)
    apex = (lab == EPI) & (np.linalg.norm(pts - frame.epi_apex, axis=1) <= radius)
    g = nan.copy()
    g[lab == BASE] = 1.0
    g[apex] = 0.0
    phi_ab = solve(graph, heart.face_voxel, g, what="phi_ab")

    xyz = heart.grid.flat_centres(np.flatnonzero(heart.mask))
    h_apex = frame.height(frame.epi_apex[None])[0]
    rel_height = np.clip(1.0 - frame.height(xyz) / h_apex, 0.0, 1.0)
    apicobasal = _monotone_map(phi_ab, rel_height)

    phi_lv = np.clip(phi_lv, 0.0, 1.0)
    phi_rv = np.clip(phi_rv, 0.0, 1.0)
    phi_epi = np.clip(1.0 - phi_lv - phi_rv, 0.0, 1.0)
    ventricle = 2.0 * phi_rv / np.maximum(phi_lv + phi_rv, 1e-12) - 1.0
    least = np.argmin(np.stack([phi_rv, phi_lv, phi_epi]), axis=0)
    region = np.array([LV_FREE, RV_FREE, SEPTUM], dtype=np.uint8)[least]
    counts = np.bincount(region, minlength=4)[1:] * heart.grid.spacing ** 3 / 1000
    log.info("regions: LV free wall %.1f, RV free wall %.1f, septum %.1f cm^3", *counts)
    return Coordinates(phi_lv=phi_lv, phi_rv=phi_rv, phi_ab=phi_ab, transmural=phi_epi,
                       apicobasal=apicobasal, rotational=frame.angle(xyz), ventricle=ventricle,
                       region=region, frame=frame)
