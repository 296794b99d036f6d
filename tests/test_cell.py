"""TP06 cell model: against an independent implementation, bad inputs, steady-state file, CLI.

Reference: ../shared/data/reference/tp06_single_cell.json (last of 100 beats at 1000 ms,
stimulus -52 pA/pF x 1 ms, dt 0.01 ms, generalised Rush-Larsen, CellML-derived; see its
``description``). Every run starts from the reference's state at the start of that beat and
simulates the one beat, so the tests stay fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.cell import beat, pacing, steady, tp06
from pipeline.cli import main
from pipeline.errors import InputError, SimulationError

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "reference" / \
    "tp06_single_cell.json"
K = 5   # steps per compiled call in every test (one compilation serves all)


def _reference() -> list[dict]:
    if not REFERENCE.exists():
        pytest.skip(f"reference file {REFERENCE} not present")
    return json.loads(REFERENCE.read_text())["cases"]


def _ref_state(case: dict) -> list[float]:
    by_name = dict(zip(case["state_names"], case["initial_state"]))
    return [by_name[name] for name in tp06.STATE_NAMES]


@pytest.fixture(scope="module")
def one_beat() -> dict[float, tuple[list[dict], pacing.PacingResult]]:
    """One beat of epi, endo and M from the reference initial states at dt 0.01 and 0.05."""
    torch.set_num_threads(2)
    cases = _reference()
    state = torch.tensor([_ref_state(c) for c in cases], dtype=torch.float64).T.contiguous()
    params = tp06.make_params([c["celltype"] for c in cases])
    out = {}
    for dt in (0.01, 0.05):
        out[dt] = (cases, pacing.pace(state, params, 1000.0, dt_ms=dt, beats=1,
                                      steps_per_call=K, progress=False))
    return out


@pytest.mark.parametrize("index", [0, 1, 2])
def test_matches_reference_at_dt_001(one_beat, index):
    cases, res = one_beat[0.01]
    case = cases[index]
    fig = beat.figures(res.traces[index], 0.01)
    assert abs(fig["APD90_ms"] - case["APD90_ms"]) < 0.01 * case["APD90_ms"]
    assert abs(fig["Vrest_mV"] - case["Vrest_mV"]) < 0.5
    assert abs(fig["Vpeak_mV"] - case["Vpeak_mV"]) < 2.0
    assert abs(fig["APD50_ms"] - case["APD50_ms"]) < 0.01 * case["APD50_ms"]
    assert abs(fig["dVdt_max_V_per_s"] - case["dVdt_max_V_per_s"]) < 0.05 * \
        case["dVdt_max_V_per_s"]
    trace = beat.resample(res.traces[index], 0.01, case["trace_dt_ms"])
    ref = np.asarray(case["trace_mV"])
    assert trace.shape == ref.shape
    assert np.sqrt(np.mean((trace - ref) ** 2)) < 1.5
    # after one beat the reference's steady state is (nearly) reproduced
    rel = np.abs(res.state_end[:, index].numpy() - _ref_state(case)) / np.abs(_ref_state(case))
    assert rel.max() < 5e-3


@pytest.mark.parametrize("index", [0, 1, 2])
def test_apd90_at_tissue_dt(one_beat, index):
    cases, res = one_beat[0.05]
    case = cases[index]
    apd90 = beat.apd(res.traces[index], 0.05, 90.0)
    assert abs(apd90 - case["APD90_ms"]) < 0.02 * case["APD90_ms"]


def test_celltypes_differ_as_in_the_paper(one_beat):
    cases, res = one_beat[0.01]
    apd = {c["celltype"]: beat.apd(t, 0.01, 90.0) for c, t in zip(cases, res.traces)}
    assert apd["M"] > apd["epi"] + 80.0          # low g_Ks: the M cell's long AP
    p = tp06.make_params(torch.tensor([1, 2, 3]))
    assert p.g_to.tolist() == [0.073, 0.294, 0.294]
    assert p.g_Ks.tolist() == [0.392, 0.098, 0.392]
    assert p.endo.tolist() == [1.0, 0.0, 0.0]


def test_compiled_pacing_equals_eager_step():
    state = tp06.initial_state(["endo", "M", "epi"])
    params = tp06.make_params(["endo", "M", "epi"], g_Kr=torch.tensor([1.0, 0.5, 0.0]))
    res = pacing.pace(state, params, 2.0, dt_ms=0.01, beats=1, steps_per_call=K,
                      progress=False)
    eager = state.clone()
    for n in range(200):
        eager = tp06.step(eager, params, -52.0 if n < 100 else 0.0, 0.01)
    torch.testing.assert_close(res.state_end, eager, rtol=1e-9, atol=1e-12)
    # a batch of any shape, per-voxel cell types, float32
    codes = torch.tensor([[1, 2, 3, 3], [3, 2, 1, 1]])
    s32 = tp06.initial_state(codes, dtype=torch.float32)
    out = tp06.step(s32, tp06.make_params(codes, dtype=torch.float32), -52.0, 0.02)
    assert out.shape == (19, 2, 4) and out.dtype == torch.float32
    torch.testing.assert_close(out[:, 0, 0].double(), tp06.step(
        state[:, :1], tp06.make_params("endo"), -52.0, 0.02)[:, 0], rtol=1e-5, atol=1e-6)


def test_resting_cell_stays_at_rest():
    state = tp06.initial_state(["endo", "M", "epi"])
    params = tp06.make_params(["endo", "M", "epi"])
    out = state
    for _ in range(50):
        out = tp06.step(out, params, 0.0, 0.1)
    assert (out[0] - state[0]).abs().max() < 0.05      # mV over 5 ms


def test_bad_inputs_give_clear_errors():
    with pytest.raises(InputError, match="unknown cell type 'Purkinje'"):
        tp06.make_params("Purkinje")
    with pytest.raises(InputError, match="unknown cell-type code 0"):
        tp06.initial_state(torch.tensor([1, 0, 3]))
    with pytest.raises(InputError, match="unknown TP06 parameter"):
        tp06.make_params("epi", g_XX=2.0)
    state = tp06.initial_state("epi", (3,))
    params = tp06.make_params("epi")
    with pytest.raises(InputError, match="dt must be positive"):
        tp06.step(state, params, 0.0, 0.0)
    with pytest.raises(InputError, match="dt"):
        pacing.pace(state, params, 1000.0, dt_ms=-0.01, beats=1)
    with pytest.raises(InputError, match="19"):
        tp06.step(state[:18], params, 0.0, 0.01)
    with pytest.raises(InputError, match="broadcast"):
        pacing.pace(state, tp06.make_params("epi", g_Kr=torch.ones(4)), 1000.0, beats=1)
    with pytest.raises(InputError, match="whole number of time steps"):
        pacing.pace(state, params, 1000.005, dt_ms=0.01, beats=1)


def test_blow_up_names_state_and_index():
    state = tp06.initial_state("epi", (2, 3))
    bad = state.clone()
    bad[tp06.STATE_INDEX["Ca_i"], 1, 2] = float("nan")
    with pytest.raises(SimulationError, match=r"Ca_i is nan at batch index \(1, 2\)"):
        tp06.check_state(bad, "t = 5 ms")
    bad = state.clone()
    bad[0, 0, 1] = 250.0
    with pytest.raises(SimulationError, match=r"V = 250.0 mV .* index \(0, 1\)"):
        tp06.check_state(bad)
    # a negative concentration turns into NaN during pacing and is caught at the beat's end
    cells = tp06.initial_state("epi", (3,))
    cells[tp06.STATE_INDEX["Na_i"], 2] = -1.0
    with pytest.raises(SimulationError, match=r"blow-up at t = 2.00 ms .*index \(2,\)"):
        pacing.pace(cells, tp06.make_params("epi"), 2.0, dt_ms=0.01, beats=1,
                    steps_per_call=K, progress=False)


def test_steady_state_file_round_trip_and_lookup(tmp_path):
    rng = np.random.default_rng(0)
    table = steady.InitialStates(
        states=rng.random((2, 2, 3, 19)), celltypes=("endo", "epi"),
        bcl_ms=np.array([600.0, 1000.0]), gkr_scale=np.array([0.0, 0.5, 1.0]),
        extras={"beats": np.full((2, 2, 3), 100)}, attrs={"dt_ms": 0.02})
    path = tmp_path / "initial_states.h5"
    steady.write_initial_states(path, table, {"dt_ms": 0.02})
    back = steady.read_initial_states(path)
    np.testing.assert_array_equal(back.states, table.states)
    assert back.celltypes == ("endo", "epi") and back.attrs["dt_ms"] == 0.02
    codes = torch.tensor([3, 1, 3, 3])
    out = steady.initial_states_for(back, codes, torch.tensor([[1000.0], [600.0]]),
                                    torch.tensor([[0.5], [1.0]]))
    assert out.shape == (19, 2, 4)
    np.testing.assert_array_equal(out[:, 0, 0].numpy(), table.states[1, 1, 1])
    np.testing.assert_array_equal(out[:, 1, 1].numpy(), table.states[0, 0, 2])
    with pytest.raises(InputError, match="BCL \\(ms\\) 800 is not in the steady-state table"):
        steady.initial_states_for(back, codes, 800.0, 1.0)
    with pytest.raises(InputError, match="cell type M is not in"):
        steady.initial_states_for(back, torch.tensor([2]), 600.0, 1.0)
    with pytest.raises(InputError, match="does not exist"):
        steady.read_initial_states(tmp_path / "none.h5")


def test_cell_cli_json(tmp_path):
    out = tmp_path / "cells.json"
    rc = main(["cell", "--celltype", "epi", "M", "--bcl", "200", "--gkr-scale", "1", "0",
               "--beats", "1", "--dt", "0.05", "--steps-per-call", str(K), "--json", str(out)])
    assert rc == 0
    records = json.loads(out.read_text())
    assert len(records) == 4
    assert [(r["celltype"], r["gkr_scale"]) for r in records] == [
        ("epi", 1.0), ("epi", 0.0), ("M", 1.0), ("M", 0.0)]
    for r in records:
        assert list(r) == ["celltype", "bcl_ms", "gkr_scale", "Vrest_mV", "Vpeak_mV",
                           "dVdt_max_V_per_s", "APD50_ms", "APD90_ms", "trace_mV",
                           "trace_dt_ms"]
        assert len(r["trace_mV"]) == 2000 and r["trace_dt_ms"] == 0.1
        assert r["Vpeak_mV"] > 20.0
    assert main(["cell", "--celltype", "Purkinje", "--json", str(out)]) == 1
    assert main(["cell", "--dt", "0", "--json", str(out)]) == 1


def test_cells_stage(tmp_path):
    out = tmp_path / "initial_states.h5"
    settings = json.dumps({"cells": {"celltypes": ["endo", "M", "epi"], "bcl_ms": [600],
                                     "gkr_scale": [0.5, 1.0], "dt_ms": 0.05, "min_beats": 2,
                                     "max_beats": 3, "tolerance_mV": 200.0}})
    assert main(["cells", "--out", str(out), "--settings", settings,
                 "--steps-per-call", str(K)]) == 0
    table = steady.read_initial_states(out)
    assert table.states.shape == (3, 1, 2, 19)
    assert (table.extras["beats"] == 2).all() and table.extras["converged"].all()
    apd90 = table.extras["apd90_ms"]
    assert (apd90[[0, 2], 0, 0] > apd90[[0, 2], 0, 1] + 10.0).all()  # G_Kr block: longer AP
    assert np.isfinite(table.states).all()
