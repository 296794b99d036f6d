"""The split solver: stability limit, batches, on-line activation times, faults, Niederer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.cell import tp06
from pipeline.errors import InputError, SimulationError
from pipeline.monodomain.problem import Conductivities, Grid, MonodomainProblem
from pipeline.monodomain.solver import MonodomainSolver
from pipeline.monodomain.stimulus import (Stimulus, StimulusSchedule, volume_to_membrane,
                                          window_current)

EPI = tp06.initial_state("epi", dtype=torch.float64).numpy()


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one thread avoids OpenMP barrier costs on a shared, busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _box(shape, dx, sigma_l, sigma_t, dt, duration, stim_voxels=(0,), fibre=(1.0, 0, 0),
         init=EPI):
    mask = np.ones(shape, dtype=bool)
    n = int(mask.sum())
    sl, st = np.atleast_1d(sigma_l), np.atleast_1d(sigma_t)
    b = sl.size
    stim = Stimulus(voxels=np.array(stim_voxels), start_ms=0.0, duration_ms=2.0, amplitude=-80.0)
    return MonodomainProblem(
        grid=Grid(origin=np.zeros(3), spacing=np.full(3, dx), mask=mask),
        fibre=np.tile(fibre, (n, 1)),
        conductivities=Conductivities(sigma_l=sl, sigma_t=st, sigma_fast_endo=sl),
        celltype=np.full(n, 3, dtype=np.uint8),
        initial_states=np.broadcast_to(init, (b, 4, init.size)).copy(),
        stimuli=tuple((stim,) for _ in range(b)), dt_ms=dt, duration_ms=duration)


def test_stability_limit_is_exact_and_enforced():
    """For isotropic sigma on a box the Neumann spectrum is known in closed form."""
    shape, dx, sigma = (12, 5, 4), 0.2, 0.2
    d = 100.0 * sigma / 140.0                                     # mm^2/ms
    lam = sum(d / dx**2 * 4 * math.sin(math.pi * (m - 1) / (2 * m)) ** 2 for m in shape)
    limit = 2.0 / lam
    ok = MonodomainSolver(_box(shape, dx, sigma, sigma, 0.99 * limit, 1.0))
    assert ok.dt_limit_ms[0] == pytest.approx(limit, rel=1e-3)
    with pytest.raises(InputError, match="stability limit of explicit diffusion") as err:
        MonodomainSolver(_box(shape, dx, sigma, sigma, 1.01 * limit, 1.0))
    named = float(str(err.value).split("explicit diffusion, ")[1].split(" ms")[0])
    assert named == pytest.approx(limit, rel=1e-3)
    # the implicit option accepts it
    MonodomainSolver(_box(shape, dx, sigma, sigma, 1.01 * limit, 1.0), diffusion="implicit")


def test_constant_state_stays_at_rest_without_stimulus():
    p = _box((6, 3, 2), 0.5, 0.2, 0.05, 0.05, 5.0)
    p = MonodomainProblem(**{**p.__dict__, "stimuli": ((),)})
    res = MonodomainSolver(p).run()
    single = EPI.copy()
    st = torch.tensor(single)[:, None]
    params = tp06.make_params("epi")
    for _ in range(100):
        st = tp06.step(st, params, 0.0, 0.05)
    # tissue at rest evolves exactly like one cell (diffusion of a uniform field is zero)
    assert np.allclose(res.v_final, float(st[0, 0]), atol=2e-4)


def test_online_activation_matches_recorded_crossings_and_batch_matches_single():
    """On-line activation times equal crossings found from V recorded every step, and a
    simulation in a batch equals the same simulation run alone."""
    dx, dt = 0.5, 0.05
    batch = _box((16, 1, 1), dx, [0.15, 0.3], [0.15, 0.3], dt, 20.0, stim_voxels=(0, 1))
    traces = []
    res = MonodomainSolver(batch, dtype=torch.float64).run(
        lambda t, v: traces.append((t, v.clone())), record_every=1)
    t = np.array([x[0] for x in traces])
    v = torch.stack([x[1] for x in traces]).numpy()               # (T, B, n)
    for b in range(2):
        for i in range(16):
            k = np.flatnonzero((v[:-1, b, i] < 0) & (v[1:, b, i] >= 0))[0]
            expected = t[k] + dt * v[k, b, i] / (v[k, b, i] - v[k + 1, b, i])
            assert res.activation_ms[b, i] == pytest.approx(expected, abs=1e-5)
    # faster with larger sigma, and roughly like sqrt(sigma)
    cv = [(14 - 4) * dx / (res.activation_ms[b, 14] - res.activation_ms[b, 4]) for b in range(2)]
    assert 1.2 < cv[1] / cv[0] < 1.6
    alone = _box((16, 1, 1), dx, 0.3, 0.3, dt, 20.0, stim_voxels=(0, 1))
    res1 = MonodomainSolver(alone, dtype=torch.float64).run()
    assert np.allclose(res1.activation_ms[0], res.activation_ms[1], atol=1e-9)


def test_blow_up_names_simulation_step_and_voxel():
    bad = EPI.copy()
    bad[0] = 250.0                                                # |V| > 200 mV
    p = _box((4, 2, 2), 0.5, [0.2, 0.2], [0.05, 0.05], 0.05, 2.0)
    init = np.array(p.initial_states)
    init[1, 3] = bad                                              # simulation 1, epi cells
    p2 = MonodomainProblem(**{**p.__dict__, "initial_states": init, "stimuli": ((), ())})
    with pytest.raises(SimulationError, match=r"simulation 1 .*step 1 .*tissue voxel 0"):
        MonodomainSolver(p2, check_every=1).run()


def test_bad_problems_fail_before_any_step():
    p = _box((4, 2, 2), 0.5, 0.2, 0.05, 0.05, 2.0)
    with pytest.raises(InputError, match="does not match the mask"):
        MonodomainProblem(**{**p.__dict__, "fibre": np.ones((3, 4, 2, 3))})
    with pytest.raises(InputError, match="no tissue"):
        Grid(origin=np.zeros(3), spacing=np.ones(3), mask=np.zeros((3, 3, 3), dtype=bool))
    with pytest.raises(InputError, match="sigma_l"):
        Conductivities(sigma_l=[0.1], sigma_t=[0.2], sigma_fast_endo=[0.5])
    with pytest.raises(InputError, match="outside the 16 tissue voxels"):
        MonodomainProblem(**{**p.__dict__, "stimuli": ((Stimulus(voxels=[16], start_ms=0.0),),)})


def test_stimulus_charge_is_independent_of_dt():
    """The schedule delivers amplitude x duration per voxel whatever dt (overlap weighting)."""
    stim = Stimulus(voxels=[0, 2], start_ms=0.13, duration_ms=1.0, amplitude=-10.0,
                    weights=[1.0, 0.5])
    for dt in (0.05, 0.07, 0.3):
        sched = StimulusSchedule([[stim]], 3, dtype=torch.float64, device="cpu")
        total = sum(sched.current(k * dt, dt).clone() * dt for k in range(int(3 / dt)))
        assert torch.allclose(total[0], torch.tensor([-10.0, 0.0, -5.0], dtype=torch.float64))
    assert volume_to_membrane(50.0, 140.0, 1.0) == pytest.approx(35.714, rel=1e-4)


def test_the_niederer_points_are_read_trilinearly_and_a_linear_field_exactly():
    """``interpolate`` at one point (a float) and at many (an array, one field build): a
    linear field is reproduced exactly, inside the voxel centres' box and outside it (P1
    at the slab's corner lies half a voxel outside the centres)."""
    from pipeline.monodomain.niederer import interpolate, points, slab_problem

    grid = slab_problem(0.5, 0.05).grid
    slope = np.array([1.0, 2.0, -0.5])
    linear = grid.xyz @ slope + 3.0
    pts = np.array(list(points().values()))
    np.testing.assert_allclose(interpolate(grid, linear, pts), pts @ slope + 3.0, atol=1e-12)
    one = interpolate(grid, linear, tuple(pts[0]))
    assert isinstance(one, float) and one == pytest.approx(3.0, abs=1e-12)


