"""The reaction-eikonal mode through the simulate stage: the LLNL heart at 2 mm, normal,
LBBB and RBBB beats checked against the textbook criteria (pipeline.signals.criteria).

Measured (docs/monodomain.md, "Resolution study"): the monodomain at 2 mm distorts these
beats (QRS 100+ ms, amplitudes 2-5x clinical); the reaction-eikonal mode on the same grid
gives the figures asserted here. The criteria the model does not meet yet are listed in
``NOT_YET`` and reported by the test's output, not silently dropped.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.signals.criteria import CRITERIA, morphology

MESH = Path(__file__).resolve().parents[2] / "shared" / "data" / "anatomy" / "cardiac_ml_heart" \
    / "heart_mesh.vtk"
needs_mesh = pytest.mark.skipif(not MESH.exists(), reason="shared LLNL mesh not present")

#: Criteria the 2 mm reaction-eikonal beats do not meet yet (open work, docs/monodomain.md);
#: reported by the test's output. Empty since 2026-12-02: the LLNL RBBB's V6 ends on its R
#: (+1.9 mV at 30 ms) followed by a small, wide S (-0.07 mV), which the guideline's
#: criterion, read by duration (pipeline.signals.criteria.rbbb_criteria), counts; the old
#: reading (a terminal wave of at least 20 % of the R) did not.
NOT_YET: set[tuple[str, str]] = set()
#: Criteria the LLNL heart should miss: its RV is at the hypertrophy threshold (free wall
#: 5.1 mm, RV/LV mass 0.66), and its normal beat has no rS in V1 in the 0.5 mm monodomain
#: and with the 1 and 0.5 mm eikonals (docs/fidelity-log.md, "Session 18", section 2). The
#: 2 mm eikonal's rS in V1 was its grid's: since its fast layers carry the myocardium's load
#: (session 23) the 2 mm beat agrees with the converged ones.
ANATOMY: set[tuple[str, str]] = {("normal", "rS_in_V1")}
LIMB = ("I", "II", "III", "aVR", "aVL", "aVF")


def _simulate(root, anatomy, patterns, eikonal_anatomy=None):
    """R-E+ beats of ``patterns`` on one 2 mm anatomy (the study's fixed parameters); with
    ``eikonal_anatomy`` (the same heart on a finer grid) the eikonal runs there."""
    from pipeline.settings import RunSettings, SimulateSettings
    from pipeline.simulate.convergence import simulate_fixed, write_fixed_inputs

    settings = replace(SimulateSettings.defaults(), dt_ms=0.1, duration_ms=400.0,
                       save_activation_map=True)
    run = RunSettings(device="cpu", dtype="float32", compile=True, batch_size=len(patterns),
                      threads=2)
    fine = None if eikonal_anatomy is None else write_fixed_inputs(root / "eikonal",
                                                                   eikonal_anatomy)
    return simulate_fixed(write_fixed_inputs(root, anatomy), "reaction_eikonal", patterns,
                          settings, run, eikonal_inputs=fine)


def _demo_heart(index: int, dx: float = 2.0, **anatomy):
    """Parametric heart ``index`` of config.yaml's seed at ``dx`` mm (``anatomy``: more keys
    of the config's anatomy section)."""
    import yaml

    from pipeline.anatomy.build import build_parametric
    from pipeline.config import resolve

    seed = int(yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml")
                              .read_text())["seed"])
    cfg = resolve({"anatomy": {"resolution_mm": dx, **anatomy}})["anatomy"]
    return build_parametric(index, seed, cfg)[0]


