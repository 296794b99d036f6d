"""The pseudo-ECG in a bounded, insulated, homogeneous torso (boundary element method).

DESIGN.md section 5's pseudo-ECG puts the heart in an infinite homogeneous medium. A torso
is a bounded conductor with an insulating surface: the current that would have flowed
beyond it returns inside, and the potentials on its surface are larger than the infinite
medium's (three times, for a dipole at the centre of a sphere). This module gives the
same per-voxel electrode weights as :func:`pipeline.signals.ecg.pseudo_ecg_weights`, for
electrodes on the surface of a homogeneous torso of conductivity ``sigma_b``.

Method (Barr et al., IEEE Trans Biomed Eng 13:88, 1966; the solid angles of van Oosterom &
Strackee, IEEE Trans Biomed Eng 30:125, 1983). For a point ``x`` on the surface S, Green's
second identity with zero normal current gives

.. math::

    \\phi(\\mathbf{x}) = 2\\,\\phi_\\infty(\\mathbf{x})
        + \\frac{1}{2\\pi}\\int_S \\phi(\\mathbf{y})\\, d\\Omega_{\\mathbf{x}}(\\mathbf{y}),

where :math:`\\phi_\\infty` is the infinite-medium potential of the sources and
:math:`d\\Omega_x` the solid angle an element of S subtends at ``x`` (positive seen from
inside). With the potential constant on each triangle and collocation at the centroids,
``(I - Omega / 2 pi) phi = 2 phi_inf``; the constant null space (a potential is defined up
to a constant) is removed by adding ``1 a^T / A`` (areas ``a``, total ``A``; Lynn & Timlake,
Math Biosci 1:1, 1968). An electrode at a surface point ``x_e`` then reads
``phi(x_e) = 2 phi_inf(x_e) + Omega(x_e) phi / 2 pi``, and since everything is linear in the
sources, each electrode has one weight per tissue voxel:

.. math::

    w_{e,v} = 2\\,w^\\infty_{e,v} + \\sum_j c_{e,j}\\, w^\\infty_{j,v},\\qquad
    c_e = \\frac{1}{\\pi} A^{-T}\\,\\Omega(\\mathbf{x}_e)^T,

with :math:`w^\\infty` the infinite-medium weights at the electrode and at the centroids.
Leads are differences of electrodes, so the constant chosen by the deflation cancels.

The torso (:func:`adult_torso`) is an elliptic cylinder with rounded ends in the body frame
of ``pipeline.anatomy.electrodes`` (x right, y anterior, z superior; origin at the
sternum, 4th intercostal space; the simulate stage passes that module's sites, since this
floor does not import the anatomy): 330 mm wide, 230 mm deep, its front at the sternum, from
the shoulders (z = +200 mm) to the iliac crests (z = -430 mm). The electrodes are the
body-frame sites moved to the nearest centroid of the surface. The heart is posed in it
as its electrodes are.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pipeline.params import HeartPose

#: The torso's cross-section: semi-axes (mm) across (x) and front to back (y), and the y
#: of its centre (its front, y = 0, is the sternum), body frame.
TORSO_HALF_WIDTH_MM = 165.0
TORSO_HALF_DEPTH_MM = 115.0
TORSO_CENTRE_Y_MM = -115.0
#: Where the cylinder ends (z, mm) and how far its rounded ends reach beyond.
TORSO_TOP_MM = 200.0
TORSO_BOTTOM_MM = -430.0
TORSO_CAP_MM = 60.0
#: Least distance (mm) of a tissue voxel centre from a surface centroid.
MIN_CLEARANCE_MM = 5.0


@dataclass(frozen=True)
class TorsoMesh:
    """A closed triangulated surface, triangles ordered so that normals point outward.

    Attributes
    ----------
    vertices
        float64 ``(n_vertices, 3)`` mm.
    triangles
        int64 ``(n_triangles, 3)`` vertex indices.
    """

    vertices: np.ndarray
    triangles: np.ndarray

    @property
    def corners(self) -> np.ndarray:
        """Triangle corners, ``(n_triangles, 3, 3)`` mm."""
        return self.vertices[self.triangles]

    @property
    def centroids(self) -> np.ndarray:
        """``(n_triangles, 3)`` mm."""
        return self.corners.mean(axis=1)

    @property
    def areas(self) -> np.ndarray:
        """``(n_triangles,)`` mm^2."""
        c = self.corners
        return 0.5 * np.linalg.norm(np.cross(c[:, 1] - c[:, 0], c[:, 2] - c[:, 0]), axis=1)

    @property
    def volume_mm3(self) -> float:
        """Enclosed volume (positive for outward normals)."""
        c = self.corners
        return float(np.einsum("ij,ij->i", c[:, 0], np.cross(c[:, 1], c[:, 2])).sum() / 6.0)



def ring_mesh(z: np.ndarray, scale: np.ndarray, half_width: float, half_depth: float,
              centre_y: float = 0.0, n_around: int = 64) -> TorsoMesh:
    """A closed surface of elliptic rings, from bottom to top pole.

    Parameters
    ----------
    z
        Heights (mm) of the poles and rings, increasing, ``(n,)``; ``z[0]`` and ``z[-1]``
        are the poles.
    scale
        The ring's size as a fraction of the full ellipse, ``(n,)`` (the poles' entries are
        not used).
    half_width, half_depth, centre_y
        The full ellipse: semi-axes along x and y (mm), and its centre's y (mm).
    n_around
        Vertices per ring.
    """
    t = 2.0 * np.pi * np.arange(n_around) / n_around
    rings = [np.stack([half_width * s * np.cos(t), centre_y + half_depth * s * np.sin(t),
                       np.full(n_around, zz)], axis=1) for zz, s in zip(z[1:-1], scale[1:-1])]
    verts = np.concatenate([[[0.0, centre_y, z[0]]], *rings, [[0.0, centre_y, z[-1]]]])
    n_rings = len(rings)
    top = len(verts) - 1

    def idx(r: int, k: int) -> int:
        return 1 + r * n_around + (k % n_around)

    tris = []
    for k in range(n_around):
        tris.append((0, idx(0, k + 1), idx(0, k)))             # bottom pole, facing down
        tris.append((top, idx(n_rings - 1, k), idx(n_rings - 1, k + 1)))
        for r in range(n_rings - 1):
            a, b = idx(r, k), idx(r, k + 1)
            c, d = idx(r + 1, k), idx(r + 1, k + 1)
            tris.append((a, b, d))
            tris.append((a, d, c))
    mesh = TorsoMesh(verts, np.asarray(tris, dtype=np.int64))
    if mesh.volume_mm3 < 0:
        mesh = TorsoMesh(verts, mesh.triangles[:, ::-1].copy())
    return mesh


def ellipsoid_mesh(a: float, b: float, c: float, n_around: int = 48,
                   n_rings: int = 24) -> TorsoMesh:
    """An ellipsoid centred at the origin (semi-axes ``a, b, c`` mm along x, y, z)."""
    polar = np.linspace(np.pi, 0.0, n_rings + 2)
    return ring_mesh(c * np.cos(polar), np.sin(polar), a, b, 0.0, n_around)


def adult_torso(edge_mm: float = 15.0) -> TorsoMesh:
    """The torso of the module's docstring in the body frame, edges of about ``edge_mm``."""
    a, b = TORSO_HALF_WIDTH_MM, TORSO_HALF_DEPTH_MM
    perimeter = np.pi * (3 * (a + b) - np.sqrt((3 * a + b) * (a + 3 * b)))  # Ramanujan
    n_around = max(12, int(round(perimeter / edge_mm)))
    n_side = max(2, int(round((TORSO_TOP_MM - TORSO_BOTTOM_MM) / edge_mm)))
    n_cap = max(3, int(round(0.5 * np.pi * TORSO_CAP_MM / edge_mm)))
    cap = np.linspace(0.0, 0.5 * np.pi, n_cap + 1)       # 0 at the cylinder, pi/2 at the pole
    side = np.linspace(TORSO_BOTTOM_MM, TORSO_TOP_MM, n_side + 1)
    z = np.concatenate([TORSO_BOTTOM_MM - TORSO_CAP_MM * np.sin(cap[::-1]), side[1:-1],
                        TORSO_TOP_MM + TORSO_CAP_MM * np.sin(cap)])
    scale = np.concatenate([np.cos(cap[::-1]), np.ones(n_side - 1), np.cos(cap)])
    return ring_mesh(z, scale, a, b, TORSO_CENTRE_Y_MM, n_around)