def test_niederer_dx05_runs_and_is_plausible():
    """Niederer et al. 2011 at dx 0.5 mm, dt 0.05 ms (compiled step).

    At this coarse grid finite-difference codes activate late; the published spread at
    dx 0.5 runs up to well over 100 ms for P8 while the converged answer is ~43 ms.
    """
    from pipeline.monodomain.niederer import run_niederer
    res = run_niederer(0.5, 0.05, compile=True)
    t = res.times_ms
    assert t["P1"] < 3.0
    corners = [t[f"P{i}"] for i in range(1, 9)]
    assert max(corners) == t["P8"]
    assert 43.0 < t["P8"] < 160.0
    assert t["P1"] < t["P9"] < t["P8"]


def test_implicit_diffusion_agrees_with_explicit_on_a_cable():
    """Backward-Euler diffusion (CG) gives the same activation as the explicit step."""
    p = _box((16, 1, 1), 0.5, 0.3, 0.3, 0.05, 14.0, stim_voxels=(0, 1))
    exp = MonodomainSolver(p, dtype=torch.float64).run().activation_ms[0]
    imp = MonodomainSolver(p, dtype=torch.float64, diffusion="implicit").run().activation_ms[0]
    assert np.isfinite(exp).all() and np.isfinite(imp).all()
    assert np.abs(exp - imp).max() < 0.5
    assert np.abs(exp - imp).max() > 0.0                         # a different scheme indeed


