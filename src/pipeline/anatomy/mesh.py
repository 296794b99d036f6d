"""Real biventricular meshes: read any volume mesh meshio reads, label its surface.

The boundary surface of the volume cells is split into four parts:

1. the **base**: the largest flat patch at an edge of the mesh (all vertices lie on one
   side of its plane) -- a truncated biventricular mesh is cut there;
2. the rest falls into edge-connected pieces; the largest by area is the **epicardium**;
3. the two others are the endocardia; the **LV** cavity is the more convex one (cavity
   volume closed by the base plane over its convex hull's volume), the crescent is the **RV**.

A user may instead give a cell-data array on triangle cells of the mesh with the codes of
:mod:`pipeline.anatomy.grid` (1 base, 2 epicardium, 3 LV endocardium, 4 RV endocardium).
Closed triangulated surfaces (no volume cells) are accepted too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import ConvexHull

from pipeline.anatomy.grid import BASE, EPI, LV_ENDO, RV_ENDO, SURFACE_NAMES
from pipeline.errors import InputError

log = logging.getLogger(__name__)

#: Faces of volume cells, local vertex numbers (VTK ordering); quads are split later.
CELL_FACES: dict[str, list[list[int]]] = {
    "tetra": [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]],
    "hexahedron": [[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6],
                   [3, 0, 4, 7]],
    "wedge": [[0, 1, 2], [3, 4, 5], [0, 1, 4, 3], [1, 2, 5, 4], [2, 0, 3, 5]],
    "pyramid": [[0, 1, 2, 3], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]],
}
#: Higher-order cells use their corner vertices.
CELL_CORNERS = {"tetra": 4, "tetra10": 4, "hexahedron": 8, "hexahedron20": 8,
                "hexahedron27": 8, "wedge": 6, "wedge15": 6, "pyramid": 5, "pyramid13": 5}
MIN_BASE_FRACTION = 0.01


@dataclass(frozen=True)
class LabelledSurface:
    """The closed boundary surface of a heart mesh with one label per triangle.

    Attributes
    ----------
    points
        Vertices (n, 3), mm.
    triangles
        Vertex indices (m, 3), oriented outward where the mesh has volume cells.
    labels
        Surface label per triangle (m,) uint8: 1 base, 2 epi, 3 LV endo, 4 RV endo.
    base_normal
        Unit normal of the base plane pointing out of the heart (apex -> base), (3,).
    base_offset
        ``base_normal . x`` on the base plane, mm.
    volume_mm3
        Volume enclosed by the surface (from the volume cells), mm^3; NaN if unknown.
    name
        The mesh's file name, for messages.
    """

    points: np.ndarray
    triangles: np.ndarray
    labels: np.ndarray
    base_normal: np.ndarray
    base_offset: float
    volume_mm3: float
    name: str

    def areas(self) -> dict[str, float]:
        """Area (mm^2) of each labelled part, by name."""
        area = triangle_areas(self.points, self.triangles)
        return {SURFACE_NAMES[k]: float(area[self.labels == k].sum()) for k in SURFACE_NAMES}


def triangle_areas(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Areas (m,) of triangles ``tri`` (m, 3) over ``points``."""
    return 0.5 * np.linalg.norm(triangle_normals(points, tri, unit=False), axis=1)


def triangle_normals(points: np.ndarray, tri: np.ndarray, unit: bool = True) -> np.ndarray:
    """Normals (m, 3) of triangles (right-hand rule); unit length if ``unit``."""
    p = points[tri]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    if unit:
        n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
    return n


def _read(path: Path):  # -> meshio.Mesh
    import meshio

    if not path.exists():
        raise InputError(f"mesh {path}: file not found")
    try:
        return meshio.read(path)
    except (Exception, SystemExit) as exc:  # meshio raises many types, even SystemExit
        raise InputError(f"mesh {path}: cannot read it with meshio "
                         f"({type(exc).__name__}: {exc})") from exc


