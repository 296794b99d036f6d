"""The fast endocardial layer on its myocardium: its load, fitted and applied by the eikonal.

The load (the layer's front speed over a free cable's, :func:`pipeline.monodomain.layer.
layer_load`) is checked against a fresh 0.1 mm monodomain slab at conductivities and a
depth between the measured ones (an independent run of the solver, not the fit's data).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from pipeline.errors import InputError
from pipeline.monodomain.cv_relation import cv_from_sigma
from pipeline.monodomain.eikonal import problem_inputs
from pipeline.monodomain.layer import layer_load, layer_slab, reference_layer_cv


def test_the_layer_load_matches_a_fresh_fine_slab_between_its_measured_points():
    """Depth 1.2 mm (12 voxels), sigma_fast 0.9, sigma_l 0.17, sigma_t 0.05 S/m: no
    measured slab has any of these; the fit (per depth, linear in log depth between 1 and
    1.5 mm) gives the 0.1 mm slab's front speed to 0.3 % (measured 0.08 %)."""
    torch.set_num_threads(1)
    cv = reference_layer_cv(0.9, depth_mm=1.2, sigma_l=0.17, sigma_t=0.05)
    measured = cv / float(cv_from_sigma(0.9))
    fitted = float(layer_load(0.9, 0.17, 0.05, 1.2))
    print(f"\nload measured {measured:.4f}, fitted {fitted:.4f}")
    assert 0.9 < measured < 0.99                     # a sink: slower than a free cable
    assert fitted == pytest.approx(measured, rel=0.003)


def test_the_load_falls_with_depth_and_refuses_an_unmeasured_depth():
    depths = [0.5, 0.6, 1.0, 2.0, 3.0, 5.0]
    load = [float(layer_load(0.75, 0.15, 0.04, h)) for h in depths]
    assert all(a < b for a, b in zip(load[:-2], load[1:-1])) and load[-1] == load[-2]
    assert load[0] == pytest.approx(0.878, abs=0.003) and load[4] > 0.985
    # conductivities outside the measured box take its edge's load
    assert float(layer_load(2.0, 0.15, 0.04, 1.0)) == float(layer_load(1.0, 0.15, 0.04, 1.0))
    with pytest.raises(InputError, match=r"depth 0.3 mm.*from 0.5 mm on.*eikonal_layer_load"):
        layer_load(0.75, 0.15, 0.04, 0.3)


def test_the_eikonal_slows_only_the_active_fast_layers():
    """Two simulations of one slab, the layer active in the first only (the second is a
    bundle-branch block there): only the first's layer voxels take the load; without
    ``layer_load`` or without a known depth every voxel keeps its free-cable speed."""
    base, _ = layer_slab(np.array([0.8, 0.8]), 0.5, 0.04, depth_mm=1.0, sigma_l=0.15,
                         sigma_t=0.04)
    problem = replace(base, fast_depth_mm=1.0, fast_enabled=np.array([[True], [False]]))
    layer = torch.as_tensor(np.array(problem.fast_regions["fast"]))
    cv_l, cv_t, _ = problem_inputs(problem)
    free_l, free_t, _ = problem_inputs(problem, layer_load=False)
    load = float(layer_load(0.8, 0.15, 0.04, 1.0))
    np.testing.assert_allclose(cv_l[0, layer].numpy(), load * float(cv_from_sigma(0.8)))
    np.testing.assert_allclose(cv_t[0, layer].numpy(), load * float(cv_from_sigma(0.8)))
    torch.testing.assert_close(cv_l[1], free_l[1])          # blocked: myocardial speeds
    torch.testing.assert_close(cv_l[:, ~layer], free_l[:, ~layer])
    np.testing.assert_allclose(free_l[0, layer].numpy(), float(cv_from_sigma(0.8)))
    unknown, _, _ = problem_inputs(base)                      # fast_depth_mm None
    torch.testing.assert_close(unknown, problem_inputs(base, layer_load=False)[0])
    np.testing.assert_allclose(unknown[:, layer].numpy(), float(cv_from_sigma(0.8)))
    with pytest.raises(InputError, match="fast_depth_mm must be a positive number"):
        replace(base, fast_depth_mm=-1.0)