def test_activation_stimulus_fires_every_voxel_at_its_own_time():
    """R-E+ drive: a stimulus at each voxel's given time; with diffusion too weak to
    propagate (a 2 mm cable at 0.005 S/m), each voxel upstrokes just after its own time."""
    from pipeline.monodomain.stimulus import ActivationStimulus

    problem = _box((6, 1, 1), 2.0, 0.005, 0.005, 0.05, 40.0)
    times = torch.tensor([[0.0, 5.0, 11.0, 12.5, 20.0, float("nan")]], dtype=torch.float32)
    drive = ActivationStimulus(times, amplitude=-60.0, duration_ms=2.0)
    assert drive.last_off_ms == pytest.approx(22.0)
    i0 = drive.current(10.0, 0.5)
    assert float(i0.abs().sum()) == 0.0                              # nobody on in [10, 10.5)
    part = drive.current(10.75, 0.5)                                 # voxel 2 on for 0.25 ms
    assert float(part[0, 2]) == pytest.approx(-60.0 * 0.25 / 0.5)
    res = MonodomainSolver(problem, stimulus=drive).run()
    lag = res.activation_ms[0, :5] - times[0, :5].numpy()
    assert np.all((lag > 0.0) & (lag < 2.0)), lag
    assert np.isnan(res.activation_ms[0, 5])                          # never stimulated
    with pytest.raises(InputError, match="duration"):
        ActivationStimulus(times, amplitude=-60.0, duration_ms=0.0)
    # the gate: a voxel at or above gate_mV gets no current, one below gets the pulse
    v = torch.tensor([[-85.0, -85.0, -30.0, -85.0, -85.0, -85.0]])
    gated = drive.current(11.0, 0.5, v)
    assert float(gated[0, 2]) == 0.0 and float(drive.current(11.0, 0.5)[0, 2]) == -60.0
    with pytest.raises(InputError, match="gate_mV"):
        ActivationStimulus(times, amplitude=-60.0, duration_ms=2.0, gate_mV=10.0)
    # the same drive from its window, as a multi-step call evaluates it (0-d tensor times)
    start, end, amplitude, gate = drive.window
    inside = window_current(start, end, torch.tensor(11.0), torch.tensor(11.5), 0.5,
                            amplitude, gate, v)
    assert torch.equal(inside, gated)


