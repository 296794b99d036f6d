"""The native CPU kernel of the explicit step (pipeline.monodomain.native).

Checked against the torch step it replaces (float32 round-off, with the float64 step as the
truth both are measured against), against the independent single-cell reference
(../shared/data/reference/tp06_single_cell.json), for NaN propagation into the solver's
blow-up check, and for its build: cached, keyed, and a failing compiler falls back to
torch.compile with the reason logged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.cell import beat, tp06
from pipeline.errors import SimulationError
from pipeline.monodomain import native
from pipeline.monodomain.problem import Conductivities, Grid, MonodomainProblem
from pipeline.monodomain.solver import MonodomainSolver
from pipeline.monodomain.stimulus import Stimulus

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "reference" / \
    "tp06_single_cell.json"
EPI = tp06.initial_state("epi", dtype=torch.float64).numpy()


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _box(duration: float = 14.0) -> MonodomainProblem:
    """A 5 x 1.5 x 0.75 mm block of mixed cell types, stimulated at one end, two beats."""
    shape, dx = (20, 6, 3), 0.25
    mask = np.ones(shape, dtype=bool)
    n = int(mask.sum())
    stim = Stimulus(voxels=np.arange(18), start_ms=0.0, duration_ms=2.0, amplitude=-80.0)
    late = Stimulus(voxels=np.arange(18), start_ms=1.0, duration_ms=2.0, amplitude=-80.0)
    celltype = (np.arange(n) % 3 + 1).astype(np.uint8)            # endo, M, epi mixed
    init = np.stack([tp06.initial_state(c, dtype=torch.float64).numpy()
                     for c in ("endo", "M", "epi")])
    return MonodomainProblem(
        grid=Grid(origin=np.zeros(3), spacing=np.full(3, dx), mask=mask),
        fibre=np.tile((0.8, 0.6, 0.0), (n, 1)),
        conductivities=Conductivities(sigma_l=np.array([0.2, 0.15]),
                                      sigma_t=np.array([0.05, 0.04]),
                                      sigma_fast_endo=np.array([0.2, 0.15])),
        celltype=celltype,
        initial_states=np.stack([np.concatenate([init[:1], init]) for _ in range(2)]),
        stimuli=((stim,), (late,)), dt_ms=0.02, duration_ms=duration)


def test_the_kernel_takes_the_parameters_in_the_order_of_tp06params():
    assert tuple(f.name for f in dataclasses.fields(tp06.TP06Params)) == native.PARAM_ORDER


def test_the_native_step_agrees_with_the_torch_step_to_float32_round_off():
    """Two simulations through a block while the fronts cross it: the native kernel's
    state is as close to the float64 torch step as the float32 torch step is, and its
    activation times equal the float32 step's to round-off."""
    problem = _box()
    runs = {}
    for name, kw in {"native": {"compile": True, "dtype": torch.float32},
                     "torch32": {"dtype": torch.float32},
                     "torch64": {"dtype": torch.float64}}.items():
        solver = MonodomainSolver(problem, **kw)
        assert solver.kernel == ("native" if name == "native" else "eager")
        runs[name] = solver.run()
    truth = runs["torch64"]
    act = {k: r.activation_ms for k, r in runs.items()}
    assert np.isfinite(act["torch64"]).mean() > 0.5                 # fronts did cross
    assert np.array_equal(np.isnan(act["native"]), np.isnan(act["torch32"]))
    assert np.nanmax(np.abs(act["native"] - act["torch32"])) < 1e-3
    err = {k: np.abs(runs[k].v_final - truth.v_final).max() for k in ("native", "torch32")}
    assert err["native"] < 2.0 * err["torch32"] + 1e-3, err
    # repolarisation times agree as well (none yet in 14 ms: both all NaN)
    assert np.array_equal(np.isnan(runs["native"].repolarisation_ms),
                          np.isnan(runs["torch32"].repolarisation_ms))


