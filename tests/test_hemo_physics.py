"""Verification of the Simaan 2009 circulation, its LVAD and the BDF2 solver (pipeline.hemo)."""

from __future__ import annotations

import json

import pytest
import torch

from pipeline.hemo import params as P
from pipeline.hemo.circulation import initial_state, rhs_and_jacobian, stressed_volume
from pipeline.hemo.elastance import activation, activation_derivative
from pipeline.hemo.metrics import indices
from pipeline.hemo.solver import simulate

torch.set_num_threads(1)
FAST = {"n_cycles": 6, "steps_per_cycle": 100, "newton": 2}


def batch(**values: float) -> dict[str, torch.Tensor]:
    return P.full_batch({k: torch.tensor([v], dtype=torch.float64) for k, v in values.items()})


#: Rows of the unassisted batch: Simaan's preset, lower Emax, mitral stenosis, failing heart.
ROWS = {"Emax": [2.0, 1.0, 2.0, 0.8], "Rm": [0.005, 0.005, 0.06, 0.005]}
SPEEDS = [9000.0, 11000.0, 12000.0]


@pytest.fixture(scope="module")
def runs() -> dict[str, dict[str, torch.Tensor]]:
    """One batched run without a pump (ROWS) and one with the pump on the failing heart (SPEEDS)."""
    p = P.full_batch({k: torch.tensor(v, dtype=torch.float64) for k, v in ROWS.items()})
    q = P.full_batch({"Emax": torch.full((3,), 0.8, dtype=torch.float64)})
    with torch.no_grad():
        plain = simulate(p, **FAST)
        pump = simulate(q, speed_rpm=torch.tensor(SPEEDS, dtype=torch.float64), **FAST)
    out = {"plain": indices(plain), "pump": indices(pump)}
    out["plain"]["drift"] = (stressed_volume(plain.x, {k: v[:, None] for k, v in p.items()})
                             - stressed_volume(initial_state(p), p)[:, None]).abs().amax(1)
    out["pump"]["drift"] = (stressed_volume(pump.x, {k: v[:, None] for k, v in q.items()})
                            - stressed_volume(initial_state(q, torch.tensor(SPEEDS, dtype=torch.float64)), q)[:, None]
                            ).abs().amax(1)
    return out


@pytest.fixture(scope="module")
def reference(runs: dict[str, dict[str, torch.Tensor]]) -> dict[str, float]:
    return {k: float(v[0]) for k, v in runs["plain"].items()}


def test_activation_peaks_at_one_and_derivative_matches() -> None:
    tn = torch.linspace(0.0, 2.5, 20001, dtype=torch.float64)
    en = activation(tn)
    assert float(en.max()) == pytest.approx(1.0, abs=0.02)          # the 1.55 scale normalises the peak
    assert 0.9 < float(tn[en.argmax()]) < 1.1                        # peak at t = Tmax
    h = 1e-6
    inner = tn[1:-1]
    fd = (activation(inner + h) - activation(inner - h)) / (2 * h)
    assert torch.allclose(activation_derivative(inner), fd, rtol=1e-5, atol=1e-6)


def test_jacobian_and_time_derivative_match_finite_differences() -> None:
    gen = torch.Generator().manual_seed(3)
    p = P.full_batch(P.unstack(P.from_unit(torch.rand(6, 7, generator=gen, dtype=torch.float64))))
    x = torch.stack([torch.full((6,), 90.0), torch.full((6,), 12.0), torch.full((6,), 80.0),
                     torch.full((6,), 85.0), torch.full((6,), 50.0), torch.full((6,), 60.0),
                     torch.full((6,), 9000.0)], -1).to(torch.float64)
    x = x + torch.randn(6, 7, generator=gen, dtype=torch.float64) * torch.tensor([20, 3, 5, 5, 20, 20, 500.0])
    phase = torch.rand(6, generator=gen, dtype=torch.float64) * 0.3
    on = torch.ones(6, dtype=torch.float64)
    f, J, f_t = rhs_and_jacobian(phase, x, p, on)
    for j in range(7):
        h = 1e-6 * max(1.0, float(x[:, j].abs().max()))
        e = torch.zeros(7, dtype=torch.float64)
        e[j] = h
        fd = (rhs_and_jacobian(phase, x + e, p, on)[0] - rhs_and_jacobian(phase, x - e, p, on)[0]) / (2 * h)
        assert torch.allclose(J[..., j], fd, rtol=1e-5, atol=1e-4), f"column {j}"
    h = 1e-7
    fd_t = (rhs_and_jacobian(phase + h, x, p, on)[0] - rhs_and_jacobian(phase - h, x, p, on)[0]) / (2 * h)
    assert torch.allclose(f_t, fd_t, rtol=1e-4, atol=1e-3)