def _normal_beat(anatomy, eikonal_anatomy=None):
    """The R-E+ normal beat of ``anatomy``: its morphology and the normal criteria."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = _simulate(Path(tmp), anatomy, ("normal",), eikonal_anatomy)
    m = morphology(data.ecg[0], data.dt_ms)
    return m, CRITERIA["normal"](m)


@pytest.fixture(scope="module")
def beats(tmp_path_factory):
    from pipeline.anatomy.build import build_mesh
    from pipeline.config import resolve

    cfg = resolve({"anatomy": {"resolution_mm": 2.0}})["anatomy"]
    anatomy, _ = build_mesh(MESH, cfg, name="llnl")
    return _simulate(tmp_path_factory.mktemp("re"), anatomy, ("normal", "lbbb", "rbbb"))


def test_the_demo_parametric_heart_beats_normally():
    """The demo's parametric heart 0 (config.yaml's seed) at 2 mm, its eikonal on the 2 mm
    grid (simulate_fixed without a finer heart): a normal beat by every criterion that does
    not read the frontal axis, upright T in I, II, V5 and V6 included (inverted in I, V5, V6
    with the M cells mid-wall, endo/M fractions 0.3/0.3; docs/monodomain.md). Its axis is
    superior, as in the 0.5 mm monodomain (-110 deg) and with the demo's 1 mm eikonal (-65
    deg): the near field of the limb electrodes at DESIGN.md's 100 mm ("Session 18"). Until
    the eikonal's ball seeding stopped jumping between fast layers (session 25) this 2 mm
    beat met the axis too; that normal axis was its grid's (docs/fidelity-log.md, "Session
    25")."""
    m, found = _normal_beat(_demo_heart(0))
    print(f"\nparametric normal: QRS {m.qrs_ms:.0f} ms, axis {m.frontal_axis_deg:+.0f} deg, T "
          f"{ {n: round(m.leads[n].t, 2) for n in ('I', 'II', 'V5', 'V6')} }, {found}")
    axis = {"normal_axis", "positive_qrs_I_II_V5_V6"}
    assert all(ok for name, ok in found.items() if name not in axis), found
    assert -150.0 < m.frontal_axis_deg < -30.0, m.frontal_axis_deg


# a unit of its own for pytest-xdist (tests/conftest.py, UNITS)
def test_the_converged_normal_beat_in_a_bounded_torso_is_normal_by_every_criterion():
    """The demo's parametric heart 1 with its eikonal on the 0.5 mm grid (the converged
    activation: docs/fidelity-log.md, "Session 17") and its ECG recorded on the surface of a
    bounded, insulated torso (simulate.ecg_medium: torso): a normal beat by every
    criterion, the limb and precordial amplitudes included (measured: QRS 81 ms, axis +78
    deg, limb 0.55 mV, precordial 3.35 mV). In the contract's infinite medium at 100 mm
    the same beat's axis is -132 deg; with the limb electrodes at their torso distances
    its limb leads are 0.08 mV ("Session 18")."""
    import tempfile

    from pipeline.settings import RunSettings, SimulateSettings
    from pipeline.simulate.convergence import simulate_fixed, write_fixed_inputs

    settings = replace(SimulateSettings.defaults(), dt_ms=0.1, duration_ms=400.0,
                       ecg_medium="torso")
    run = RunSettings(device="cpu", dtype="float32", compile=True, batch_size=1, threads=2)
    with tempfile.TemporaryDirectory() as tmp:
        anatomy = _demo_heart(1)
        data = simulate_fixed(write_fixed_inputs(Path(tmp), anatomy), "reaction_eikonal",
                              ["normal"], settings, run,
                              eikonal_inputs=write_fixed_inputs(Path(tmp) / "eikonal",
                                                                _demo_heart(1, 0.5)))
    assert data.extra_attrs["ecg_medium"] == "torso"
    recorded = np.asarray(data.extra_attrs["electrode_xyz_mm"])
    r = np.linalg.norm(recorded - anatomy.centres().mean(axis=0), axis=1)
    assert (r[:4] > 200).all() and (r[4:] < 150).all(), r     # limbs far, chest near
    m = morphology(data.ecg[0], data.dt_ms)
    found = CRITERIA["normal"](m)
    print(f"\nheart 1, 0.5 mm eikonal, bounded torso: QRS {m.qrs_ms:.0f} ms, axis "
          f"{m.frontal_axis_deg:+.0f} deg, limb {max(m.leads[n].p2p for n in LIMB):.2f} mV, "
          f"precordial {max(m.leads[f'V{i}'].p2p for i in range(1, 7)):.2f} mV, {found}")
    assert all(found.values()), found