def test_with_the_diffusion_current_given_the_kernel_is_the_pointwise_torch_kernel():
    """The shared-table path: the current comes from outside, the kernel does the rest; it
    is as close to the float64 torch step as the float32 torch step is."""
    from pipeline.monodomain.splitting import crossings, diffusion_current
    problem = _box()
    solver = MonodomainSolver(problem)
    state = solver.initial_state()
    state[0, :, :18] = 10.0                                 # an upstroke under way
    act = torch.full(state.shape[1:], math.nan)
    rep = torch.full_like(act, math.nan)
    d = solver.space
    i_diff = diffusion_current(state[0], d.neighbour, d.coef, d.diff_factor)
    i_stim = torch.zeros_like(act)
    t = torch.tensor(3.0)
    step = native.NativeStep(solver.params, None, None, d.diff_factor, problem.dt_ms,
                             solver.v_rep, problem.batch, problem.grid.n_tissue)
    got = step(state, act, rep, t, i_stim, i_diff)

    def torch_step(dtype):
        params = solver.params.to(dtype=dtype)
        new = tp06.step_states(state.to(dtype).unbind(0), params, i_stim.to(dtype),
                               problem.dt_ms)
        v_new = new[0] + problem.dt_ms * i_diff.to(dtype)
        a, _ = crossings(state[0].to(dtype), v_new, act.to(dtype), rep.to(dtype),
                         t.to(dtype), problem.dt_ms, solver.v_rep)
        return torch.stack((v_new, *new[1:])), a
    want32, act32 = torch_step(torch.float32)
    truth, _ = torch_step(torch.float64)
    err_native = (got[0].double() - truth).abs().flatten(1).amax(1)
    err_torch = (want32.double() - truth).abs().flatten(1).amax(1)
    scale = truth.abs().flatten(1).amax(1)
    # float32 round-off: within a few times the torch step's own error, or 1e-5 of the
    # state's size (an ulp amplified by the gates' exponentials)
    bad = ~(err_native <= 4.0 * err_torch + 1e-5 * scale)
    assert not bool(bad.any()), [(tp06.STATE_NAMES[i], float(err_native[i]), float(err_torch[i]))
                                 for i in torch.nonzero(bad).flatten()]
    assert torch.equal(torch.isnan(got[1]), torch.isnan(act32))
    assert float((got[1] - act32).nan_to_num().abs().max()) < 1e-5


def _reference() -> list[dict]:
    if not REFERENCE.exists():
        pytest.skip(f"reference file {REFERENCE} not present")
    return json.loads(REFERENCE.read_text())["cases"]


def test_one_cell_of_each_type_matches_the_independent_reference():
    """The kernel without diffusion is TP06 in float32: one beat of epi, endo and M from
    the reference's initial states, dt 0.01 ms, the reference's stimulus (-52 pA/pF, 1 ms)."""
    cases = _reference()
    by_name = [dict(zip(c["state_names"], c["initial_state"])) for c in cases]
    state = torch.tensor([[s[k] for k in tp06.STATE_NAMES] for s in by_name],
                         dtype=torch.float32).T.contiguous()[:, None, :]     # (19, 1, 3)
    params = tp06.make_params([c["celltype"] for c in cases], dtype=torch.float32)
    dt, steps = 0.01, 100_000
    step = native.NativeStep(params, None, None, 1.0, dt, -70.0, 1, len(cases))
    act = torch.full((1, len(cases)), math.nan)
    rep = torch.full_like(act, math.nan)
    zero, stim = torch.zeros_like(act), torch.full_like(act, -52.0)
    trace = np.empty((steps + 1, len(cases)), dtype=np.float32)
    trace[0] = state[0, 0].numpy()
    for k in range(steps):
        state, act, rep = step(state, act, rep, k * dt, stim if k * dt < 1.0 else zero, zero)
        trace[k + 1] = state[0, 0].numpy()
    for i, case in enumerate(cases):
        fig = beat.figures(trace[:, i].astype(np.float64), dt)
        assert abs(fig["APD90_ms"] - case["APD90_ms"]) < 0.01 * case["APD90_ms"]
        assert abs(fig["Vrest_mV"] - case["Vrest_mV"]) < 0.5
        assert abs(fig["Vpeak_mV"] - case["Vpeak_mV"]) < 2.0
        ref = np.asarray(case["trace_mV"])
        got = beat.resample(trace[:, i].astype(np.float64), dt, case["trace_dt_ms"])
        assert np.sqrt(np.mean((got - ref) ** 2)) < 1.5
    assert np.isfinite(act).all() and np.isfinite(rep).all()   # each cell fired and recovered


def test_a_nan_in_any_state_reaches_the_solvers_blow_up_check():
    problem = _box(2.0)
    solver = MonodomainSolver(problem, compile=True, check_every=5)
    assert solver.kernel == "native"
    state = solver.initial_state()
    state[tp06.STATE_INDEX["Ca_SR"], 1, 40] = math.nan
    with pytest.raises(SimulationError, match="simulation 1"):
        solver.run(state=state)


def test_the_build_is_cached_and_keyed_by_its_flags(tmp_path):
    first = native.build(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert native.build(tmp_path) == first and first.stat().st_mtime_ns == stamp
    tag, flags = native.isa_flags()
    assert first.name.startswith(f"tp06_step_{tag}_")
    assert not list(tmp_path.glob(".*.tmp"))                  # no half-written file left


def test_without_a_working_compiler_the_solver_falls_back_to_torch_compile(
        tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CXX", "false")                        # a compiler that always fails
    monkeypatch.setenv("PIPELINE_NATIVE_CACHE", str(tmp_path))
    native.library.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="pipeline.monodomain.solver"):
            solver = MonodomainSolver(_box(1.0), compile=True)
        assert solver.kernel == "compiled"
        assert "native CPU kernel unavailable" in caplog.text and "failed" in caplog.text
        ok, why = native.available()
        assert not ok and "native_step.cpp" in why
    finally:
        native.library.cache_clear()