def test_blood_volume_is_conserved(runs: dict[str, dict[str, torch.Tensor]]) -> None:
    assert float(runs["plain"]["drift"].max()) < 1e-8
    assert float(runs["pump"]["drift"].max()) < 1e-8


def test_simaan_preset_matches_published_behaviour(reference: dict[str, float]) -> None:
    # Simaan 2009 Fig. 5: EF about 50 %, LV pressure about 6-120 mmHg, CO about 5 L/min
    assert 45.0 < reference["EF_percent"] < 56.0
    assert 4.0 < reference["plv_min_mmHg"] < 9.0
    assert 105.0 < reference["plv_max_mmHg"] < 125.0
    assert 4.5 < reference["CO_L_per_min"] < 5.5
    # at a periodic state, mean aortic flow = stroke volume x heart rate
    assert reference["CO_L_per_min"] == pytest.approx(reference["SV_mL"] * 75.0 / 1000.0, rel=2e-3)


def test_solver_matches_radau_reference(reference: dict[str, float]) -> None:
    # scipy Radau, rtol = atol = 1e-8, same equations and initial state, beat 6
    # (benchmarks/bench_hemo_reference.py reproduces these numbers)
    assert reference["EDV_mL"] == pytest.approx(132.4905, abs=0.05)
    assert reference["ESV_mL"] == pytest.approx(65.4950, abs=0.05)


def test_lower_emax_lowers_ef_and_mitral_stenosis_raises_atrial_pressure(
        runs: dict[str, dict[str, torch.Tensor]]) -> None:
    ind = runs["plain"]
    assert float(ind["EF_percent"][1]) < float(ind["EF_percent"][0]) - 5.0
    assert float(ind["pla_mean_mmHg"][2]) > float(ind["pla_mean_mmHg"][0]) + 2.0
    with torch.no_grad():                                             # batching is exact
        single = indices(simulate(batch(Emax=1.0), n_cycles=2, steps_per_cycle=50))
        pair = indices(simulate(P.full_batch({"Emax": torch.tensor([2.0, 1.0], dtype=torch.float64)}),
                                n_cycles=2, steps_per_cycle=50))
    assert float(pair["EF_percent"][1]) == pytest.approx(float(single["EF_percent"][0]), abs=1e-9)


def test_lvad_unloads_the_ventricle_and_raises_output(runs: dict[str, dict[str, torch.Tensor]]) -> None:
    base, pump = runs["plain"], runs["pump"]
    assert float(base["EF_percent"][3]) < 35.0
    assert (pump["CO_L_per_min"] > base["CO_L_per_min"][3] + 0.5).all()
    assert (pump["EDV_mL"] < base["EDV_mL"][3] - 10.0).all()
    assert float(pump["EF_percent"][-1]) > float(base["EF_percent"][3]) + 5.0
    assert (pump["pump_flow_L_per_min"] > 1.0).all()
    assert bool((pump["EDV_mL"][1:] < pump["EDV_mL"][:-1]).all())   # faster pump, more unloading


def test_gradient_through_solver_matches_finite_difference() -> None:
    def ef(emax: torch.Tensor) -> torch.Tensor:
        p = P.full_batch({"Emax": emax})
        return indices(simulate(p, n_cycles=2, steps_per_cycle=50, newton=2))["EF_percent"][0]

    emax = torch.tensor([1.5], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(ef(emax), emax)
    h = 1e-4
    with torch.no_grad():
        fd = (ef(emax + h) - ef(emax - h)) / (2 * h)
    assert float(grad[0]) > 0
    assert float(grad[0]) == pytest.approx(float(fd), rel=0.05)


def test_cli_simulate_writes_indices(tmp_path) -> None:
    from pipeline.cli import main

    out = tmp_path / "s.json"
    settings = json.dumps({"hemo": {"solver": {"n_cycles": 3, "steps_per_cycle": 50}}})
    assert main(["hemo", "simulate", "--preset", "simaan2009", "--set", "Emax=1.0", "--json", str(out),
                 "--settings", settings]) == 0
    res = json.loads(out.read_text())
    for key in ("EDV_mL", "ESV_mL", "EF_percent", "CO_L_per_min", "plv_min_mmHg", "plv_max_mmHg"):
        assert key in res
    assert res["EF_percent"] == pytest.approx(100 * (res["EDV_mL"] - res["ESV_mL"]) / res["EDV_mL"])
    assert res["EF_percent"] < 45.0
    assert main(["hemo", "simulate", "--set", "Emax=abc", "--json", str(out)]) == 1   # before any work
    assert main(["hemo", "simulate", "--set", "Bogus=1", "--json", str(out)]) == 1
    assert main(["hemo", "simulate", "--set", "Ra=-1", "--json", str(out)]) == 1