def test_a_batch_schedule_gives_each_simulation_the_sum_of_its_pulses():
    """The (B, n) current of a batch with overlapping, weighted and repeated stimuli
    equals, at every step, the sum over each simulation's pulses of amplitude x weight x
    the fraction of the step the pulse overlaps, computed here pulse by pulse."""
    rng = np.random.default_rng(3)
    n, batch, dt = 40, 5, 0.07
    def draw(kind: int) -> Stimulus:
        voxels = rng.choice(n, size=int(rng.integers(1, 12)), replace=False)
        return Stimulus(voxels=voxels, start_ms=float(rng.uniform(0, 3)),
                        duration_ms=float(rng.uniform(0.1, 1)),
                        amplitude=float(rng.uniform(-60, -5)),
                        weights=rng.uniform(0.2, 1.0, voxels.size) if kind == 1 else None,
                        period_ms=2.5 if kind == 2 else None, count=2)

    stimuli = [[draw(k) for k in range(int(rng.integers(0, 4)))] for _ in range(batch)]
    schedule = StimulusSchedule(stimuli, n, dtype=torch.float64, device="cpu")
    assert any(len(s) > 1 for s in stimuli)
    for k in range(int(7 / dt)):
        t0, t1 = k * dt, (k + 1) * dt
        want = np.zeros((batch, n))
        for b, sims in enumerate(stimuli):
            for s in sims:
                w = np.ones(s.voxels.size) if s.weights is None else s.weights
                for on, off in s.pulses():
                    frac = max(0.0, min(off, t1) - max(on, t0)) / dt
                    np.add.at(want[b], s.voxels, s.amplitude * w * frac)
        np.testing.assert_allclose(schedule.current(t0, dt).numpy(), want, atol=1e-12)
        assert schedule.quiet(t0, t1) == (not want.any())


def test_a_site_stimulus_is_quiet_exactly_where_its_current_is_zero():
    """StimulusSchedule.quiet(t0, t1): no pulse overlaps [t0, t1), so a multi-step call may
    skip the stimulus there; checked against the per-step current over a train of pulses."""
    stim = Stimulus(voxels=np.array([0, 1]), start_ms=1.0, duration_ms=2.0, amplitude=-50.0,
                    period_ms=10.0, count=3)
    schedule = StimulusSchedule([[stim], []], 4, dtype=torch.float64, device="cpu")
    dt = 0.25
    on = [bool(schedule.current(i * dt, dt).abs().sum() > 0) for i in range(160)]
    assert sum(on) == 3 * 8
    for k in (1, 4, 7):
        for i in range(0, 160 - k):
            assert schedule.quiet(i * dt, (i + k) * dt) == (not any(on[i:i + k])), (k, i)


def test_the_gated_drive_reproduces_the_propagated_action_potential():
    """An epicardial 0.25 mm cable: the monodomain's own propagated upstroke, then R-E+
    driven at the monodomain's activation times. The gated drive (-60 pA/pF, let go at
    -40 mV) gives the propagated peak and notch back within 1 mV (measured 0.1 and 0.2);
    an ungated 2 ms pulse adds to the sodium current through the upstroke (peak +79 mV
    instead of +22, 6 ms later +37 instead of +15), the overshoot that shortened R-E+
    APD90 by 9-11 ms (docs/fidelity-log.md, "Session 7: the R-E+ drive")."""
    from dataclasses import replace

    from pipeline.monodomain.cv import cable_problem
    from pipeline.monodomain.stimulus import ActivationStimulus

    p = replace(cable_problem(np.array([0.13]), 0.25, 0.04, length_mm=10.0, celltype="epi"),
                duration_ms=20.0)
    mid = p.grid.n_tissue // 2

    def trace(stimulus=None):
        out = []
        res = MonodomainSolver(p, dtype=torch.float64, stimulus=stimulus).run(
            callback=lambda t, v: out.append(float(v[0, mid])), record_every=1)
        return res, np.array(out)

    mono, v_mono = trace()
    act = torch.as_tensor(mono.activation_ms)
    assert np.isfinite(mono.activation_ms).all()
    k = int(round(mono.activation_ms[0, mid] / 0.04))          # records every step
    for gate, close in ((-40.0, True), (None, False)):
        res, v = trace(ActivationStimulus(act, -60.0, 2.0, gate_mV=gate))
        assert abs(res.activation_ms[0, mid] - mono.activation_ms[0, mid]) < 0.5
        peak, notch = v.max() - v_mono.max(), v[k + 150] - v_mono[k + 150]   # notch: +6 ms
        print(f"gate {gate}: peak {v.max():.1f} (propagated {v_mono.max():.1f}) mV, "
              f"6 ms later {v[k + 150]:.1f} ({v_mono[k + 150]:.1f}) mV")
        if close:
            assert abs(peak) < 1.0 and abs(notch) < 1.0, (peak, notch)
        else:
            assert peak > 30.0 and notch > 5.0, (peak, notch)