@needs_mesh
def test_every_voxel_activates_at_its_eikonal_time_and_repolarises(beats):
    amap = beats.activation_map_ms
    assert np.isfinite(amap).all()
    total = np.nanmax(amap, axis=1) - np.nanmin(amap, axis=1)
    assert 60.0 <= total[0] <= 90.0, total                       # normal: 60-90 ms
    assert total[1] > total[0] + 30 and total[2] > total[0] + 20, total  # blocks are slower
    assert np.isfinite(beats.apd90_ms[0]).all()                   # the normal beat repolarises
    assert beats.extra_attrs["solver"]["model"] == "reaction_eikonal"
    assert beats.extra_attrs["solver"]["cv_scale"] == 1.0          # no calibration


@needs_mesh
@pytest.mark.parametrize("index, pattern", [(0, "normal"), (1, "lbbb"), (2, "rbbb")])
def test_textbook_criteria(beats, index, pattern):
    m = morphology(beats.ecg[index], beats.dt_ms)
    found = CRITERIA[pattern](m)
    print(f"\n{pattern}: QRS {m.qrs_ms:.0f} ms, criteria {found}")
    missed = {name for name, ok in found.items() if not ok}
    v1 = m.leads["V1"]
    print(f"V1: r {v1.r:.3f} mV, s {v1.s:.3f} mV, net {v1.net:+.3f} mV")
    assert missed <= {name for p, name in NOT_YET | ANATOMY if p == pattern}, missed
    still = {name for p, name in NOT_YET if p == pattern} & missed
    if still:
        print(f"{pattern}: not met yet: {sorted(still)}")


def test_the_resolution_study_reports_model_and_grid_error(tmp_path):
    """`study` on the demo's parametric heart at 2 mm only, normal beat, 120 ms: the
    monodomain reference against itself is exact, R-E+ on the reference grid reports its
    model error (a few ms at the 75 points: eikonal against diffusion fronts, docs/
    monodomain.md), every row names its reference."""
    from pipeline.settings import RunSettings
    from pipeline.simulate.convergence import study

    run = RunSettings(device="cpu", dtype="float32", compile=False, batch_size=8, threads=2)
    result = study(["param000"], [2.0], ["monodomain", "reaction_eikonal"], ["normal"], 120.0,
                   tmp_path, 20221, run, finest_too=True)
    rows = {(r["model"], r["reference_model"]): r for r in result["runs"]}
    assert set(rows) == {("monodomain", "monodomain"), ("reaction_eikonal", "monodomain")}
    ref, re = rows["monodomain", "monodomain"], rows["reaction_eikonal", "monodomain"]
    assert ref["activation_mae_ms"] == 0.0 and ref["ecg_corr_min"] == pytest.approx(1.0)
    print(f"\nR-E+ against the monodomain on the same 2 mm grid: activation MAE "
          f"{re['activation_mae_ms']:.2f} ms, max {re['activation_max_ms']:.1f} ms, total "
          f"{re['total_activation_ms']:.1f} against {ref['total_activation_ms']:.1f} ms")
    # measured 3.53 ms (4.10 with the RV half as wide, before 2026-12-02); the 2 mm
    # monodomain's total activation overshoots (105.4 against R-E+ 96.4 ms here; 96 against
    # 86 ms at 0.5 mm in the study, with the narrow RV)
    assert 2.0 < re["activation_mae_ms"] < 6.0
    assert re["total_activation_ms"] < ref["total_activation_ms"] - 5.0


# ------------------------------------------------------------ the eikonal on a finer grid
@pytest.fixture(scope="module")
def two_grids(tmp_path_factory):
    """The demo's parametric heart 0 at 2 mm (the simulation grid) and 1 mm (the eikonal's)."""
    from pipeline.anatomy.build import build_parametric
    from pipeline.config import resolve
    from pipeline.simulate.convergence import write_fixed_inputs

    root = tmp_path_factory.mktemp("fine_eikonal")
    out = {}
    for dx, name in ((2.0, "coarse"), (1.0, "fine")):
        cfg = resolve({"anatomy": {"resolution_mm": dx}})["anatomy"]
        out[name] = write_fixed_inputs(root / name, build_parametric(0, 20221, cfg)[0])
    return out