def _boundary(mesh, name: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Boundary triangles (outward) of the volume cells, or the mesh's own surface cells."""
    points = np.asarray(mesh.points, dtype=np.float64)
    faces, centroids = [], []
    for block in mesh.cells:
        kind = block.type
        if kind not in CELL_CORNERS:
            continue
        cells = np.asarray(block.data)[:, :CELL_CORNERS[kind]]
        centre = points[cells].mean(axis=1)
        for local in CELL_FACES[kind.rstrip("0123456789")]:
            f = np.full((cells.shape[0], 4), -1, dtype=np.int64)
            f[:, :len(local)] = cells[:, local]
            faces.append(f)
            centroids.append(centre)
    if faces:
        face = np.concatenate(faces)
        owner_centre = np.concatenate(centroids)
        key = np.sort(np.where(face < 0, np.iinfo(np.int64).max, face), axis=1)
        _, first, counts = np.unique(key, axis=0, return_index=True, return_counts=True)
        once = first[counts == 1]
        face, owner_centre = face[once], owner_centre[once]
        tri = _split_polygons(face)
        owner = np.concatenate([owner_centre, owner_centre[face[:, 3] >= 0]])
        normal = triangle_normals(points, tri)
        flip = np.einsum("ij,ij->i", normal, points[tri].mean(axis=1) - owner) < 0
        tri[flip] = tri[flip][:, ::-1]
        p = points[tri]
        volume = float(np.einsum("ij,ij->i", p[:, 0], np.cross(p[:, 1], p[:, 2])).sum() / 6.0)
        return points, tri, volume
    surf = [np.asarray(b.data) for b in mesh.cells if b.type in ("triangle", "quad")]
    if not surf:
        kinds = sorted({b.type for b in mesh.cells}) or ["none"]
        raise InputError(f"mesh {name}: no volume cells (tetra, hexahedron, wedge, pyramid) "
                         f"and no surface triangles; found cell types {', '.join(kinds)}")
    face = np.concatenate([np.pad(s, ((0, 0), (0, 4 - s.shape[1])), constant_values=-1)
                           for s in surf])
    return points, _split_polygons(face), float("nan")


def _split_polygons(face: np.ndarray) -> np.ndarray:
    """Triangles (quads -> two triangles, listed after all first halves) of faces (m, 4)."""
    quad = face[:, 3] >= 0
    return np.concatenate([face[:, :3], face[quad][:, [0, 2, 3]]]).astype(np.int64)


def check_closed(points: np.ndarray, tri: np.ndarray, name: str) -> None:
    """Raise :class:`InputError` if an edge of the surface has only one triangle."""
    edges = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    open_edges = uniq[counts == 1]
    if open_edges.size:
        where = points[open_edges[0]].mean(axis=0)
        raise InputError(
            f"mesh {name}: surface not closed: {len(open_edges)} of {len(uniq)} edges belong "
            f"to one triangle only (holes), e.g. near ({where[0]:.1f}, {where[1]:.1f}, "
            f"{where[2]:.1f}); a closed volume is needed")
    if (counts > 2).any():
        log.warning("mesh %s: %d non-manifold edges (more than two triangles)", name,
                    int((counts > 2).sum()))


def find_base(points: np.ndarray, tri: np.ndarray, name: str,
              angle_deg: float = 3.0) -> tuple[np.ndarray, float, np.ndarray]:
    """The base: the largest flat patch of the surface at an edge of the mesh.

    Returns
    -------
    normal, offset, is_base
        Outward unit normal (3,), plane offset (mm) and a boolean per triangle.
    """
    area = triangle_areas(points, tri)
    normal = triangle_normals(points, tri)
    cent = points[tri].mean(axis=1)
    centre = np.average(cent, axis=0, weights=area)
    normal = normal * np.where(np.einsum("ij,ij->i", normal, cent - centre) < 0, -1.0, 1.0)[:, None]
    diag = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    tol = 2e-3 * diag
    offset = np.einsum("ij,ij->i", normal, cent)
    key = np.concatenate([np.round(normal / 0.05), np.round(offset / (4 * tol))[:, None]], axis=1)
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    group_area = np.bincount(inverse.ravel(), weights=area)
    cos_tol = np.cos(np.radians(angle_deg))
    best = (0.0, None, 0.0, None)
    for g in np.argsort(group_area)[::-1][:20]:
        members = inverse.ravel() == g
        n = np.average(normal[members], axis=0, weights=area[members])
        n /= np.linalg.norm(n)
        d = float(np.average(cent[members] @ n, weights=area[members]))
        on = (normal @ n > cos_tol) & (np.abs(cent @ n - d) < tol)
        extreme = float((points @ n).max()) <= d + tol
        patch = float(area[on].sum())
        if extreme and patch > best[0]:
            best = (patch, n, d, on)
    total = float(area.sum())
    if best[1] is None or best[0] < MIN_BASE_FRACTION * total:
        raise InputError(
            f"mesh {name}: no flat base: the largest flat patch at an edge of the mesh covers "
            f"{best[0]:.1f} mm^2 ({100 * best[0] / total:.2f} % of the {total:.0f} mm^2 "
            f"surface; at least {100 * MIN_BASE_FRACTION:.0f} % expected): biventricular "
            "meshes must be cut flat at the base")
    return best[1], best[2], best[3]


def _fit_plane(points: np.ndarray, tri: np.ndarray) -> tuple[np.ndarray, float]:
    """Plane (unit normal pointing away from the rest of ``points``, offset) of triangles."""
    n = triangle_normals(points, tri, unit=False)
    n = n * np.where(n @ n[np.argmax(np.linalg.norm(n, axis=1))] < 0, -1.0, 1.0)[:, None]
    normal = n.sum(axis=0)
    normal /= np.linalg.norm(normal)
    offset = float(np.mean(points[tri].reshape(-1, 3) @ normal))
    if (points @ normal).mean() > offset:
        normal, offset = -normal, -offset
    return normal, offset


def _components(tri: np.ndarray, keep: np.ndarray) -> tuple[int, np.ndarray]:
    """Edge-connected components of the triangles where ``keep`` (-1 elsewhere)."""
    idx = np.flatnonzero(keep)
    t = tri[idx]
    edges = np.sort(np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]]), axis=1)
    owner = np.tile(np.arange(len(idx)), 3)
    _, inv = np.unique(edges, axis=0, return_inverse=True)
    inv = inv.ravel()
    incidence = sparse.csr_matrix((np.ones(inv.size), (owner, inv)))
    adjacency = incidence @ incidence.T
    n, comp = csgraph.connected_components(adjacency, directed=False)
    out = np.full(len(tri), -1, dtype=np.int64)
    out[idx] = comp
    return n, out