def test_shared_coefficient_tables_give_the_per_simulation_result():
    """Four simulations differing only by sigma_l, sigma_t on an anisotropic slab: the
    batch keeps two shared tables (iso, fibre) instead of four, less memory, and the same
    activation and V as per-simulation tables, to float32 round-off."""
    p = _box((10, 6, 2), 0.5, [0.15, 0.2, 0.25, 0.3], [0.05, 0.04, 0.06, 0.03], 0.05, 12.0,
             stim_voxels=(0, 1, 2), fibre=(0.8, 0.6, 0.0))
    res, solvers = {}, {}
    for share in (False, True):
        solvers[share] = MonodomainSolver(p, share_tables=share)
        res[share] = solvers[share].run()
    assert solvers[True].space.coef.shape[0] == 2 and solvers[False].space.scales is None
    assert solvers[True].space.table_bytes < 0.6 * solvers[False].space.table_bytes
    act, shared = res[False].activation_ms, res[True].activation_ms
    assert np.isfinite(act).mean() > 0.5                               # the wave went far
    np.testing.assert_array_equal(np.isnan(shared), np.isnan(act))
    assert np.nanmax(np.abs(shared - act)) < 1e-3                                     # ms
    assert np.abs(res[True].v_final - res[False].v_final).max() < 1e-2              # mV
    assert MonodomainSolver(p).space.scales is None          # CPU default: per simulation


def test_a_cable_whose_wave_dies_stops_when_nothing_can_activate_any_more():
    """stop_when_activated on a blocking cable (0.01 S/m at 2 mm): the run ends once every
    voxel is back below QUIESCENT_MV after the stimulus, long before its duration (sized
    for the slowest CV worth measuring), with the unreached voxels NaN; a conducting cable
    (0.8 S/m) still ends when its far end has activated."""
    from pipeline.monodomain.cv import cable_problem
    from pipeline.monodomain.solver import QUIESCENT_MV, MonodomainSolver

    blocked = cable_problem(np.array([0.01]), 2.0, 0.1, length_mm=20.0, min_cv_mm_per_ms=0.02)
    assert blocked.duration_ms == pytest.approx(1010.0)
    result = MonodomainSolver(blocked, check_every=50).run(stop_when_activated=True)
    assert result.t_end_ms < 0.5 * blocked.duration_ms, result.t_end_ms
    assert np.all(result.v_final < QUIESCENT_MV)
    assert np.isfinite(result.activation_ms[0, 0]) and np.isnan(result.activation_ms[0, -1])
    conducting = cable_problem(np.array([0.8]), 2.0, 0.1, length_mm=20.0,
                               min_cv_mm_per_ms=0.02)
    result = MonodomainSolver(conducting, check_every=50).run(stop_when_activated=True)
    assert np.isfinite(result.activation_ms).all()
    assert result.t_end_ms < np.nanmax(result.activation_ms) + 5.1