def test_the_eikonal_on_a_finer_grid_drives_the_coarse_voxels(two_grids):
    """simulate.eikonal_resolution_mm: every 2 mm voxel upstrokes at the 1 mm eikonal's
    time at its centre (trilinear), computed here independently from the fine anatomy,
    within the drive's latency (the 0 mV crossing follows the start of the drive by about
    0.8 ms at dt 0.1 ms; a few voxels next to earlier ones cross up to 2.5 ms early, since
    R-E+ keeps the diffusion current that depolarises them: most in the 2 mm grid's fast
    layer, one 2 mm voxel thick against the 1 mm grid's 1 mm); the 2 mm grid's own eikonal
    differs from it by several ms in places (so the test tells the two apart: measured
    -20.1 .. +12.1 ms), and the record names the eikonal's grid."""
    from pipeline.anatomy.grid import sample_tissue
    from pipeline.anatomy.io import read_anatomy
    from pipeline.monodomain.batch import prepare_anatomy, problem_from_settings
    from pipeline.monodomain.eikonal import EikonalSolver, problem_inputs
    from pipeline.params import rows
    from pipeline.settings import RunSettings, SimulateSettings
    from pipeline.simulate.convergence import simulate_fixed

    # the plain eikonal, as computed below (the curvature correction has its own tests)
    settings = replace(SimulateSettings.defaults(), dt_ms=0.1, duration_ms=60.0,
                       save_activation_map=True, eikonal_curvature=False)
    run = RunSettings(device="cpu", dtype="float32", compile=False, batch_size=1, threads=1)
    data = simulate_fixed(two_grids["coarse"], "reaction_eikonal", ["normal"], settings, run,
                          eikonal_inputs=two_grids["fine"])
    assert data.extra_attrs["records"][0]["eikonal_grid"]["spacing_mm"] == 1.0

    coarse = read_anatomy(two_grids["coarse"] / "anatomy.h5")
    times = {}
    for name in ("fine", "coarse"):
        anatomy = read_anatomy(two_grids[name] / "anatomy.h5")
        prep = prepare_anatomy(anatomy, diffusion=False)
        problem = problem_from_settings(prep, rows(_table(anatomy.name)), settings)
        cv_l, cv_t, src = problem_inputs(problem)
        t = EikonalSolver(prep.grid.mask, prep.grid.spacing, prep.fibre).solve(cv_l, cv_t, src)
        times[name] = sample_tissue(anatomy.mask, anatomy.origin, float(anatomy.spacing.max()),
                                    t[0].double().numpy(), coarse.origin + np.argwhere(
                                        coarse.mask) * float(coarse.spacing.max()))
    early = times["fine"] < 50.0               # activated well inside the 60 ms simulated
    assert early.mean() > 0.5
    lag = (data.activation_map_ms[0] - times["fine"])[early]
    print(f"\nupstroke after the fine eikonal's time: {lag.min():.3f} .. {lag.max():.3f} ms, "
          f"percentiles 1/50/99 {np.percentile(lag, [1, 50, 99]).round(3)}; "
          f"2 mm eikonal - 1 mm eikonal: {np.min(times['coarse'] - times['fine']):.1f} .. "
          f"{np.max(times['coarse'] - times['fine']):.1f} ms")
    # measured: -2.45 .. 1.14 ms, percentiles 1/50/99 -1.14 / 0.82 / 1.06 ms (before the
    # fast layers' depth was measured from the endocardium's faces, 2026-12-03: -1.48 ..
    # 1.11 ms, percentile 1 -0.49 ms)
    assert np.isfinite(lag).all() and -3.0 < lag.min() and lag.max() < 1.5
    assert np.percentile(lag, 1) > -1.5 and 0.5 < np.median(lag) < 1.2
    assert np.max(np.abs(times["coarse"] - times["fine"])) > 3.0


