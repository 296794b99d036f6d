"""Real meshes: labelling of the shared LLNL heart, voxel volume, and every bad input."""

from __future__ import annotations

from pathlib import Path

import meshio
import numpy as np
import pytest

from pipeline.anatomy.grid import BASE, EPI, LV_ENDO, RV_ENDO
from pipeline.anatomy.mesh import read_heart_mesh
from pipeline.anatomy.voxelise import voxelise_surface
from pipeline.errors import InputError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "anatomy" / "cardiac_ml_heart" \
    / "heart_mesh.vtk"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="shared LLNL mesh not present")


@pytest.fixture(scope="module")
def llnl():
    return read_heart_mesh(SHARED)


@needs_shared
def test_shared_mesh_splits_into_four_parts_with_known_areas(llnl):
    # README of the shared mesh: base on z = 72 (normal +z), epicardium ~18,000 mm^2,
    # two endocardia ~8,960 mm^2 each; RV cavity at x ~6-62 mm, LV cavity at x ~46-98 mm.
    np.testing.assert_allclose(llnl.base_normal, [0, 0, 1], atol=1e-6)
    assert llnl.base_offset == pytest.approx(72.0, abs=0.01)
    areas = llnl.areas()
    assert areas["epicardium"] == pytest.approx(18000, rel=0.02)
    assert areas["LV endocardium"] == pytest.approx(8960, rel=0.02)
    assert areas["RV endocardium"] == pytest.approx(8960, rel=0.02)
    assert areas["base"] > 0.05 * sum(areas.values())
    for label, (lo, hi) in ((LV_ENDO, (46, 98)), (RV_ENDO, (6, 62))):
        x = llnl.points[np.unique(llnl.triangles[llnl.labels == label]), 0]
        assert x.min() == pytest.approx(lo, abs=1.0) and x.max() == pytest.approx(hi, abs=1.0)
    base_z = llnl.points[llnl.triangles[llnl.labels == BASE]][..., 2]
    np.testing.assert_allclose(base_z, 72.0, atol=0.01)
    assert llnl.volume_mm3 / 1000 == pytest.approx(108.9, rel=0.002)


@needs_shared
def test_shared_mesh_voxel_volume_within_two_percent(llnl):
    heart = voxelise_surface(llnl, 1.5, "llnl")
    assert heart.volume_mm3 == pytest.approx(llnl.volume_mm3, rel=0.02)
    assert set(np.unique(heart.face_label)) == {BASE, EPI, LV_ENDO, RV_ENDO}


@needs_shared
def test_user_labels_are_used(tmp_path, llnl):
    # the automatic labels, swapped LV <-> RV, written as triangle cells next to the tets
    mesh = meshio.read(SHARED)
    swapped = llnl.labels.copy()
    swapped[llnl.labels == LV_ENDO], swapped[llnl.labels == RV_ENDO] = RV_ENDO, LV_ENDO
    out = meshio.Mesh(mesh.points, [("tetra", mesh.cells_dict["tetra"]),
                                    ("triangle", llnl.triangles)],
                      cell_data={"surf": [np.zeros(len(mesh.cells_dict["tetra"]), int),
                                          swapped.astype(int)]})
    path = tmp_path / "labelled.vtu"
    out.write(path)
    user = read_heart_mesh(path, labels="surf")
    np.testing.assert_array_equal(user.labels, swapped)
    with pytest.raises(InputError, match="no cell-data array 'nope'.*surf"):
        read_heart_mesh(path, labels="nope")


def _sphere_surface(radius: float = 30.0, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    import pyvista as pv

    s = pv.Sphere(radius=radius, theta_resolution=n, phi_resolution=n).triangulate()
    return np.asarray(s.points), np.asarray(s.faces).reshape(-1, 4)[:, 1:]


def test_unreadable_file_names_the_mesh(tmp_path):
    bad = tmp_path / "garbage.vtk"
    bad.write_text("this is not a mesh\n")
    with pytest.raises(InputError, match=r"mesh .*garbage\.vtk: cannot read"):
        read_heart_mesh(bad)
    with pytest.raises(InputError, match=r"missing\.vtu: file not found"):
        read_heart_mesh(tmp_path / "missing.vtu")


def test_open_surface_is_rejected(tmp_path):
    points, tri = _sphere_surface()
    path = tmp_path / "holey.vtk"
    meshio.Mesh(points, [("triangle", tri[5:])]).write(path)
    with pytest.raises(InputError, match=r"holey\.vtk: surface not closed: \d+ of \d+ edges"):
        read_heart_mesh(path)


def test_no_flat_base_is_rejected(tmp_path):
    points, tri = _sphere_surface()
    path = tmp_path / "sphere.vtk"
    meshio.Mesh(points, [("triangle", tri)]).write(path)
    with pytest.raises(InputError, match=r"sphere\.vtk: no flat base: the largest flat patch"):
        read_heart_mesh(path)


def test_one_cavity_is_rejected(tmp_path):
    # a cup: a truncated ellipsoidal shell (one cavity) voxelised into hexahedra
    h = 2.0
    ax = np.arange(-40, 41, h)
    zz = np.arange(-70, 1, h)
    x, y, z = np.meshgrid(ax, ax, zz, indexing="ij")
    outer = (x / 35) ** 2 + (y / 35) ** 2 + (z / 65) ** 2 < 1
    inner = (x / 25) ** 2 + (y / 25) ** 2 + (z / 55) ** 2 < 1
    cells = np.argwhere((outer & ~inner)[:-1, :-1, :-1])
    corners = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1],
                        [1, 1, 1], [0, 1, 1]])
    ids = np.ravel_multi_index((cells[:, None, :] + corners).reshape(-1, 3).T, x.shape)
    points = np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)
    path = tmp_path / "cup.vtu"
    meshio.Mesh(points, [("hexahedron", ids.reshape(-1, 8))]).write(path)
    with pytest.raises(InputError, match=r"cup\.vtu: not two cavities: .* 2 connected parts"
                                         r".*1 cavity"):
        read_heart_mesh(path)