def test_the_ecg_source_uses_the_tissue_conductivity_not_the_calibrated_one():
    """I_m = div(sigma grad V) of a Gaussian V (width 2 mm) with fibres along x:
    sigma_l d2V/dx2 + sigma_t (d2V/dy2 + d2V/dz2) analytically. A problem whose
    conductivities carry CV-calibration scales (x2 along, x3 across) gives the source of
    the tissue's own conductivities, as the uncalibrated problem does (to round-off), not
    the scaled one that drives its diffusion."""
    from dataclasses import replace

    shape, dx, w = (40, 40, 40), 0.25, 2.0
    sl, st = 0.15, 0.04
    plain = _box(shape, dx, sl, st, 0.01, 1.0)
    scaled = replace(plain, conductivities=Conductivities(
        sigma_l=[2 * sl], sigma_t=[3 * st], sigma_fast_endo=[2 * sl], scale=[2.0],
        scale_t=[3.0]))
    xyz = (plain.grid.ijk + 0.5) * dx - 0.5 * dx * np.array(shape)
    r2 = (xyz ** 2).sum(axis=1)
    v = np.exp(-r2 / (2 * w * w))
    d2 = [(xyz[:, k] ** 2 / w ** 4 - 1 / w ** 2) * v for k in range(3)]
    exact = sl * d2[0] + st * (d2[1] + d2[2])
    inner = np.abs(xyz).max(axis=1) < 3.0
    vt = torch.tensor(v[None], dtype=torch.float64)
    got = {}
    for name, problem in (("plain", plain), ("scaled", scaled)):
        solver = MonodomainSolver(problem, dtype=torch.float64)
        got[name] = solver.current_source(vt)[0].numpy()
    diffusion = MonodomainSolver(scaled, dtype=torch.float64).space.source(vt)[0].numpy()
    scale = np.abs(exact[inner]).max()
    assert np.abs(got["plain"] - exact)[inner].max() < 0.02 * scale       # the stencil
    np.testing.assert_allclose(got["scaled"], got["plain"], atol=1e-12 * scale)
    assert np.abs(diffusion - exact)[inner].max() > 0.5 * scale           # what it was


def test_the_ecg_source_can_leave_the_fast_layers_currents_out():
    """``fast_layer_source="myocardium"``: the source of a block whose bottom layers are a
    fast region (0.8 S/m) equals the source of the same block without the region (the
    analytic Gaussian source of the myocardial tensor), while the diffusion still uses the
    fast conductivity; with "tissue" the source carries the layer's own currents."""
    from dataclasses import replace

    shape, dx, w = (24, 24, 24), 0.25, 1.5
    sl, st = 0.15, 0.04
    plain = _box(shape, dx, sl, st, 0.005, 1.0)
    fast = np.zeros(shape, dtype=bool)
    fast[:, :, :8] = True
    layered = replace(plain, fast_regions={"fast_lv": fast[plain.grid.mask]}, fast_enabled=None,
                      conductivities=Conductivities(sigma_l=[sl], sigma_t=[st],
                                                    sigma_fast_endo=[0.8]))
    xyz = (plain.grid.ijk + 0.5) * dx - 0.5 * dx * np.array(shape)
    v = torch.tensor(np.exp(-(xyz ** 2).sum(axis=1) / (2 * w * w))[None], dtype=torch.float64)
    src = {name: MonodomainSolver(layered, dtype=torch.float64, fast_layer_source=name)
           for name in ("tissue", "myocardium")}
    without = MonodomainSolver(plain, dtype=torch.float64).current_source(v)[0].numpy()
    mine = src["myocardium"].current_source(v)[0].numpy()
    scale = np.abs(without).max()
    np.testing.assert_allclose(mine, without, atol=1e-12 * scale)
    assert np.abs(src["tissue"].current_source(v)[0].numpy() - without).max() > 0.5 * scale
    # the propagation keeps the layer's conductivity in both
    assert torch.equal(src["tissue"].space.coef, src["myocardium"].space.coef)
    assert not torch.equal(src["myocardium"].space.coef,
                           MonodomainSolver(plain, dtype=torch.float64).space.coef)
    with pytest.raises(InputError, match="fast_layer_source"):
        MonodomainSolver(layered, fast_layer_source="purkinje")


