"""The voxel grid, surface labels and the boundary faces between tissue and the outside.

A heart is a boolean tissue mask on a regular grid with isotropic spacing ``h`` (mm);
voxel ``(i, j, k)`` has its centre at ``origin + (i, j, k) * h``. Every face between a
tissue voxel and a non-tissue voxel carries one surface label: base, epicardium, LV or RV
endocardium. Those faces carry the Dirichlet conditions of the Laplace solves
(:mod:`pipeline.anatomy.laplace`), half a voxel from the tissue voxel's centre.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

log = logging.getLogger(__name__)

#: Surface labels (also the codes of user-given label arrays on real meshes).
BASE, EPI, LV_ENDO, RV_ENDO = 1, 2, 3, 4
SURFACE_NAMES: dict[int, str] = {BASE: "base", EPI: "epicardium", LV_ENDO: "LV endocardium",
                                 RV_ENDO: "RV endocardium"}

#: The six face directions: -x, +x, -y, +y, -z, +z (index = face direction code).
DIRECTIONS = np.array([[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]],
                      dtype=np.int64)


@dataclass(frozen=True)
class Grid:
    """A regular voxel grid with isotropic spacing.

    Attributes
    ----------
    origin
        Centre of voxel (0, 0, 0), mm, shape (3,).
    spacing
        Voxel edge length h, mm.
    shape
        (nx, ny, nz).
    """

    origin: np.ndarray
    spacing: float
    shape: tuple[int, int, int]

    def centres(self, ijk: np.ndarray) -> np.ndarray:
        """Voxel centres (N, 3) mm of integer indices ``ijk`` (N, 3)."""
        return self.origin + np.asarray(ijk, dtype=np.float64) * self.spacing

    def flat_centres(self, flat: np.ndarray) -> np.ndarray:
        """Voxel centres (N, 3) mm of flat (C-order) indices."""
        return self.centres(np.stack(np.unravel_index(flat, self.shape), axis=-1))

    def nearest_ijk(self, xyz: np.ndarray) -> np.ndarray:
        """Index (N, 3) of the voxel whose centre is nearest to each point (N, 3) mm."""
        ijk = np.rint((np.asarray(xyz, dtype=np.float64) - self.origin) / self.spacing)
        return np.clip(ijk.astype(np.int64), 0, np.array(self.shape) - 1)

    @staticmethod
    def covering(lo: np.ndarray, hi: np.ndarray, spacing: float, pad: int = 2) -> Grid:
        """The grid with spacing ``spacing`` whose voxels cover the box [lo, hi] plus ``pad``."""
        lo = np.asarray(lo, dtype=np.float64)
        hi = np.asarray(hi, dtype=np.float64)
        n = np.ceil((hi - lo) / spacing).astype(np.int64) + 1 + 2 * pad
        centre = 0.5 * (lo + hi)
        origin = centre - 0.5 * (n - 1) * spacing
        return Grid(origin=origin, spacing=float(spacing), shape=(int(n[0]), int(n[1]), int(n[2])))


def boundary_faces(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Faces between tissue and non-tissue voxels.

    Parameters
    ----------
    mask
        Tissue mask (nx, ny, nz); tissue must not touch the grid's edge.

    Returns
    -------
    voxel, direction
        Flat index of the tissue voxel (m,) int64 and the face direction code (m,) int8
        (see :data:`DIRECTIONS`), sorted by voxel.
    """
    if mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any() \
            or mask[:, :, 0].any() or mask[:, :, -1].any():
        raise ValueError("tissue touches the edge of the grid; pad the grid")
    voxels, dirs = [], []
    for code, step in enumerate(DIRECTIONS):
        neighbour = np.roll(mask, shift=tuple(-step), axis=(0, 1, 2))
        flat = np.flatnonzero(mask & ~neighbour)
        voxels.append(flat)
        dirs.append(np.full(flat.size, code, dtype=np.int8))
    voxel = np.concatenate(voxels)
    direction = np.concatenate(dirs)
    order = np.argsort(voxel, kind="stable")
    return voxel[order], direction[order]


def face_points(grid: Grid, voxel: np.ndarray, direction: np.ndarray,
                where: float = 0.5) -> np.ndarray:
    """Points (m, 3) mm at ``where`` voxel lengths from a tissue voxel's centre toward a face.

    ``where=0.5`` gives the face's centre, ``where=1`` the outside neighbour's centre.
    """
    return grid.flat_centres(voxel) + where * grid.spacing * DIRECTIONS[direction]


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 6-connected component of ``mask``; log what was dropped."""
    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = int(np.argmax(sizes))
    dropped = int(sizes.sum() - sizes[keep])
    log.info("dropped %d voxels in %d small disconnected pieces (kept %d)",
             dropped, n - 1, int(sizes[keep]))
    return labels == keep


def sample_tissue(mask: np.ndarray, origin: np.ndarray, spacing: float, values: np.ndarray,
                  xyz: np.ndarray) -> np.ndarray:
    """A tissue field at arbitrary points: trilinear over the tissue corners.

    Each point takes the trilinear weights of the 8 voxel centres around it, keeps those of
    tissue voxels and renormalises them; a point with no tissue corner (outside the heart
    by more than a voxel) takes its nearest tissue voxel. NaN values (a voxel never
    activated) count as missing corners in the same way.

    Parameters
    ----------
    mask
        Tissue mask (nx, ny, nz).
    origin, spacing
        Centre of voxel (0, 0, 0) (3,) mm and the voxel size (mm).
    values
        One value per tissue voxel (n_tissue,) in C order, or (..., n_tissue).
    xyz
        Points (N, 3) mm.

    Returns
    -------
    numpy.ndarray
        (..., N) values at the points.
    """
    from scipy.spatial import cKDTree

    values = np.asarray(values, dtype=np.float64)
    xyz = np.asarray(xyz, dtype=np.float64)
    shape = np.array(mask.shape)
    index = np.full(mask.shape, -1, dtype=np.int64)
    index[mask] = np.arange(int(mask.sum()))
    u = (xyz - np.asarray(origin, dtype=np.float64)) / spacing          # (N, 3)
    base = np.floor(u).astype(np.int64)
    frac = u - base
    lead = values.shape[:-1]
    total = np.zeros(lead + (len(xyz),))
    weight = np.zeros(lead + (len(xyz),))
    for corner in np.ndindex(2, 2, 2):
        c = base + np.array(corner)
        w = np.prod(np.where(np.array(corner) == 1, frac, 1.0 - frac), axis=1)
        inside = np.all((c >= 0) & (c < shape), axis=1)
        tissue = np.full(len(xyz), -1, dtype=np.int64)
        tissue[inside] = index[tuple(c[inside].T)]
        v = np.where(tissue >= 0, values[..., np.maximum(tissue, 0)], np.nan)
        ok = np.isfinite(v)
        total += np.where(ok, w * np.nan_to_num(v), 0.0)
        weight += np.where(ok, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / weight
    missing = ~(weight > 1e-12)
    if np.any(missing):
        centres = np.asarray(origin) + np.argwhere(mask) * spacing
        _, nearest = cKDTree(centres).query(xyz)
        out = np.where(missing, values[..., nearest], out)
    return out
