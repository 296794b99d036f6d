"""CUDA: the same solver on the GPU gives the CPU's activation times (skipped without CUDA),
and the machinery of the GPU check, which runs on the CPU too.

``make gpu-check`` (or ``benchmarks/gpu_check.sh`` on a machine without a network) runs
the tests marked cuda and ``pipeline bench gpu`` on a CUDA machine.
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
    solver = MonodomainSolver(problem, device="cuda", compile=compile)
    assert solver.slot_major                        # CUDA's default layout of the tables
    gpu = solver.run(stop_when_activated=True)
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
    from pipeline.simulate.gpucheck import gpu_check

    with pytest.raises(InputError, match="CUDA device"):
        gpu_check(tmp_path / "g.json", tmp_path)
    with pytest.raises(InputError, match="--device 'tpu': expected 'cuda' or 'cpu'"):
        gpu_check(tmp_path / "g.json", tmp_path, device="tpu")


def test_gpu_check_sections_record_failures_skip_past_the_budget_and_write_after_each(
        tmp_path):
    """A lent GPU machine gives minutes: a section that fails must not lose the others,
    and whatever ran must be on disk when the run is cut short."""
    import json
    import time

    from pipeline.simulate.gpucheck import run_sections

    out = tmp_path / "g.json"
    seen = []

    def slow():
        seen.append(json.loads(out.read_text()) if out.exists() else None)
        time.sleep(0.3)
        return [1, 2]

    def broken():
        raise RuntimeError("no kernel")

    result = run_sections([("first", lambda: "ok"), ("broken", broken), ("slow", slow),
                           ("late", lambda: "never"), ("memory", lambda: "summary")],
                          out, {"device": "test"}, budget_s=0.2)
    assert seen == [{"device": "test", "first": "ok", "broken": {"error": "RuntimeError: no "
                     "kernel"}, "wall_s": {"first": 0.0, "broken": 0.0}}]
    assert result["slow"] == [1, 2]
    assert "skipped" in result["late"] and "late" not in result["wall_s"]
    assert result["memory"] == "summary"
    assert json.loads(out.read_text()) == result


def test_throughput_children_read_one_built_heart_and_none_starts_past_the_deadline():
    import time

    from pipeline.monodomain.throughput import measure_all

    rows = measure_all(None, [2.0], [1, 2], ["eager"], steps=2, threads=1, device="cpu",
                       timeout_s=300.0)
    assert [r["batch"] for r in rows] == [1, 2], rows
    assert rows[0]["heart"] == rows[1]["heart"] == "param000"
    assert rows[0]["n_voxels"] == rows[1]["n_voxels"] > 10_000
    assert rows[0]["resolution_mm"] == 2.0
    assert rows[0]["config"] == {"anatomy": None, "resolution_mm": 2.0, "batch": 1,
                                 "mode": "eager", "model": "monodomain", "steps_per_call": 1,
                                 "layout": "auto"}
    assert all(r["voxel_steps_per_s"] > 0 for r in rows)
    t0 = time.perf_counter()
    late = measure_all(None, [2.0], [1, 8], ["eager"], steps=2, threads=1, device="cpu",
                       deadline=t0)
    assert [r["config"]["batch"] for r in late] == [1, 8]
    assert all("skipped" in r for r in late)


def test_the_offline_gpu_script_finds_its_modules_and_names_the_missing_device(tmp_path):
    """``benchmarks/gpu_check.sh`` with this environment's Python: every module it needs is
    here, so it stops only at the missing device (exit 2), before any work."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
    done = subprocess.run(["bash", str(script), str(tmp_path / "out"), "60"],
                          env={**os.environ, "PY": sys.executable}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no CUDA device" in done.stderr and "lacks the modules" not in done.stderr
    assert not (tmp_path / "out" / "gpu_check.json").exists()


def test_gpu_check_runs_no_section_it_is_asked_to_skip(tmp_path):
    """``pipeline bench gpu --skip``: a section measured by an earlier call is recorded as
    skipped on request and not run (here every costly one, so this takes no time)."""
    import json

    from pipeline.simulate.gpucheck import SECTIONS, gpu_check

    names = SECTIONS
    result = gpu_check(tmp_path / "g.json", tmp_path / "cache", device="cpu", skip=names)
    assert all(result[n] == {"skipped": "asked (--skip)"} for n in names)
    assert json.loads((tmp_path / "g.json").read_text())["throughput"] == result["throughput"]


def test_a_packed_run_comes_back_within_its_quantum(tmp_path):
    """``benchmarks/fine_reference.py``: a cached study run split into files a lent machine
    gives back (maps as uint16 in 0.01 ms) comes back with every array, the maps within
    0.005 ms and their never-activated voxels still NaN; a map past what uint16 holds is
    refused by name."""
    import importlib.util
    import json
    from pathlib import Path

    import numpy as np

    spec = importlib.util.spec_from_file_location(
        "fine_reference", Path(__file__).resolve().parents[1] / "benchmarks" /
        "fine_reference.py")
    fr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fr)
    rng = np.random.default_rng(0)
    amap = rng.uniform(0.0, 450.0, 100_000).astype(np.float32)
    amap[::97] = np.nan
    arrays = {"patterns": json.dumps(["normal", "lbbb"]), "version": np.array(6)}
    for p in ("normal", "lbbb"):
        arrays.update({f"{p}/ecg": rng.normal(size=(12, 450)), f"{p}/act": amap[:75],
                       f"{p}/total_ms": np.array(151.0), f"{p}/map": amap})
    run = tmp_path / "heart_0.25mm_monodomain_450ms.npz"
    np.savez(run, **arrays)
    files = fr.pack(run, tmp_path / "out")
    assert len(files) == 3 and all(f.stat().st_size < fr.MAX_BYTES for f in files)
    (back,) = fr.unpack(tmp_path / "out", tmp_path / "cache")
    assert back.name == run.name
    with np.load(back) as z:
        assert set(z.files) == set(arrays)
        np.testing.assert_array_equal(z["lbbb/ecg"], arrays["lbbb/ecg"])
        got = z["normal/map"]
    assert np.array_equal(np.isnan(got), np.isnan(amap))
    assert np.nanmax(np.abs(got - amap)) <= 0.005 + 1e-4
    arrays["normal/map"] = np.full(10, 700.0, dtype=np.float32)
    np.savez(run, **arrays)
    with pytest.raises(ValueError, match="normal/map reaches 700.0 ms"):
        fr.pack(run, tmp_path / "out2")
