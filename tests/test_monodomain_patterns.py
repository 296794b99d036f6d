"""Activation patterns on a parametric heart; CV measurement and calibration helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.errors import InputError
from pipeline.monodomain.batch import build_problem, prepare_anatomy
from pipeline.params import SimParams
from pipeline.monodomain.cv import _interpolate, cable_cv
from pipeline.monodomain.patterns import PATTERNS, make_pattern


@pytest.fixture(scope="module")
def heart():
    """Parametric heart 0 at 2 mm (a few seconds to build)."""
    from pipeline.anatomy.build import build_parametric
    from pipeline.config import section
    settings, seed = section({"anatomy": {"resolution_mm": 2.0}}, "anatomy")
    anatomy, _ = build_parametric(0, seed, settings, "param000")
    return anatomy, prepare_anatomy(anatomy)


def test_patterns_are_seeded_recorded_and_start_at_zero(heart):
    _, prep = heart
    for name in PATTERNS:
        a = make_pattern(name, prep.coords, seed=7)
        b = make_pattern(name, prep.coords, seed=7)
        assert a.record == b.record                            # same seed, same pattern
        assert min(s.start_ms for s in a.stimuli) == 0.0        # time 0 = first stimulus
        for site in a.record["sites"]:
            assert site["jitter_mm"] <= 3.0 + 1e-9
        onsets = [s["onset_ms"] for s in a.record["sites"]]
        assert max(onsets) <= 10.0 + 5.0 + 1e-9                 # offset range + RV delay
    records = {make_pattern("normal", prep.coords, seed=s).record["sites"][0]["voxel"]
               for s in range(8)}
    assert len(records) > 1                                     # seeds vary the sites
    with pytest.raises(InputError, match="unknown activation pattern 'wpw'"):
        make_pattern("wpw", prep.coords, seed=0)


def test_sites_lie_where_the_literature_puts_them(heart):
    _, prep = heart
    c = prep.coords
    normal = make_pattern("normal", c, seed=1, site_jitter_mm=0.0)
    by_name = {s["site"]: s["voxel"] for s in normal.record["sites"]}
    lv = ["lv_anterior_paraseptal", "lv_midseptal", "lv_posterior_paraseptal"]
    for name in lv:
        v = by_name[name]
        assert c.transmural[v] < 0.3 and c.boundary[v]          # endocardial
        assert c.region[v] == 1 or c.ventricle[v] < 0           # LV side
    assert c.rotational[by_name["lv_anterior_paraseptal"]] > 0  # anterior
    assert c.rotational[by_name["lv_posterior_paraseptal"]] < 0  # posterior
    assert c.region[by_name["lv_midseptal"]] == 3
    assert (c.apicobasal[by_name["lv_anterior_paraseptal"]]
            > c.apicobasal[by_name["lv_posterior_paraseptal"]])
    assert c.region[by_name["rv_anterior_papillary"]] == 2
    rv_onset = [s["onset_ms"] for s in normal.record["sites"] if s["site"].startswith("rv")]
    assert normal.fast_enabled == (True, True)
    lat = make_pattern("lv_lateral", c, seed=1, site_jitter_mm=0.0).record["sites"][0]["voxel"]
    assert c.transmural[lat] > 0.7 and abs(abs(c.rotational[lat]) - math.pi) < math.pi / 4
    apex = make_pattern("rv_apex", c, seed=1, site_jitter_mm=0.0).record["sites"][0]["voxel"]
    rv_endo = c.surface("rv_endo")
    assert c.apicobasal[apex] <= c.apicobasal[rv_endo].min() + 0.1   # lowest RV endocardium
    assert make_pattern("lbbb", c, seed=1).fast_enabled == (False, True)
    assert make_pattern("rbbb", c, seed=1).fast_enabled == (True, False)
    assert rv_onset                                             # RV site present in normal


def test_fast_layers_and_batch_problem(heart):
    anatomy, prep = heart
    fl, fr = prep.fast["fast_lv"], prep.fast["fast_rv"]
    assert fl.any() and fr.any() and not (fl & fr).any()
    # the free walls' layer stops at apicobasal 0.85, the septum's at 0.95 (the bundle
    # branches run down both septal faces; the posterobasal LV and basal RV end the beat)
    ab, septum = prep.coords.apicobasal, prep.coords.region == 3
    assert ab[(fl | fr) & ~septum].max() < 0.85
    assert 0.85 <= ab[(fl | fr) & septum].max() < 0.95
    specs = [SimParams.from_row({"sim_id": i, "pattern": p, "sigma_l": 0.2, "sigma_t": 0.05,
                                      "sigma_fast_endo": 0.9, "gkr_scale": g, "seed": i})
             for i, (p, g) in enumerate([("normal", 1.0), ("lbbb", 0.5)])]
    problem = build_problem(prep, specs, dt_ms=0.05, duration_ms=1.0, cv_scale=1.1)
    assert problem.batch == 2
    assert np.allclose(problem.conductivities.sigma_l, 0.22)
    assert problem.records[1]["pattern_params"]["pattern"] == "lbbb"
    assert problem.records[0]["cv_scale"] == 1.1
    assert problem.fast_enabled.tolist() == [[True, True], [False, True]]
    # a disabled fast layer conducts like myocardium: its weights equal the myocardium's
    a, c = problem.region_sigma()["fast_lv"]
    assert a[1] == pytest.approx(0.055) and c[1] == pytest.approx(0.165)
    assert a[0] == pytest.approx(0.99) and c[0] == 0.0
    with pytest.raises(InputError, match="lacks column"):
        SimParams.from_row({"sim_id": 0, "pattern": "normal"})


def test_cable_cv_fit_and_loglog_interpolation():
    dx = 0.25
    x = (np.arange(60) + 0.5) * dx
    act = np.stack([3.0 + x / 0.6, 1.0 + x / 0.3])
    assert np.allclose(cable_cv(act, dx), [0.6, 0.3])
    act[1, 30] = np.nan
    assert np.isnan(cable_cv(act, dx)[1])
    scales = np.array([0.5, 1.0, 2.0, 4.0])
    cv = 0.5 * np.sqrt(scales)                                  # CV ~ sqrt(sigma)
    assert _interpolate(scales, cv, 0.5 * math.sqrt(3.0)) == pytest.approx(3.0, rel=0.03)
    assert _interpolate(scales, cv, 5.0) is None


def test_calibration_hits_the_target_on_a_coarse_cable():
    from pipeline.monodomain.cv import calibrate_conductivity
    torch.set_num_threads(1)
    cal = calibrate_conductivity(0.5, 0.1334, 1.0, 0.1)
    assert cal.achieved_cv_mm_per_ms == pytest.approx(0.5, rel=0.02)
    assert cal.scale > 1.0                                      # a coarse grid needs more sigma


def test_initial_states_from_steady_state_table():
    from pipeline.cell.steady import InitialStates
    from pipeline.monodomain.batch import initial_states_from_table
    rng = np.random.default_rng(0)
    states = rng.normal(size=(2, 2, 3, 19))
    table = InitialStates(states=states, celltypes=("endo", "epi"),
                          bcl_ms=np.array([600.0, 1000.0]),
                          gkr_scale=np.array([0.0, 0.5, 1.0]))
    out = initial_states_from_table(table)(np.array([1000.0, 600.0]), np.array([0.5, 0.0]))
    assert out.shape == (2, 4, 19)
    assert np.allclose(out[0, 1], states[0, 1, 1]) and np.allclose(out[0, 3], states[1, 1, 1])
    assert np.allclose(out[1, 3], states[1, 0, 0])
    assert np.isnan(out[:, 2]).all()                            # M cells not in the table


def test_apex_to_base_gks_gradient_scales_every_cell_and_shortens_aps(heart):
    from pipeline.cell import beat, pacing, tp06
    from pipeline.monodomain.batch import apicobasal_gks_scale
    from pipeline.monodomain.solver import MonodomainSolver
    _, prep = heart
    specs = [SimParams(sim_id=i, pattern="normal", sigma_l=0.2, sigma_t=0.05,
                            sigma_fast_endo=0.9, gkr_scale=g) for i, g in enumerate([1.0, 0.5])]
    problem = build_problem(prep, specs, dt_ms=0.05, duration_ms=1.0, gks_apex_base=(1.0, 2.0))
    ab = prep.coords.apicobasal
    assert np.allclose(problem.voxel_scales["g_Ks"], 1.0 + np.clip(ab, 0, 1))
    assert problem.records[0]["gks_apex_base"] == [1.0, 2.0]
    solver = MonodomainSolver(problem)
    base_gks = np.array([0.0, 0.392, 0.098, 0.392])[prep.celltype]
    g_ks = solver.params.g_Ks.numpy()
    assert g_ks.shape == (1, prep.grid.n_tissue)
    np.testing.assert_allclose(g_ks[0], base_gks * (1.0 + np.clip(ab, 0, 1)), rtol=1e-6)
    assert solver.params.g_Kr.numpy()[:, 0].tolist() == pytest.approx([0.153, 0.0765])
    assert build_problem(prep, specs, dt_ms=0.05, duration_ms=1.0).voxel_scales == {}
    with pytest.raises(InputError, match="apex multiplier"):
        apicobasal_gks_scale(ab, -1.0, 2.0)
    # the physiology behind it: an epicardial cell with twice the g_Ks repolarises earlier
    params = tp06.make_params(["epi", "epi"], g_Ks=torch.tensor([1.0, 2.0]))
    res = pacing.pace(tp06.initial_state(["epi", "epi"]), params, 1000.0, dt_ms=0.05, beats=3,
                      steps_per_call=5, progress=False)
    one, two = (beat.apd(res.traces[i], 0.05, 90.0) for i in (0, 1))
    print(f"epi APD90 g_Ks x1 {one:.1f} ms, x2 {two:.1f} ms")
    assert 15.0 < one - two < 80.0


def _slab(h: float, wall_mm: float = 8.0, side_mm: float = 12.0):
    """TissueCoords of a flat LV wall on a grid of voxel size h: tissue for 0 < z < wall,
    the cavity below z = 0 (so the endocardium is the plane z = 0)."""
    from pipeline.monodomain.patterns import TissueCoords

    n_side, n_wall = round(side_mm / h), round(wall_mm / h)
    ijk = np.argwhere(np.ones((n_side, n_side, n_wall), dtype=bool))
    xyz = (ijk + 0.5) * h
    boundary = ((ijk[:, 2] == 0) | (ijk[:, 2] == n_wall - 1) | (ijk[:, :2] == 0).any(axis=1)
                | (ijk[:, :2] == n_side - 1).any(axis=1))
    n = len(ijk)
    return TissueCoords(xyz=xyz, transmural=xyz[:, 2] / wall_mm, apicobasal=np.full(n, 0.5),
                        rotational=np.zeros(n), ventricle=np.full(n, -1.0),
                        region=np.ones(n, dtype=np.int64), boundary=boundary, spacing=h)


@pytest.mark.parametrize("h, voxels", [(0.25, 4), (0.5, 2), (1.0, 1), (2.0, 1)])
def test_the_fast_layer_is_as_deep_as_asked_at_every_voxel_size(h, voxels):
    """A 1 mm layer under a flat endocardium: 4, 2 and 1 voxels at 0.25, 0.5 and 1 mm (the
    midpoint rule for the tissue within 1 mm of the wall), one voxel at 2 mm. Measured from
    the surface voxels' centres instead, it was 1.5 mm thick at 0.5 mm and 2 mm at 1 mm."""
    from pipeline.monodomain.patterns import fast_layers

    c = _slab(h)
    layer = fast_layers(c, depth_mm=1.0)["fast_lv"]
    middle = (np.abs(c.xyz[:, :2] - 6.0) < 2.0).all(axis=1)     # away from the side walls
    per_column = layer[middle].sum() / (middle.sum() / round(8.0 / h))
    assert per_column == voxels
    assert c.xyz[layer & middle, 2].max() < 1.0 or h == 2.0     # centres inside 1 mm
    with pytest.raises(InputError, match="fast layer would be one voxel"):
        fast_layers(_slab(2.0), depth_mm=0.9)