def test_a_cable_stopped_at_its_middle_third_gives_the_cv_of_one_run_to_its_end(caplog):
    """conduction_velocity awaits only the voxels its fit uses (stop_voxels): the same CV
    to the last bit as the cable run until every voxel has activated, in fewer steps."""
    import logging
    import re

    from pipeline.monodomain.cv import cable_cv, cable_problem, conduction_velocity

    sigma, dx, dt = np.array([0.3]), 2.0, 0.1
    p = cable_problem(sigma, dx, dt)
    solver = MonodomainSolver(p, dtype=torch.float64)
    full = solver.run(stop_when_activated=True)
    cv = cable_cv(full.activation_ms.astype(np.float64), dx)
    assert np.isfinite(cv).all()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline.monodomain.solver"):
        np.testing.assert_array_equal(conduction_velocity(sigma, dx, dt), cv)
    steps = [int(m) for m in re.findall(r"ran (\d+) steps", caplog.text)]
    assert len(steps) == 1 and steps[0] < 0.85 * full.steps, (steps, full.steps)
    with pytest.raises(InputError, match="stop_voxels"):
        solver.run(stop_when_activated=True, stop_voxels=np.array([p.grid.n_tissue]))


def test_steps_chained_in_one_compiled_call_give_the_single_step_result():
    """``steps_per_call``: a slab of two simulations, compiled, its steps chained two per
    call (the host's work paid once per call), against one step per call. With site
    stimuli (their pulse steps run alone, the rest chained) and with the reaction-eikonal
    drive (evaluated inside the call): the same records, activation, repolarisation and
    final V, to float32 round-off."""
    from pipeline.monodomain.stimulus import ActivationStimulus

    p = _box((8, 4, 2), 0.5, [0.2, 0.3], [0.05, 0.08], 0.05, 14.0, stim_voxels=(0, 8, 16))
    drive = ActivationStimulus(torch.linspace(0.0, 6.0, 64).repeat(2, 1), -60.0, 2.0)
    for stimulus in (None, drive):
        out = {}
        for k in (1, 2):
            solver = MonodomainSolver(p, compile=True, steps_per_call=k, stimulus=stimulus)
            rec: list = []
            res = solver.run(lambda t, v, rec=rec: rec.append((t, v.clone())), record_every=10)
            out[k] = res, rec
            assert solver.compiled
            assert (solver.step._advance_compiled is not None) == (k == 2)   # calls chained
        (one, rec1), (two, rec2) = out[1], out[2]
        assert np.isfinite(one.activation_ms).all() and two.steps == one.steps == 280
        assert [t for t, _ in rec2] == [t for t, _ in rec1]
        assert max(float((a - b).abs().max()) for (_, a), (_, b) in zip(rec1, rec2)) < 1e-3
        assert np.abs(two.activation_ms - one.activation_ms).max() < 1e-4               # ms
        np.testing.assert_array_equal(np.isnan(two.repolarisation_ms),
                                      np.isnan(one.repolarisation_ms))
        assert np.abs(two.v_final - one.v_final).max() < 1e-3                           # mV
    with pytest.raises(InputError, match="steps_per_call"):
        MonodomainSolver(p, steps_per_call=0)


@pytest.mark.parametrize("compile", [False, True])
def test_slot_major_tables_give_the_same_step(compile):
    """``slot_major`` stores the neighbour and coefficient tables slot by slot (CUDA's
    default, for coalesced loads): the same arithmetic in the same order, so the same
    activation times and final potential to float32 rounding, eager and compiled. On the
    CPU the default stays voxel-major."""
    from pipeline.monodomain.solver import MonodomainSolver
    from pipeline.simulate.convergence import _slab_problem

    problem = _slab_problem(0.5, 45.0, (0.45, 0.12), 0.02, length_mm=6.0)
    runs = [MonodomainSolver(problem, compile=compile, slot_major=s).run(n_steps=300)
            for s in (False, True)]
    solver = MonodomainSolver(problem, slot_major=True)
    assert not MonodomainSolver(problem).slot_major
    assert solver.space.neighbour.stride() == (1, solver.space.neighbour.shape[0])
    assert solver.space.coef.stride()[1] == 1
    np.testing.assert_allclose(runs[1].v_final, runs[0].v_final, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(np.isnan(runs[1].activation_ms),
                                  np.isnan(runs[0].activation_ms))
    assert np.nanmax(np.abs(runs[1].activation_ms - runs[0].activation_ms)) < 1e-3
    assert np.isfinite(runs[0].activation_ms).sum() > 10     # the front has moved