def solid_angles(points: np.ndarray, mesh: TorsoMesh) -> np.ndarray:
    """Solid angle (sr) each triangle subtends at each point, ``(n_points, n_triangles)``.

    Positive where the point lies on the side opposite the triangle's normal (inside a
    closed surface with outward normals); 0 for a point in the triangle's plane
    (van Oosterom & Strackee 1983). The triple product and the dot products of the
    corner vectors ``R_i = v_i - x`` are expanded into matrix products
    (``R_1 . (R_2 x R_3) = (v_1 - x) . N`` with ``N`` the triangle's normal), in
    coordinates centred on the mesh, so that no ``(n_points, n_triangles, 3, 3)`` array
    is formed.
    """
    shift = mesh.vertices.mean(axis=0)
    v = mesh.vertices - shift
    x = np.asarray(points, np.float64) - shift
    a, b, c = (v[mesh.triangles[:, k]] for k in range(3))
    normal = np.cross(b - a, c - a)
    num = np.einsum("ti,ti->t", a, normal)[None] - x @ normal.T
    xx = np.einsum("pi,pi->p", x, x)[:, None]
    vv = np.einsum("vi,vi->v", v, v)
    dist = np.sqrt(np.maximum(vv[None] - 2.0 * x @ v.T + xx, 0.0))
    n1, n2, n3 = (dist[:, mesh.triangles[:, k]] for k in range(3))

    def dot(p: np.ndarray, q: np.ndarray) -> np.ndarray:    # R_p . R_q
        return np.einsum("ti,ti->t", p, q)[None] - x @ (p + q).T + xx

    den = n1 * n2 * n3 + dot(a, b) * n3 + dot(a, c) * n2 + dot(b, c) * n1
    omega = 2.0 * np.arctan2(num, den)
    # In the triangle's plane the signed volume is 0 and arctan2 gives 0 or +-pi by the sign
    # of the denominator (+-pi inside the triangle): the solid angle is 0 there.
    omega[np.abs(num) <= 1e-12 * n1 * n2 * n3] = 0.0
    return omega