def _pieces(ijk: np.ndarray, sel: np.ndarray, largest: bool = False) -> int | float:
    """Face-connected pieces of the voxels ``sel`` (bool (n,)) at grid indices ``ijk``;
    ``largest``: the share of the voxels in the largest piece instead."""
    from scipy import ndimage

    grid = np.zeros(tuple(ijk.max(axis=0) + 1), dtype=bool)
    grid[tuple(ijk[sel].T)] = True
    label, n = ndimage.label(grid)
    if not largest:
        return n
    sizes = np.bincount(label.ravel())[1:]
    return sizes.max() / sizes.sum()


def test_face_connect_joins_edge_and_corner_neighbours_nearest_the_endocardium():
    from pipeline.monodomain.patterns import face_connect

    n = 6
    edge = np.zeros((n, n, 1), dtype=bool)
    edge[np.arange(n), np.arange(n), 0] = True                 # touching at edges only
    x, y = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    dist = (y - x + n).astype(float)[..., None]                 # nearer below the diagonal
    joined = face_connect(edge, np.ones_like(edge), dist)
    expected = edge.copy()
    expected[np.arange(1, n), np.arange(n - 1), 0] = True      # (i+1, i): the nearer side
    assert np.array_equal(joined, expected)
    corner = np.zeros((n, n, n), dtype=bool)
    corner[np.arange(n), np.arange(n), np.arange(n)] = True     # touching at corners only
    joined = face_connect(corner, np.ones_like(corner), np.zeros(corner.shape))
    assert n + 2 * (n - 1) <= joined.sum() <= n + 3 * (n - 1)   # two or three per step
    assert _pieces(np.argwhere(np.ones(corner.shape, bool)), joined.ravel()) == 1
    assert np.array_equal(face_connect(edge, edge, dist), edge)  # nothing allowed to join