def test_the_continuum_cv_relation_drives_the_simulate_stage(two_grids):
    """simulate.cv_relation continuum: the 2 mm voxels upstroke at the continuum relation's
    eikonal times (computed here on the 2 mm grid), within the drive's latency, earlier
    than with the 0.1 mm cables' relation (measured: median lag 0.79 ms; the 0.1 mm
    relation's times later by a median 0.80 ms)."""
    from pipeline.anatomy.io import read_anatomy
    from pipeline.monodomain.batch import prepare_anatomy, problem_from_settings
    from pipeline.monodomain.eikonal import EikonalSolver, problem_inputs
    from pipeline.params import rows
    from pipeline.settings import RunSettings, SimulateSettings
    from pipeline.simulate.convergence import simulate_fixed

    settings = replace(SimulateSettings.defaults(), dt_ms=0.1, duration_ms=40.0,
                       save_activation_map=True, eikonal_curvature=False,
                       eikonal_resolution_mm=None, cv_relation="continuum")
    run = RunSettings(device="cpu", dtype="float32", compile=False, batch_size=1, threads=1)
    data = simulate_fixed(two_grids["coarse"], "reaction_eikonal", ["normal"], settings, run)
    anatomy = read_anatomy(two_grids["coarse"] / "anatomy.h5")
    prep = prepare_anatomy(anatomy, diffusion=False)
    problem = problem_from_settings(prep, rows(_table(anatomy.name)), settings)
    # a 2 mm eikonal does not resolve the 1 mm layer: the hops take the voxel's own speed
    solver = EikonalSolver(prep.grid.mask, prep.grid.spacing, prep.fibre, mean_slowness=False)
    t = {rel: solver.solve(*problem_inputs(problem, cv_relation=rel))[0].double().numpy()
         for rel in ("continuum", "cable_0.1mm")}
    early = t["continuum"] < 30.0
    lag = (data.activation_map_ms[0] - t["continuum"])[early]
    print(f"\nupstroke after the continuum eikonal's time: median {np.median(lag):.3f} ms; "
          f"the 0.1 mm relation's times later by median "
          f"{np.median((t['cable_0.1mm'] - t['continuum'])[early]):.2f} ms")
    assert 0.5 < np.median(lag) < 1.2 and np.percentile(lag, 99) < 1.5
    later = (t["cable_0.1mm"] - t["continuum"])[early]
    print(f"smallest difference {later.min():.4f} ms, percentile 1 {np.percentile(later, 1):.4f}")
    assert np.percentile(later, 1) > 0.0 and np.median(later) > 0.5


def _table(name):
    """The study's fixed normal beat as a one-row parameter table."""
    import pandas as pd

    from pipeline.simulate.convergence import STUDY_ROW

    return pd.DataFrame([{"sim_id": 0, "anatomy": str(name), "pattern": "normal", **STUDY_ROW}])


def test_a_wrong_eikonal_anatomy_is_refused_before_any_simulation(two_grids, tmp_path):
    """Each mismatch names the file and what was expected (prepare_shard, no simulation)."""
    from pipeline.anatomy.io import read_anatomy, write_anatomy
    from pipeline.errors import InputError
    from pipeline.settings import SimulateSettings
    from pipeline.simulate.run import prepare_shard

    coarse, fine = two_grids["coarse"], two_grids["fine"]
    _table(read_anatomy(coarse / "anatomy.h5").name).to_csv(tmp_path / "p.csv", index=False)
    re = replace(SimulateSettings.defaults(), model="reaction_eikonal", dt_ms=0.1,
                 duration_ms=20.0, eikonal_resolution_mm=None)

    def refused(settings, path, match):
        with pytest.raises(InputError, match=match):
            prepare_shard(coarse / "anatomy.h5", coarse / "cells.h5", tmp_path / "p.csv",
                          settings, eikonal_anatomy_path=path)

    fine_h5 = fine / "anatomy.h5"
    refused(replace(re, eikonal_resolution_mm=1.0), None, "needed")
    refused(re, fine_h5, "eikonal_resolution_mm is not set")
    refused(replace(re, eikonal_resolution_mm=0.5), fine_h5, "voxel size 1 mm")
    refused(replace(re, model="monodomain", eikonal_resolution_mm=1.0), fine_h5,
            "reaction_eikonal only")
    refused(replace(re, eikonal_resolution_mm=2.0), coarse / "anatomy.h5", "not finer")
    refused(replace(re, eikonal_resolution_mm=1.0), None, r"needed .*anatomy.h5 is at 2 mm")
    # not finer than the grid: the eikonal runs on it, no finer heart wanted
    assert SimulateSettings.defaults().eikonal_resolution_mm == 0.5
    for value, grid in ((2.0, coarse), (3.0, coarse), (1.0, fine)):
        job = prepare_shard(grid / "anatomy.h5", grid / "cells.h5", tmp_path / "p.csv",
                            replace(re, eikonal_resolution_mm=value))
        assert job.eikonal_anatomy is None
    assert replace(re, eikonal_resolution_mm=1.0).eikonal_grid_mm(2.0) == 1.0
    assert replace(re, model="monodomain", eikonal_resolution_mm=1.0).eikonal_grid_mm(2.0) is None
    anatomy = read_anatomy(fine_h5)
    write_anatomy(tmp_path / "moved.h5", replace(anatomy, origin=anatomy.origin + 30.0))
    refused(replace(re, eikonal_resolution_mm=1.0), tmp_path / "moved.h5", "same frame")
    write_anatomy(tmp_path / "other.h5", replace(anatomy, name="param001"))
    refused(replace(re, eikonal_resolution_mm=1.0), tmp_path / "other.h5", "heart 'param001'")
    job = prepare_shard(coarse / "anatomy.h5", coarse / "cells.h5", tmp_path / "p.csv",
                        replace(re, eikonal_resolution_mm=1.0), eikonal_anatomy_path=fine_h5)
    assert job.eikonal_anatomy is not None and job.sources["eikonal_anatomy"] == str(fine_h5)