class BoundedTorso:
    """The BEM system of one torso surface, factorised once.

    Parameters
    ----------
    mesh
        A closed surface with outward normals (mm).
    """

    def __init__(self, mesh: TorsoMesh):
        from scipy.linalg import lu_factor

        if mesh.volume_mm3 <= 0:
            raise ValueError("the torso mesh encloses no volume with outward normals")
        self.mesh = mesh
        self.centroids = mesh.centroids
        n = len(self.centroids)
        omega = np.empty((n, n))
        for s in range(0, n, 1024):
            omega[s:s + 1024] = solid_angles(self.centroids[s:s + 1024], mesh)
        areas = mesh.areas
        system = np.eye(n) - omega / (2.0 * np.pi) + np.outer(np.ones(n), areas / areas.sum())
        self._lu = lu_factor(system)

    def electrode_coefficients(self, electrode_xyz: np.ndarray) -> np.ndarray:
        """``c`` ``(n_electrodes, n_triangles)``: ``phi(x_e) = 2 phi_inf(x_e) + c_e .
        phi_inf(centroids)``, for electrodes on the surface."""
        from scipy.linalg import lu_solve

        omega = solid_angles(np.asarray(electrode_xyz, np.float64), self.mesh)
        return lu_solve(self._lu, omega.T / np.pi, trans=1).T

    def weights(self, tissue_xyz: np.ndarray, electrode_xyz: np.ndarray,
                voxel_volume_mm3: float, sigma_b: float, chunk: int = 512) -> np.ndarray:
        """Per-voxel electrode weights in the torso, float64 ``(n_electrodes, n_tissue)``,
        in the units of :func:`pipeline.signals.ecg.pseudo_ecg_weights` (mm^3/mS).

        Raises
        ------
        ValueError
            A tissue voxel lies within :data:`MIN_CLEARANCE_MM` of the surface, or outside.
        """
        from pipeline.signals.ecg import pseudo_ecg_weights

        tissue_xyz = np.asarray(tissue_xyz, np.float64)
        coeff = self.electrode_coefficients(electrode_xyz)
        out = 2.0 * pseudo_ecg_weights(tissue_xyz, electrode_xyz, voxel_volume_mm3, sigma_b)
        inside = solid_angles(tissue_xyz[:1], self.mesh).sum()
        if not np.isclose(inside, 4.0 * np.pi, atol=1e-3):
            raise ValueError(f"the tissue lies outside the torso (solid angle {inside:.3f} sr "
                             "at a voxel, 4 pi inside)")
        scale = voxel_volume_mm3 / (4.0 * np.pi * sigma_b)
        cc = np.einsum("ti,ti->t", self.centroids, self.centroids)[:, None]
        for s in range(0, len(tissue_xyz), chunk):
            # r = |c - x| for every centroid and voxel of the chunk, in place in one buffer
            # (chunks of a few hundred voxels keep it in cache: 1.6-2x faster than 4096)
            x = tissue_xyz[s:s + chunk]
            r = self.centroids @ x.T
            r *= -2.0
            r += cc
            r += np.einsum("pi,pi->p", x, x)[None]
            np.maximum(r, 0.0, out=r)
            np.sqrt(r, out=r)
            if r.min() < MIN_CLEARANCE_MM:
                raise ValueError(f"a tissue voxel at {x[np.argmin(r.min(axis=0))].tolist()} mm "
                                 f"lies {r.min():.1f} mm from the torso surface; at least "
                                 f"{MIN_CLEARANCE_MM} mm is needed")
            np.divide(scale, r, out=r)
            out[:, s:s + chunk] += coeff @ r
        return out