def label_surface(points: np.ndarray, tri: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Label a closed heart surface automatically (see the module docstring).

    Returns
    -------
    labels, base_normal, base_offset
    """
    normal, offset, is_base = find_base(points, tri, name)
    n_comp, comp = _components(tri, ~is_base)
    area = triangle_areas(points, tri)
    comp_area = np.bincount(comp[comp >= 0], weights=area[comp >= 0], minlength=n_comp)
    order = np.argsort(comp_area)[::-1]
    found = ", ".join(f"{a:.0f}" for a in comp_area[order])
    if n_comp != 3:
        cavities = n_comp - 1
        raise InputError(
            f"mesh {name}: not two cavities: besides the base the surface splits into "
            f"{n_comp} connected parts (areas {found} mm^2), i.e. {cavities} cavit"
            f"{'y' if cavities == 1 else 'ies'}; expected an epicardium and two endocardia "
            "(LV and RV) open at the base")
    epi, c1, c2 = order
    labels = np.full(len(tri), BASE, dtype=np.uint8)
    labels[comp == epi] = EPI
    convexity = [_convexity(points, tri[comp == c], normal, offset) for c in (c1, c2)]
    lv, rv = (c1, c2) if convexity[0] >= convexity[1] else (c2, c1)
    labels[comp == lv] = LV_ENDO
    labels[comp == rv] = RV_ENDO
    log.info("mesh %s: cavity volume / convex-hull volume %.3f and %.3f; the more convex "
             "cavity is the LV", name, *convexity)
    return labels, normal, offset


def _convexity(points: np.ndarray, tri: np.ndarray, normal: np.ndarray, offset: float) -> float:
    """Volume of a cavity closed by the base plane over the volume of its convex hull.

    The LV cavity is nearly convex (about 0.95-1); the crescent-shaped RV is not
    (about 0.8 on the LLNL heart).
    """
    origin = normal * offset  # a point on the base plane: the lid adds nothing below
    n = triangle_normals(points, tri, unit=False) / 2
    volume = abs(float(np.einsum("ij,ij->i", points[tri].mean(axis=1) - origin, n).sum()) / 3)
    return volume / ConvexHull(points[np.unique(tri)]).volume


def user_labels(mesh, points: np.ndarray, tri: np.ndarray, array: str, name: str) -> np.ndarray:
    """Labels of boundary triangles from a cell-data array on the mesh's triangle cells."""
    blocks = [(b.data, mesh.cell_data[array][i]) for i, b in enumerate(mesh.cells)
              if b.type == "triangle"] if array in mesh.cell_data else []
    if not blocks:
        raise InputError(f"mesh {name}: no cell-data array '{array}' on triangle cells; "
                         f"arrays present: {sorted(mesh.cell_data) or 'none'}")
    lab_tri = np.concatenate([np.asarray(b[0]) for b in blocks])
    lab_val = np.concatenate([np.asarray(b[1]).ravel() for b in blocks]).astype(np.int64)
    table = {tuple(k): v for k, v in zip(np.sort(lab_tri, axis=1).tolist(), lab_val.tolist())}
    labels = np.array([table.get(tuple(k), 0) for k in np.sort(tri, axis=1).tolist()])
    bad = ~np.isin(labels, list(SURFACE_NAMES))
    if bad.any():
        raise InputError(f"mesh {name}: {int(bad.sum())} of {len(tri)} boundary triangles have no "
                         f"valid label in '{array}' (codes 1 base, 2 epi, 3 LV endo, 4 RV endo)")
    return labels.astype(np.uint8)


def read_heart_mesh(path: str | Path, scale_to_mm: float = 1.0,
                    labels: str | None = None) -> LabelledSurface:
    """Read a heart mesh and label its boundary surface.

    Parameters
    ----------
    path
        Any volume mesh meshio reads (.vtk, .vtu, .msh, .xdmf, ...), or a closed triangle
        surface.
    scale_to_mm
        Factor converting the mesh's coordinates to mm.
    labels
        Optional name of a cell-data array on triangle cells with the surface codes.

    Raises
    ------
    InputError
        Unreadable file, no cells, surface not closed, no flat base, not two cavities.
    """
    path = Path(path)
    name = str(path)
    mesh = _read(path)
    points, tri, volume = _boundary(mesh, name)
    points = points * float(scale_to_mm)
    volume *= float(scale_to_mm) ** 3
    check_closed(points, tri, name)
    if labels:
        lab = user_labels(mesh, points / scale_to_mm, tri, labels, name)
        base = lab == BASE
        if not base.any():
            raise InputError(f"mesh {name}: label array '{labels}' marks no base (code 1)")
        normal, offset = _fit_plane(points, tri[base])
    else:
        lab, normal, offset = label_surface(points, tri, name)
    surface = LabelledSurface(points, tri, lab, normal, float(offset), volume, name)
    log.info("mesh %s: %d points, %d boundary triangles, volume %.1f cm^3, areas %s", name,
             len(points), len(tri), volume / 1000, {k: round(v) for k, v in surface.areas().items()})
    return surface