def test_given_activation_times_drive_the_coarse_voxels(two_grids):
    """ShardSolver.solver(rows, activation_ms=...): R-E+ driven by times from elsewhere (a
    converged run's map, benchmarks/ecg_gap.py) instead of the eikonal. A planar ramp at
    2.5 mm/ms along the long axis: every voxel upstrokes at its given time within the
    drive's latency, as with the eikonal's times above; a wrong shape, or the monodomain
    model, is refused with the expected shape or model named."""
    from pipeline.anatomy.io import read_anatomy
    from pipeline.errors import InputError
    from pipeline.params import rows
    from pipeline.settings import RunSettings, SimulateSettings
    from pipeline.simulate.run import prepare_shard
    from pipeline.simulate.solver_adapter import ShardSolver

    settings = replace(SimulateSettings.defaults(), dt_ms=0.1, duration_ms=45.0,
                       model="reaction_eikonal", eikonal_curvature=False,
                       eikonal_resolution_mm=None)
    run = RunSettings(device="cpu", dtype="float32", compile=False, batch_size=1, threads=1)
    root = two_grids["coarse"]

    _table(read_anatomy(root / "anatomy.h5").name).to_csv(root / "given.csv", index=False)
    job = prepare_shard(root / "anatomy.h5", root / "cells.h5", root / "given.csv", settings)
    shard = ShardSolver(job.anatomy, job.cells, settings, run)
    z = shard.prepared.coords.xyz[:, 2]
    given = (z - z.min()) / 2.5                                  # ms
    solver = shard.solver(rows(job.table), activation_ms=given[None])
    result = solver.run()
    early = given < 40.0
    lag = (result.activation_ms[0] - given)[early]
    print(f"\nupstroke after the given time: {lag.min():.3f} .. {lag.max():.3f} ms, "
          f"median {np.median(lag):.3f}")
    assert early.mean() > 0.5 and np.isfinite(lag).all()
    # measured: 0.830 .. 1.014 ms, median 0.965 (no diffusion lead ahead of a fast ramp)
    assert 0.5 < lag.min() and lag.max() < 1.2

    with pytest.raises(InputError, match=rf"expected \(1, {shard.n_tissue}\)"):
        shard.solver(rows(job.table), activation_ms=given[None, :-1])
    mono = ShardSolver(job.anatomy, job.cells, replace(settings, model="monodomain",
                                                       calibrate_directions=False), run)
    with pytest.raises(InputError, match="only simulate.model 'reaction_eikonal'"):
        mono.solver(rows(job.table), activation_ms=given[None])


def test_the_study_time_step_of_every_grid_divides_the_recording_interval():
    """The resolution study records every 1 ms (``record_every_ms``), which the simulate
    stage accepts only as a whole number of steps: 0.015 ms at 0.25 mm was refused there
    after minutes of set-up (0.0125 ms now, under explicit diffusion's 0.0158 ms)."""
    from pipeline.simulate.convergence import DT_MS

    for dx, dt in DT_MS.items():
        steps = round(1.0 / dt)
        assert abs(steps * dt - 1.0) < 1e-9, (dx, dt)