def test_the_fast_layer_of_an_oblique_wall_is_face_connected_for_the_diffusion(heart):
    """A wall at 45 deg to the grid at 2 mm: the 1 mm layer is its staircase of surface
    voxels, which touch only at edges; the diffusion operator couples face neighbours
    only, so without joins each step is its own piece. On the parametric heart at 2 mm the
    prepared (diffusion) layers are one piece per ventricle but for stray voxels that
    touch nothing (a gap of a voxel: no join can reach them)."""
    from pipeline.monodomain.patterns import TissueCoords, fast_layers

    h, n, wall = 2.0, 12, 8.0
    ijk = np.argwhere(np.ones((n, 1, n), dtype=bool))
    s = (ijk[:, 0] + ijk[:, 2]) * h / math.sqrt(2.0)            # distance across the wall
    start = n * h / math.sqrt(2.0)
    tissue = s >= start - 1e-9
    ijk, s = ijk[tissue], s[tissue]
    xyz = (ijk + 0.5) * h
    m = len(ijk)
    boundary = (ijk[:, 0] + ijk[:, 2]) == n                    # faces to the cavity
    c = TissueCoords(xyz=xyz, transmural=(s - start) / wall, apicobasal=np.full(m, 0.5),
                     rotational=np.zeros(m), ventricle=np.full(m, -1.0),
                     region=np.ones(m, dtype=np.int64), boundary=boundary, spacing=h)
    plain = fast_layers(c, depth_mm=1.0)["fast_lv"]
    joined = fast_layers(c, depth_mm=1.0, face_connected=True)["fast_lv"]
    assert np.array_equal(plain, boundary)                      # the staircase
    assert _pieces(ijk, plain) == boundary.sum()                # every step apart
    assert _pieces(ijk, joined) == 1
    assert joined.sum() == 2 * boundary.sum() - 1               # one join per step
    assert (joined & ~plain).sum() and (c.transmural[joined] < 0.5).all()
    _, prep = heart
    ijk = np.argwhere(prep.grid.mask)
    plain = fast_layers(prep.coords, depth_mm=1.0)
    for name in ("fast_lv", "fast_rv"):
        print(name, _pieces(ijk, plain[name]), "pieces ->", _pieces(ijk, prep.fast[name]))
        assert _pieces(ijk, prep.fast[name], largest=True) > 0.99
        assert _pieces(ijk, plain[name], largest=True) < 0.5
        assert _pieces(ijk, prep.fast[name]) <= 3 < 10 < _pieces(ijk, plain[name])
