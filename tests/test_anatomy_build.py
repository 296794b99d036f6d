"""Parametric hearts, Laplace solves, coordinates, fibres, points and electrodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from pipeline.anatomy.build import assemble
from pipeline.anatomy.coords import LV_FREE, RV_FREE, SEPTUM
from pipeline.anatomy.electrodes import ELECTRODE_NAMES, electrode_radii, place_electrodes
from pipeline.anatomy.fibres import bislerp, gradient, neighbours, to_matrix, to_quaternion
from pipeline.anatomy.grid import EPI, LV_ENDO, RV_ENDO, Grid, boundary_faces
from pipeline.anatomy.laplace import solve, tissue_graph
from pipeline.anatomy.mesh import read_heart_mesh
from pipeline.anatomy.parametric import VOLUME_RANGE_CM3, shape_for, voxelise_shape
from pipeline.anatomy.points import SEPTAL_AHA, expected_region
from pipeline.anatomy.voxelise import VoxelHeart, voxelise_surface
from pipeline.config import section

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "anatomy" / "cardiac_ml_heart" \
    / "heart_mesh.vtk"

# DESIGN.md section 4, spelled out
DESIGN_NAMES = (
    [f"AHA{i:02d}" for i in range(1, 18)] + [f"RV{i:02d}" for i in range(1, 14)]
    + ["EPI_AHA01", "EPI_AHA04", "EPI_AHA05", "EPI_AHA06", "EPI_AHA07", "EPI_AHA10",
       "EPI_AHA11", "EPI_AHA12", "EPI_AHA13", "EPI_AHA15", "EPI_AHA16", "EPI_AHA17",
       "EPI_RV01", "EPI_RV02", "EPI_RV03", "EPI_RV06", "EPI_RV07", "EPI_RV08", "EPI_RV11",
       "EPI_RV12"]
    + ["MID_AHA01", "MID_AHA04", "MID_AHA05", "MID_AHA06", "MID_AHA07", "MID_AHA10",
       "MID_AHA11", "MID_AHA12", "MID_AHA13", "MID_AHA15", "MID_AHA16", "MID_AHA17",
       "MID_RV01", "MID_RV02", "MID_RV03", "MID_RV06", "MID_RV07", "MID_RV08", "MID_RV11",
       "MID_RV12"]
    + ["SEPTM_AHA02_RV05", "SEPTM_AHA03_RV04", "SEPTM_AHA08_RV10", "SEPTM_AHA09_RV09",
       "SEPTM_AHA14_RV13"])


def _build(heart: VoxelHeart):
    settings, _ = section({}, "anatomy")
    anatomy, coords, _ = assemble(heart, settings)
    return heart, anatomy, coords


@pytest.fixture(scope="module")
def param():
    return _build(voxelise_shape(shape_for(20221, 0), 1.5, "param000"))


@pytest.fixture(scope="module")
def llnl():
    if not SHARED.exists():
        pytest.skip("shared LLNL mesh not present")
    return _build(voxelise_surface(read_heart_mesh(SHARED), 2.0, "llnl"))


@pytest.fixture(params=["param", "llnl"])
def built(request):
    return request.getfixturevalue(request.param)


# ---------------------------------------------------------------- parametric shapes
def test_shapes_are_seeded_distinct_and_in_range():
    a, b, c = shape_for(7, 0), shape_for(7, 0), shape_for(7, 1)
    assert a == b and a != c
    for shape in (a, c):
        assert VOLUME_RANGE_CM3[0] <= shape.volume_mm3(1.0) / 1000 <= VOLUME_RANGE_CM3[1]


def test_parametric_voxel_volume_matches_monte_carlo():
    shape = shape_for(20221, 1)
    heart = voxelise_shape(shape, 2.0, "p")
    lo, hi = shape.bounds()
    rng = np.random.default_rng(0)
    pts = rng.uniform(lo, hi, size=(400_000, 3))
    mc = (shape.classify(pts) == 0).mean() * np.prod(hi - lo)  # standard error ~0.3 %
    assert heart.volume_mm3 == pytest.approx(mc, rel=0.03)


# ---------------------------------------------------------------- Laplace solver
def test_laplace_is_exact_for_a_slab():
    mask = np.zeros((14, 6, 6), bool)
    mask[2:12, 1:5, 1:5] = True
    grid = Grid(np.zeros(3), 1.0, mask.shape)
    voxel, direction = boundary_faces(mask)
    value = np.full(voxel.size, np.nan)
    value[direction == 0] = 0.0  # -x face of the slab at x = 1.5
    value[direction == 1] = 1.0  # +x face at x = 11.5
    u = solve(tissue_graph(mask), voxel, value)
    x = grid.flat_centres(np.flatnonzero(mask))[:, 0]
    np.testing.assert_allclose(u, (x - 1.5) / 10.0, atol=1e-10)


def _shell_error(h: float) -> float:
    r1, r2 = 10.0, 20.0
    n = int(np.ceil(2 * r2 / h)) + 5
    grid = Grid.covering(np.full(3, -r2), np.full(3, r2), h)
    ax = [grid.origin[d] + h * np.arange(n) for d in range(3)]
    grid = Grid(grid.origin, h, (n, n, n))
    x, y, z = np.meshgrid(*ax, indexing="ij")
    r = np.sqrt(x * x + y * y + z * z)
    mask = (r > r1) & (r < r2)
    voxel, direction = boundary_faces(mask)
    face_r = np.linalg.norm(grid.flat_centres(voxel) + 0.5 * h * np.eye(3)[direction // 2]
                            * np.where(direction % 2, 1, -1)[:, None], axis=1)
    value = np.where(face_r < 0.5 * (r1 + r2), 0.0, 1.0)
    u = solve(tissue_graph(mask), voxel, value)
    exact = (1 / r1 - 1 / r[mask]) / (1 / r1 - 1 / r2)
    return float(np.sqrt(np.mean((u - exact) ** 2)))


def test_laplace_converges_for_a_spherical_shell():
    # u = (1/r1 - 1/r) / (1/r1 - 1/r2); staircase boundaries give first order at least
    e1, e2 = _shell_error(2.0), _shell_error(1.0)
    assert e2 < 0.03
    assert np.log2(e1 / e2) > 0.8


# ---------------------------------------------------------------- coordinates
def test_coordinate_ranges(built):
    _, a, _ = built
    m = a.mask
    assert a.transmural[m].min() >= 0 and a.transmural[m].max() <= 1
    assert a.apicobasal[m].min() == 0 and a.apicobasal[m].max() == pytest.approx(1)
    assert a.rotational[m].min() > -np.pi - 1e-6 and a.rotational[m].max() <= np.pi + 1e-6
    assert a.ventricle[m].min() >= -1 - 1e-6 and a.ventricle[m].max() <= 1 + 1e-6
    for f in (a.transmural, a.apicobasal, a.rotational, a.ventricle, a.region, a.celltype):
        assert not f[~m].any()
    assert set(np.unique(a.region[m])) == {LV_FREE, RV_FREE, SEPTUM}
    assert set(np.unique(a.celltype[m])) == {1, 2, 3}


def test_coordinates_are_monotone(built):
    heart, a, c = built
    xyz = heart.grid.flat_centres(np.flatnonzero(heart.mask))
    height = c.frame.height(xyz)
    assert stats.spearmanr(c.apicobasal, height)[0] > 0.95
    # transmural rises from each LV free-wall endo point to its epi point
    names = list(a.point_names)
    for seg in ("AHA01", "AHA05", "AHA11", "AHA16", "RV02", "RV07"):
        p, q = a.point_xyz[names.index(seg)], a.point_xyz[names.index(f"EPI_{seg}")]
        s = np.linspace(0, 1, 40)[:, None]
        ijk = np.unique(np.rint((p + s * (q - p) - a.origin) / a.spacing).astype(int), axis=0)
        order = np.argsort(np.linalg.norm(ijk * a.spacing + a.origin - p, axis=1))
        ijk = ijk[order]
        inside = a.mask[tuple(ijk.T)]
        t = a.transmural[tuple(ijk[inside].T)]
        assert t[0] < 0.4 and t[-1] > 0.6  # 2-mm voxels: boundary values 1/4 wall in
        assert (np.diff(t) > -0.05).all()
    # ventricle: LV free wall near -1, RV free wall near +1, septum in between
    v = c.ventricle
    assert np.median(v[c.region == LV_FREE]) < -0.9
    assert np.median(v[c.region == RV_FREE]) > 0.9
    assert -0.6 < np.median(v[c.region == SEPTUM]) < 0.6


# ---------------------------------------------------------------- fibres
def test_quaternion_round_trip_and_bislerp_end_points():
    rng = np.random.default_rng(3)
    q = rng.normal(size=(500, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    m = to_matrix(q)
    np.testing.assert_allclose(to_matrix(to_quaternion(m)), m, atol=1e-12)
    m2 = to_matrix(np.roll(q, 1, axis=0))
    np.testing.assert_allclose(bislerp(m, m2, np.ones(500)), m2, atol=1e-9)


def _helix(a, c, heart):
    graph = tissue_graph(heart.mask)
    f = a.fibre[:, heart.mask].T.astype(float)
    g = gradient(c.transmural, neighbours(graph), heart.grid.spacing)
    g /= np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    u = c.frame.long_axis
    lon = u - (g @ u)[:, None] * g
    lon /= np.linalg.norm(lon, axis=1, keepdims=True)
    circ = np.cross(lon, g)
    helix = np.degrees(np.arctan2(np.einsum("ij,ij->i", f, lon), np.einsum("ij,ij->i", f, circ)))
    return f, g, (helix + 90) % 180 - 90


def test_fibres_are_unit_tangent_with_helix_60_to_minus_60(built):
    heart, a, c = built
    f, g, helix = _helix(a, c, heart)
    s = a.sheet[:, heart.mask].T
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), 1, atol=1e-5)
    assert np.abs(np.einsum("ij,ij->i", f, s)).max() < 1e-5
    for region in (LV_FREE, RV_FREE):
        sel = (c.region == region) & (c.apicobasal > 0.25) & (c.apicobasal < 0.9)
        assert np.median(np.abs(np.einsum("ij,ij->i", f[sel], g[sel]))) < 0.1
        slope, intercept = np.polyfit(c.transmural[sel], helix[sel], 1)
        assert intercept == pytest.approx(60, abs=8)          # endocardium
        assert intercept + slope == pytest.approx(-60, abs=8)  # epicardium


# ---------------------------------------------------------------- points
def test_points_names_regions_layers(built):
    heart, a, c = built
    assert list(a.point_names) == DESIGN_NAMES
    ijk = a.point_ijk
    np.testing.assert_allclose(a.point_xyz, a.origin + ijk * a.spacing)
    assert a.mask[tuple(ijk.T)].all()
    region = a.region[tuple(ijk.T)]
    assert [int(r) for r in region] == [expected_region(n) for n in a.point_names]
    graph = tissue_graph(heart.mask)
    face_t = graph.index.ravel()[heart.face_voxel]
    tissue = graph.index[tuple(ijk.T)]
    on = {k: set(face_t[heart.face_label == k]) for k in (EPI, LV_ENDO, RV_ENDO)}
    boundary = set(face_t)
    t = a.transmural[tuple(ijk.T)]
    for name, ti, tv in zip(a.point_names, tissue, t):
        if name.startswith("AHA"):
            assert ti in on[LV_ENDO], name
        elif name.startswith("RV"):
            assert ti in on[RV_ENDO], name
        elif name.startswith("EPI_"):
            assert ti in on[EPI] and tv > 0.6, name
        elif name.startswith("MID_"):
            assert ti not in boundary and 0.25 <= tv <= 0.75, name
        else:  # SEPTM_: inside the septum
            assert ti not in boundary, name


def test_aha_geometry(built):
    _, a, c = built
    names = list(a.point_names)
    theta = {n: np.degrees(a.rotational[tuple(a.point_ijk[i])]) for i, n in enumerate(names)}
    axial = {n: (a.point_xyz[i] - c.frame.lv_apex) @ c.frame.long_axis
             for i, n in enumerate(names)}
    for base_seg in range(1, 7):
        assert axial[f"AHA{base_seg:02d}"] > axial[f"AHA{base_seg + 6:02d}"] \
            > min(axial[f"AHA{s}"] for s in range(13, 17)) > axial["AHA17"] - 1e-9
    for first in (1, 7):
        t = [theta[f"AHA{first + k:02d}"] for k in range(6)]
        assert 45 < t[0] < 135 and -135 < t[3] < -45     # anterior, inferior
        assert 0 < t[1] < 90 and -90 < t[2] < 0          # anteroseptal, inferoseptal
        assert abs(t[4]) > 90 and abs(t[5]) > 90         # lateral pair
        assert t[4] < 0 < t[5]                           # inferolateral, anterolateral
    assert abs(theta["AHA14"]) < 45 and abs(theta["AHA16"]) > 135
    assert 45 < theta["AHA13"] < 135 and -135 < theta["AHA15"] < -45
    assert theta["RV01"] > theta["RV02"] > theta["RV03"]  # anterior -> inferior free wall
    assert theta["RV05"] > theta["RV04"] and theta["RV10"] > theta["RV09"]
    assert {int(s) for s in SEPTAL_AHA} == {2, 3, 8, 9, 14}


# ---------------------------------------------------------------- electrodes
def test_electrodes(built):
    _, a, c = built
    assert list(a.electrode_names) == list(ELECTRODE_NAMES)
    r = np.linalg.norm(a.electrode_xyz - c.frame.centre, axis=1)
    np.testing.assert_allclose(r, 100.0, rtol=1e-9)
    d = (a.electrode_xyz - c.frame.centre) / 100.0
    sep = d[4:10] @ c.frame.septal  # V1 (over the RV) ... V6 (lateral LV)
    assert (np.diff(sep) < 0).all() and sep[0] > 0 > sep[-1]
    apex = -c.frame.long_axis
    assert d[2] @ apex > 0.5 > d[0] @ apex  # LL toward the apex, RA away


def test_limb_electrodes_at_their_torso_distances(built):
    """anatomy.limb_electrode_radius_mm: 'torso' moves RA, LA, LL, RL out along their own
    directions to their body-frame sites' distances; V1-V6 stay at 100 mm."""
    _, a, c = built
    moved = place_electrodes(c.frame, 100.0, "torso")
    r = np.linalg.norm(moved - c.frame.centre, axis=1)
    np.testing.assert_allclose(r[:4], [259.4, 222.0, 380.7, 397.6], atol=0.1)
    np.testing.assert_allclose(moved[4:], a.electrode_xyz[4:], atol=1e-9)
    d = (moved - c.frame.centre) / r[:, None]
    np.testing.assert_allclose(d, (a.electrode_xyz - c.frame.centre) / 100.0, atol=1e-12)
    np.testing.assert_allclose(electrode_radii(100.0, 300.0), [300.0] * 4 + [100.0] * 6)
    np.testing.assert_allclose(electrode_radii(80.0, None), 80.0)
    for bad in ("far", 0.0, -5.0):
        with pytest.raises(ValueError, match="limb_electrode_radius_mm"):
            electrode_radii(100.0, bad)


