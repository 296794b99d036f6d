"""The diffusion operator: symmetry, conservation, definiteness, exactness, ELL application."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from pipeline.errors import InputError
from pipeline.monodomain.diffusion import (
    assemble_parts,
    assemble_stiffness,
    ell_apply,
    fibre_tensors,
    part_weights,
)

SPACING = np.array([0.5, 0.4, 0.3])


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one thread avoids OpenMP barrier costs on a shared, busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _random_case(seed: int = 0):
    """An irregular mask with holes, random fibres, a fast region and heterogeneous sigma."""
    rng = np.random.default_rng(seed)
    mask = rng.random((8, 7, 6)) < 0.75
    mask[1:7, 1:6, 1:5] |= rng.random((6, 5, 4)) < 0.9
    n = int(mask.sum())
    fibre = rng.normal(size=(n, 3))
    fibre /= np.linalg.norm(fibre, axis=1)[:, None]
    fast = rng.random(n) < 0.2
    return mask, fibre, fast


def _tensors(fibre: np.ndarray, fast: np.ndarray, sl: float, st: float, sf: float) -> np.ndarray:
    aniso = st * np.eye(3) + (sl - st) * fibre_tensors(fibre)
    return np.where(fast[:, None, None], sf * np.eye(3), aniso)


def test_symmetric_conservative_negative_semidefinite():
    mask, fibre, fast = _random_case()
    a = assemble_stiffness(mask, SPACING, _tensors(fibre, fast, 0.3, 0.02, 0.8)).toarray()
    scale = np.abs(a).max()
    assert np.abs(a - a.T).max() < 1e-12 * scale                  # symmetric
    assert np.abs(a.sum(axis=1)).max() < 1e-12 * scale            # rows sum to zero
    eig = np.linalg.eigvalsh(a)
    assert eig.max() < 1e-10 * scale                              # negative semi-definite
    assert eig.min() < -1e-3 * scale                              # and not trivially zero


def test_nullspace_is_constants_per_component():
    """Zero eigenvalues = one constant per connected tissue component (no spurious modes)."""
    mask = np.zeros((9, 4, 4), dtype=bool)
    mask[0:4] = True
    mask[5:9] = True            # two blocks separated by an empty plane
    n = int(mask.sum())
    rng = np.random.default_rng(1)
    fibre = rng.normal(size=(n, 3))
    fibre /= np.linalg.norm(fibre, axis=1)[:, None]
    a = assemble_stiffness(mask, SPACING, 0.02 * np.eye(3) + 0.2 * fibre_tensors(fibre)).toarray()
    eig = np.linalg.eigvalsh(a)
    assert int((np.abs(eig) < 1e-9 * np.abs(eig).max()).sum()) == 2


def test_zero_flux_through_tissue_boundary():
    """sum_p vol (A V)_p = 0 per connected component for any V: no flux leaves the tissue."""
    mask = np.zeros((9, 5, 5), dtype=bool)
    mask[0:4, :, 1:4] = True
    mask[5:9, 1:4] = True
    n = int(mask.sum())
    rng = np.random.default_rng(2)
    fibre = rng.normal(size=(n, 3))
    a = assemble_stiffness(mask, SPACING,
                           0.05 * np.eye(3) + 0.3 * fibre_tensors(
                               fibre / np.linalg.norm(fibre, axis=1)[:, None]))
    v = rng.normal(size=n) * 30.0
    av = a @ v
    first = np.argwhere(mask)[:, 0] < 4
    assert abs(av[first].sum()) < 1e-10 * np.abs(av).sum()
    assert abs(av[~first].sum()) < 1e-10 * np.abs(av).sum()
    # the two blocks do not talk to each other
    assert sp.csr_matrix(a)[np.ix_(np.flatnonzero(first), np.flatnonzero(~first))].nnz == 0


def test_exact_for_linear_and_quadratic_fields_in_the_interior():
    mask = np.ones((7, 7, 7), dtype=bool)
    n = int(mask.sum())
    rng = np.random.default_rng(3)
    s = rng.normal(size=(3, 3))
    sigma = s @ s.T + 0.1 * np.eye(3)                             # uniform, full anisotropic
    a = assemble_stiffness(mask, SPACING, np.broadcast_to(sigma, (n, 3, 3)))
    ijk = np.argwhere(mask)
    x = ijk * SPACING
    interior = np.all((ijk >= 1) & (ijk <= 5), axis=1)
    linear = x @ np.array([1.0, -2.0, 0.5]) + 3.0
    assert np.abs((a @ linear)[interior]).max() < 1e-10
    q = rng.normal(size=(3, 3))
    q = q + q.T
    quad = np.einsum("ni,ij,nj->n", x, q, x)
    expected = 2.0 * np.trace(sigma @ q)                          # div(sigma grad x^T Q x)
    assert np.allclose((a @ quad)[interior], expected, rtol=1e-10, atol=1e-10)


def test_one_dimensional_cable_matches_three_point_laplacian():
    mask = np.ones((6, 1, 1), dtype=bool)
    a = assemble_stiffness(mask, np.array([0.25, 1.0, 1.0]),
                           np.broadcast_to(np.diag([0.2, 0.1, 0.1]), (6, 3, 3))).toarray()
    ref = 0.2 / 0.25 ** 2 * (np.diag(np.full(5, 1.0), 1) + np.diag(np.full(5, 1.0), -1)
                             - 2 * np.eye(6))
    ref[0, 0] = ref[-1, -1] = -0.2 / 0.25 ** 2                     # Neumann ends
    assert np.allclose(a, ref, rtol=1e-12)


def test_parts_combine_to_the_direct_assembly_and_apply_in_torch():
    mask, fibre, fast = _random_case(4)
    parts = assemble_parts(mask, SPACING, fibre, {"fast": fast})
    sl, st, sf = np.array([0.3, 0.15]), np.array([0.02, 0.05]), np.array([0.8, 0.5])
    w = part_weights(parts, {"myo": (st, sl - st), "fast": (sf, np.zeros(2))})
    n = parts.n_tissue
    v = np.random.default_rng(5).normal(size=(2, n))
    out = ell_apply(torch.tensor(v), torch.as_tensor(parts.neighbour),
                    torch.tensor(parts.combine(w))).numpy()
    for b in range(2):
        ref = assemble_stiffness(mask, SPACING, _tensors(fibre, fast, sl[b], st[b], sf[b]))
        assert np.allclose(parts.matrix(w[:, b]).toarray(), ref.toarray(), atol=1e-12)
        assert np.allclose(out[b], ref @ v[b], rtol=1e-10, atol=1e-9)
    # float32 leaves a constant field exactly unchanged (difference form)
    const = torch.full((2, n), -85.23, dtype=torch.float32)
    assert torch.equal(ell_apply(const, torch.as_tensor(parts.neighbour),
                                 torch.tensor(parts.combine(w), dtype=torch.float32)),
                       torch.zeros(2, n))
    # the spectral bound bounds the true spectral radius
    assert parts.spectral_bound(w[:, 0]) >= parts.spectral_radius(w[:, 0]) > 0


def test_batch_tables_share_the_parts_and_match_per_simulation_tables():
    """Two fast layers, eight simulations differing only by conductivities (both layers on,
    one off in two): the batch keeps fewer tables than simulations, and the shared form
    gives the per-simulation operator to float32 round-off; per-simulation tables are
    bit-identical to :meth:`combine`."""
    mask, fibre, fast = _random_case(6)
    lv = fast & (np.arange(fast.size) % 2 == 0)
    rv = fast & ~lv
    parts = assemble_parts(mask, SPACING, fibre, {"fast_lv": lv, "fast_rv": rv})
    rng = np.random.default_rng(7)
    sl, st, sf = rng.uniform(0.1, 0.2, 8), rng.uniform(0.02, 0.06, 8), rng.uniform(0.5, 1, 8)
    on = np.ones(8, dtype=bool)
    # myo iso, myo fibre, fast iso (both layers: same weights); + the LV fibre part where off
    for lv_on, expected in ((on, 3), (np.arange(8) >= 2, 5)):
        region = {"myo": (st, sl - st), "fast_rv": (sf, np.zeros(8)),
                  "fast_lv": (np.where(lv_on, sf, st), np.where(lv_on, 0.0, sl - st))}
        w = part_weights(parts, region)
        per, none = parts.batch_tables(w, share=False)
        assert none is None and per.dtype == np.float32
        np.testing.assert_array_equal(per, parts.combine(w).astype(np.float32))
        tables, scales = parts.batch_tables(w)
        assert tables.shape == (expected, parts.n_tissue, 18) and scales.shape == (8, expected)
        v = torch.tensor(rng.normal(scale=40.0, size=(8, parts.n_tissue)), dtype=torch.float32)
        nb = torch.as_tensor(parts.neighbour)
        ref = ell_apply(v, nb, torch.tensor(per))
        out = ell_apply(v, nb, torch.tensor(tables), torch.tensor(scales, dtype=torch.float32))
        assert float((out - ref).abs().max()) <= 1e-6 * float(ref.abs().max())
        const = torch.full((8, parts.n_tissue), -85.23)
        assert torch.equal(ell_apply(const, nb, torch.tensor(tables),
                                     torch.tensor(scales, dtype=torch.float32)),
                           torch.zeros(8, parts.n_tissue))
    # one simulation, or as many tables as simulations: one table per simulation
    assert parts.batch_tables(w[:, :1])[1] is None


@pytest.mark.parametrize("bad", ["empty", "shape", "zero"])
def test_bad_inputs_fail_before_assembly(bad):
    mask = np.ones((3, 3, 3), dtype=bool)
    fibre = np.tile([1.0, 0, 0], (27, 1))
    if bad == "empty":
        mask[:] = False
        match = "no tissue"
    elif bad == "shape":
        fibre = np.zeros((3, 4, 3, 3))
        match = "does not match the mask"
    else:
        fibre[5] = 0.0
        match = "zero or not finite"
    with pytest.raises(InputError, match=match):
        assemble_parts(mask, SPACING, fibre)
