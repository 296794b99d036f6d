"""CUDA: the same solver on the GPU gives the CPU's activation times (skipped without CUDA).

``make gpu-check`` runs these and ``pipeline bench gpu`` on a CUDA machine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.errors import InputError

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("compile", [False, True])
def test_cuda_solver_matches_the_cpu_on_a_slab(compile):
    from pipeline.monodomain.solver import MonodomainSolver
    from pipeline.simulate.convergence import _slab_problem

    problem = _slab_problem(0.5, 45.0, (0.45, 0.12), 0.02, length_mm=8.0)
    cpu = MonodomainSolver(problem, device="cpu").run(stop_when_activated=True)
    gpu = MonodomainSolver(problem, device="cuda", compile=compile).run(stop_when_activated=True)
    assert np.isfinite(gpu.activation_ms).all()
    assert np.nanmax(np.abs(gpu.activation_ms - cpu.activation_ms)) < 0.05   # ms


@pytest.mark.cuda
@cuda
def test_cuda_chained_steps_match_the_cpu_on_a_slab():
    """``steps_per_call`` 8 on CUDA (one graph per 8 steps, site stimuli run alone): the
    CPU's activation times, as one step per call gives them."""
    from pipeline.monodomain.solver import MonodomainSolver
    from pipeline.simulate.convergence import _slab_problem

    problem = _slab_problem(0.5, 45.0, (0.45, 0.12), 0.02, length_mm=8.0)
    cpu = MonodomainSolver(problem, device="cpu").run(stop_when_activated=True)
    solver = MonodomainSolver(problem, device="cuda", compile=True, steps_per_call=8)
    gpu = solver.run(stop_when_activated=True)
    assert solver.step.fused and solver.step._advance_compiled is not None
    assert np.isfinite(gpu.activation_ms).all()
    assert np.nanmax(np.abs(gpu.activation_ms - cpu.activation_ms)) < 0.05   # ms


@pytest.mark.cuda
@cuda
def test_cuda_eikonal_matches_the_cpu():
    from pipeline.monodomain.eikonal import problem_inputs, solve_eikonal
    from pipeline.simulate.convergence import _slab_problem

    p = _slab_problem(0.5, 30.0, (0.15, 0.04), 0.02, length_mm=8.0)
    cv_l, cv_t, src = problem_inputs(p)
    a = solve_eikonal(p.grid.mask, 0.5, p.fibre, cv_l, cv_t, src, device="cpu")
    b = solve_eikonal(p.grid.mask, 0.5, p.fibre, cv_l, cv_t, src, device="cuda").cpu()
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-3)


def test_gpu_check_without_cuda_names_the_missing_device(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    from pipeline.cli import main

    assert main(["bench", "gpu", "--json", str(tmp_path / "g.json"),
                 "--cache", str(tmp_path)]) == 1
    assert not (tmp_path / "g.json").exists()
    with pytest.raises(InputError, match="CUDA device"):
        from pipeline.simulate.gpucheck import gpu_check
        gpu_check(tmp_path / "g.json", tmp_path)