def test_a_tissue_field_sampled_between_voxel_centres():
    """sample_tissue: exact for a linear field inside the tissue (trilinear interpolation
    reproduces linear functions), renormalised over the tissue corners at the surface,
    the nearest tissue voxel beyond it, and NaN corners left out."""
    from pipeline.anatomy.grid import sample_tissue

    rng = np.random.default_rng(0)
    mask = np.zeros((8, 7, 6), dtype=bool)
    mask[:5] = True                                            # tissue: x centres 0..4 h
    origin, h = np.array([10.0, -3.0, 2.0]), 0.5
    centres = origin + np.argwhere(mask) * h
    slope = np.array([1.5, -2.0, 0.25])
    values = centres @ slope + 7.0
    inside = origin + rng.uniform([0, 0, 0], [4, 6, 5], (50, 3)) * h
    np.testing.assert_allclose(sample_tissue(mask, origin, h, values, inside),
                               inside @ slope + 7.0, rtol=0, atol=1e-12)
    # half a voxel past the last tissue plane: only its x = 4 corners count
    edge = inside.copy()
    edge[:, 0] = origin[0] + 4.5 * h
    expected = (edge - [0.5 * h, 0, 0]) @ slope + 7.0
    np.testing.assert_allclose(sample_tissue(mask, origin, h, values, edge), expected,
                               rtol=0, atol=1e-12)
    # far outside: the nearest tissue voxel's value
    far = np.array([[origin[0] + 20 * h, origin[1] + 2 * h, origin[2] + 3 * h]])
    nearest = origin + np.array([4, 2, 3]) * h
    assert sample_tissue(mask, origin, h, values, far)[0] == pytest.approx(nearest @ slope + 7)
    # a batch of fields and a missing (NaN) corner
    both = np.stack([values, 2 * values])
    both[1, 0] = np.nan                                       # voxel (0, 0, 0)
    at = origin[None] + np.array([[0.5, 0.0, 0.0]]) * h       # between (0,0,0) and (1,0,0)
    got = sample_tissue(mask, origin, h, both, at)
    assert got.shape == (2, 1)
    assert got[0, 0] == pytest.approx(at[0] @ slope + 7)
    assert got[1, 0] == pytest.approx(2 * ((origin + [h, 0, 0]) @ slope + 7))