def pose_from_electrodes(centre: np.ndarray, electrode_xyz: np.ndarray,
                         directions: np.ndarray) -> np.ndarray:
    """The rotation ``R`` (body = R heart) that placed the electrodes.

    :func:`pipeline.anatomy.electrodes.place_electrodes` puts electrode ``e`` at
    ``centre + r_e R^T d_e`` (``d_e`` its body-frame unit direction, ``directions``
    ``(n, 3)``); whatever the radii, the directions from ``centre`` give ``R`` (Kabsch's
    least-squares rotation).

    Raises
    ------
    ValueError
        The directions do not fit one rotation within 1e-2 (electrodes placed otherwise).
    """
    u = np.asarray(electrode_xyz, np.float64) - np.asarray(centre, np.float64)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    d = np.asarray(directions, np.float64)
    left, _, right = np.linalg.svd(u.T @ d)
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(right.T @ left.T))])
    rotation = right.T @ fix @ left.T
    misfit = float(np.abs(u @ rotation.T - d).max())
    if misfit > 1e-2:
        raise ValueError(f"the electrodes are not the body-frame sites seen from the heart's "
                         f"centre (directions off by {misfit:.3g}); the torso needs the pose "
                         "of pipeline.anatomy.electrodes.place_electrodes")
    return rotation


def torso_pseudo_ecg(anatomy, sigma_b: float, body_sites: np.ndarray,
                     body_heart_centre: np.ndarray, edge_mm: float = 15.0,
                     pose: HeartPose | None = None):
    """:class:`pipeline.signals.ecg.PseudoECG` of an anatomy in :func:`adult_torso`.

    The heart is posed in the body frame as its electrodes were
    (:func:`pose_from_electrodes`; its centre, the tissue centroid, at
    ``body_heart_centre``), and each electrode records at the surface centroid nearest its
    body-frame site. The weights are computed in the body frame; the recorded electrode
    positions are in the heart's. The simulate stage passes the sites of
    :mod:`pipeline.anatomy.electrodes` (``BODY_SITES``, ``BODY_HEART_CENTRE``).

    A ``pose`` then turns the heart about its centre, shifts it and scales the torso (and
    its electrode sites) about the body frame's origin. The BEM system is the same for
    every scale: solid angles do not change when the whole surface is scaled, and the
    potential of a unit source falls as 1/r, so the weights in the torso scaled by ``s``
    are ``w_s(x) = w_1(x / s) / s``. One factorisation serves every pose.

    Parameters
    ----------
    anatomy
        :class:`pipeline.anatomy.io.Anatomy`.
    sigma_b
        The torso's conductivity (S/m).
    body_sites
        The electrodes' sites in the body frame, ``(n_electrodes, 3)`` mm, in the order of
        ``anatomy.electrode_names``.
    body_heart_centre
        The heart's centre in the body frame, ``(3,)`` mm.
    edge_mm
        The surface triangles' edge (mm).

    Raises
    ------
    pipeline.errors.InputError
        The heart does not fit inside the torso with :data:`MIN_CLEARANCE_MM` to spare, or
        its electrodes were not placed by the body-frame pose; the message names the heart.
    """
    from pipeline.errors import InputError
    from pipeline.signals.ecg import PseudoECG

    xyz = anatomy.centres()
    centre = xyz.mean(axis=0)
    body_sites = np.asarray(body_sites, np.float64)
    body_heart_centre = np.asarray(body_heart_centre, np.float64)
    torso = body_torso(edge_mm)
    sites = torso.centroids[np.argmin(np.linalg.norm(
        torso.centroids[None] - body_sites[:, None], axis=-1), axis=1)]
    directions = body_sites - body_heart_centre
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    pose = pose or HeartPose()
    turn, shift, scale = pose.rotation(), np.asarray(pose.shift_mm), float(pose.torso_scale)
    try:
        rotation = turn @ pose_from_electrodes(centre, anatomy.electrode_xyz, directions)
        body = (xyz - centre) @ rotation.T + body_heart_centre + shift
        weights = torso.weights(body / scale, sites, float(np.prod(anatomy.spacing)),
                                sigma_b) / scale
    except ValueError as exc:
        where = "" if pose.identity else f" (pose {pose})"
        raise InputError(f"heart {anatomy.name}{where}: simulate.ecg_medium torso: "
                         f"{exc}") from exc
    names = tuple(str(n) for n in anatomy.electrode_names)
    return PseudoECG(weights=weights, electrode_names=names, sigma_b=float(sigma_b),
                     medium="torso", electrode_xyz=(
                         scale * sites - body_heart_centre - shift) @ rotation + centre)


@lru_cache(maxsize=4)
def body_torso(edge_mm: float = 15.0) -> BoundedTorso:
    """:func:`adult_torso` factorised (body frame); computed once per process and edge
    (about 10 s at 15 mm on 2 cores)."""
    return BoundedTorso(adult_torso(edge_mm))