@pytest.mark.parametrize("dx", [0.5, 1.0])
def test_wall_thickness_of_shells_and_a_slab(dx):
    """Walls of known thickness: a spherical shell (radii 20 and 28 mm, so 8 mm) labelled
    LV free wall, a concentric thinner shell (radii 32 and 36 mm, 4 mm) labelled RV free
    wall, and a flat slab 6 mm thick labelled septum; each within half a voxel, and each mass
    the region's volume at 1.05 g/mL."""
    from pipeline.anatomy.walls import MYOCARDIUM_G_PER_ML, describe, wall_thickness

    ax = (np.arange(int(100 / dx)) + 0.5) * dx - 50.0
    x, y, z = np.meshgrid(ax, ax, ax, indexing="ij")
    r = np.sqrt(x ** 2 + y ** 2 + z ** 2)
    region = np.zeros(r.shape, np.uint8)
    region[(r >= 20) & (r < 28)] = 1
    region[(r >= 32) & (r < 36)] = 2
    region[(np.abs(z) < 3) & (r >= 40) & (r < 48)] = 3
    walls = wall_thickness(region > 0, region, dx)
    for name, want in (("lv_free_wall", 8.0), ("rv_free_wall", 4.0), ("septum", 6.0)):
        w = walls[name]
        assert abs(w.thickness_mm - want) <= 0.5 * dx + 1e-9, (name, w)
        assert w.thickness_iqr_mm[0] <= w.thickness_mm <= w.thickness_iqr_mm[1]
        assert w.mass_g == pytest.approx(
            np.count_nonzero(region == {"lv_free_wall": 1, "rv_free_wall": 2,
                                        "septum": 3}[name]) * dx ** 3 / 1000
            * MYOCARDIUM_G_PER_ML)
    assert walls["lv_free_wall"].volume_ml == pytest.approx(4 / 3 * np.pi * (28 ** 3 - 20 ** 3)
                                                            / 1000, rel=0.03)
    assert "RV / (LV + septum) mass" in describe(walls)
    with pytest.raises(ValueError, match="shape"):
        wall_thickness(region > 0, region[1:], dx)
