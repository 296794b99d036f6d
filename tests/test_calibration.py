"""The CV calibration as a workflow output: one file per campaign and heart, read by shards.

The rule feeds every monodomain shard (dry run of the CI workflow) and none in the
reaction-eikonal mode; a file made for other settings, another grid or other conductivity
ranges is refused by name; a shard reading the file gives exactly the shard that finds
its calibration itself.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import h5py
import numpy as np
import pytest
import pandas as pd
import yaml
from test_simulate import RESOLUTION_MM, _cfg, inputs  # noqa: F401  (the shared fixture)
from workflow_helpers import CI_CONFIG, job_counts, snakemake

from pipeline.cli import main
from pipeline.errors import CalibrationMismatch
from pipeline.simulate.calibration import (
    ShardCalibration,
    calibration_inputs,
    calibration_settings,
    read_calibration,
    write_calibration,
)
from pipeline.simulate.run import prepare_shard


def _dry_run(tmp_path, **simulate):
    config = yaml.safe_load(CI_CONFIG.read_text())
    config["simulate"].update(simulate)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "work"
    workdir.mkdir()
    out = snakemake(workdir, "-n", "-p", "results/dataset/ci.h5", config=path)
    return out.stdout + out.stderr


def test_one_calibration_per_heart_feeds_every_monodomain_shard(tmp_path):
    text = _dry_run(tmp_path)
    assert job_counts(text)["calibrate"] == 1 and job_counts(text)["simulate"] == 2
    calls = re.findall(r"pipeline simulate .*", text)
    assert len(calls) == 2
    assert all("--calibration results/calibration/ci/param000.json" in c for c in calls)
    assert "pipeline calibrate --anatomy results/anatomy/param000/anatomy.h5" in text


def test_the_reaction_eikonal_mode_needs_no_calibration(tmp_path):
    """No calibration; with eikonal_resolution_mm null, or not finer than the 2 mm grid,
    no finer eikonal heart either."""
    for value in (None, 2.0):
        (tmp_path / str(value)).mkdir()
        text = _dry_run(tmp_path / str(value), model="reaction_eikonal",
                        eikonal_resolution_mm=value)
        assert "calibrate" not in job_counts(text)
        assert "--calibration" not in text
        assert "anatomy_eikonal" not in job_counts(text) and "--eikonal-anatomy" not in text


def test_a_finer_eikonal_grid_is_built_once_per_heart_and_fed_to_every_shard(tmp_path):
    """simulate.eikonal_resolution_mm: one anatomy_eikonal job per heart at that voxel size
    (no PNG), read by every shard; the monodomain ignores the key. The default, 0.5 mm, is
    finer than the CI config's 2 mm grid."""
    text = _dry_run(tmp_path, model="reaction_eikonal", eikonal_resolution_mm=1.0)
    (tmp_path / "default").mkdir()
    default = _dry_run(tmp_path / "default", model="reaction_eikonal")
    assert "--resolution 0.5 --no-png --out results/anatomy/param000/eikonal" in default
    assert job_counts(text)["anatomy_eikonal"] == 1 and job_counts(text)["simulate"] == 2
    assert ("pipeline anatomy --parametric 0 --name param000 --resolution 1.0 --no-png "
            "--out results/anatomy/param000/eikonal") in text
    calls = re.findall(r"pipeline simulate .*", text)
    assert len(calls) == 2
    assert all("--eikonal-anatomy results/anatomy/param000/eikonal/anatomy.h5" in c
               for c in calls)
    (tmp_path / "mono").mkdir()
    mono = _dry_run(tmp_path / "mono", eikonal_resolution_mm=1.0)
    assert "anatomy_eikonal" not in job_counts(mono) and "--eikonal-anatomy" not in mono


def test_calibration_settings_hold_only_what_the_calibration_depends_on():
    config = yaml.safe_load(CI_CONFIG.read_text())
    base = calibration_settings(config, "ci")
    assert base["campaigns"] == {"ci": {"conductivity": {"sigma_l": [0.1, 0.2],
                                                          "sigma_t": [0.02, 0.06],
                                                          "sigma_fast_endo": [0.5, 1.0]}}}
    config["simulate"]["duration_ms"] = 500.0            # not a calibration input
    config["campaigns"]["ci"]["n_simulations"] = 40      # growing the campaign
    assert calibration_settings(config, "ci") == base
    config["simulate"]["dt_ms"] = 0.05
    assert calibration_settings(config, "ci") != base


def _file(tmp_path, settings, dx=RESOLUTION_MM, ranges=None):
    cal = ShardCalibration(inputs=calibration_inputs(settings, dx), sigma_l_reference=0.15,
                           sigma_t_reference=0.04, cv_scale=4.0, cv_scale_t=None,
                           record={"scale": 4.0},
                           ranges=ranges or {"sigma_l": [0.1, 0.2], "sigma_t": [0.02, 0.06]})
    path = tmp_path / "calibration.json"
    write_calibration(path, cal, {"heart": "param000"})
    return path


def test_a_calibration_for_other_settings_is_refused(inputs, tmp_path, capsys):  # noqa: F811
    root = inputs[0]
    args = (root / "anatomy.h5", root / "cells.h5", root / "params.csv")
    made = _cfg(dt_ms=0.1, target_cv_mm_per_ms=0.6)
    path = _file(tmp_path, made)
    assert read_calibration(path).inputs["dt_ms"] == 0.1
    assert [p.name for p in tmp_path.iterdir()] == ["calibration.json"]   # no temporary left
    job = prepare_shard(*args, made, calibration_path=path)               # the same: accepted
    assert job.calibration.cv_scale == 4.0 and job.sources["calibration"] == str(path)
    for other, words in [(replace(made, dt_ms=0.05), "dt_ms = 0.1, this shard has 0.05"),
                         (replace(made, target_cv_mm_per_ms=0.5), "target_cv_mm_per_ms"),
                         (replace(made, target_cv_mm_per_ms=None), "mode = target_cv"),
                         (replace(made, chi_per_mm=100.0), "chi_per_mm"),
                         (replace(made, model="reaction_eikonal"), "no calibration")]:
        with pytest.raises(CalibrationMismatch, match=re.escape(words)):
            prepare_shard(*args, other, calibration_path=path)
    with pytest.raises(CalibrationMismatch, match="dx_mm = 1.0, this shard has 2.0"):
        prepare_shard(*args, made, calibration_path=_file(tmp_path, made, dx=1.0))
    narrow = _file(tmp_path, made, ranges={"sigma_l": [0.16, 0.2], "sigma_t": [0.02, 0.06]})
    with pytest.raises(CalibrationMismatch, match="sim_id 0 has sigma_l = 0.15"):
        prepare_shard(*args, made, calibration_path=narrow)
    # through the CLI: one named error line, no shard file
    out = tmp_path / "shard.h5"
    code = main(["simulate", "--anatomy", str(args[0]), "--cells", str(args[1]), "--params",
                 str(args[2]), "--out", str(out), "--calibration", str(path), "--settings",
                 json.dumps({"simulate": {"dt_ms": 0.05, "target_cv_mm_per_ms": 0.6}})])
    assert code == 1 and not out.exists()
    assert "was made for dt_ms = 0.1" in capsys.readouterr().err


def test_a_shard_reading_the_file_equals_one_calibrating_itself(inputs, tmp_path):  # noqa: F811
    """`pipeline calibrate` at the default ranges' middle (0.15, 0.04 S/m: the shard's own
    median) then `pipeline simulate --calibration`: the same arrays as without the file."""
    from pipeline.simulate.shard import read_shard

    root = inputs[0]
    simulate = {"dt_ms": 0.1, "duration_ms": 30.0, "target_cv_mm_per_ms": 0.6}
    cal = tmp_path / "calibration" / "param000.json"
    assert main(["calibrate", "--anatomy", str(root / "anatomy.h5"), "--out", str(cal),
                 "--settings", json.dumps({"simulate": simulate})]) == 0
    body = json.loads(cal.read_text())
    assert body["inputs"]["mode"] == "target_cv" and body["inputs"]["dx_mm"] == RESOLUTION_MM
    assert body["ranges"] == {"sigma_l": [0.1, 0.2], "sigma_t": [0.02, 0.06],
                              "sigma_fast_endo": [0.5, 1.0]}
    assert (body["sigma_l_reference"], body["sigma_t_reference"]) == pytest.approx((0.15, 0.04))
    # the propagation check ran once, at the smallest sigma_t: x4.2 at 2 mm still blocks
    # (test_simulate's cable), so each shard names its own blocking simulation
    assert body["propagation"]["sigma_t"] == 0.02 and body["propagation"]["cv_mm_per_ms"] is None
    assert body["propagation"]["sigma_t_scaled"] == pytest.approx(0.02 * body["cv_scale"])
    shards = {}
    for name, extra in (("file", ["--calibration", str(cal)]), ("own", [])):
        shards[name] = tmp_path / f"{name}.h5"
        assert main(["simulate", "--anatomy", str(root / "anatomy.h5"), "--cells",
                     str(root / "cells.h5"), "--params", str(root / "params.csv"), "--out",
                     str(shards[name]), "--threads", "1", "--no-compile", "--device", "cpu",
                     "--settings", json.dumps({"simulate": simulate}), *extra]) == 0
    a, b = read_shard(shards["file"]), read_shard(shards["own"])
    solver = {}
    for name, path in shards.items():
        with h5py.File(path, "r") as h5:
            solver[name] = json.loads(h5.attrs["solver"])
    assert solver["file"]["cv_scale"] == body["cv_scale"] == solver["own"]["cv_scale"] > 3.0
    assert solver["file"]["cv_calibration"] == solver["own"]["cv_calibration"]
    for field in ("ecg", "vm", "activation_ms"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_a_shard_in_a_conducting_campaign_runs_no_cable_of_its_own(inputs, caplog):  # noqa: F811
    """The calibration file's check found the campaign's smallest sigma_t conducting: a
    shard whose rows lie in the ranges trusts it (CV grows with sigma); below it, or
    without the record, the shard runs its own cable."""
    import logging

    from pipeline.anatomy.io import read_anatomy
    from pipeline.cell.steady import read_initial_states
    from pipeline.settings import RunSettings
    from pipeline.simulate.calibration import calibrate
    from pipeline.simulate.solver_adapter import ShardSolver

    root, _, table = inputs
    settings = _cfg(dt_ms=0.1, target_cv_mm_per_ms=0.6)
    cal = calibrate(settings, RESOLUTION_MM, 0.15, 0.06,
                    ranges={"sigma_l": [0.1, 0.2], "sigma_t": [0.06, 0.06]})
    assert cal.propagation["sigma_t"] == 0.06 and cal.propagation["cv_mm_per_ms"] > 0.02
    run = RunSettings(device="cpu", dtype="float32", compile=False, batch_size=1, threads=1)
    solver = ShardSolver(read_anatomy(root / "anatomy.h5"),
                         read_initial_states(root / "cells.h5"), settings, run,
                         calibration=cal)
    with caplog.at_level(logging.INFO, logger="pipeline.simulate.solver_adapter"):
        assert solver.check_propagation(table.assign(sigma_t=[0.06])) is None
    assert "the calibration file's sigma_t 0.06 S/m conducts" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline.simulate.solver_adapter"):
        warning = solver.check_propagation(table.assign(sim_id=[3], sigma_t=[0.02]))
    assert warning is not None and warning.startswith("sim_id 3: sigma_t = 0.02 S/m")
    assert "the calibration file's" not in caplog.text
    # a file whose cable blocked at exactly this sigma_t: its record is the shard's answer
    # (the same cable would block again, after running its whole length)
    from dataclasses import replace

    blocked = replace(cal, propagation={"sigma_t": 0.02, "sigma_t_scaled": 0.02 * cal.cv_scale,
                                        "cv_mm_per_ms": None})
    solver = ShardSolver(read_anatomy(root / "anatomy.h5"),
                         read_initial_states(root / "cells.h5"), settings, run,
                         calibration=blocked)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        warning = solver.check_propagation(table.assign(sim_id=[4], sigma_t=[0.02]))
    assert warning is not None and warning.startswith("sim_id 4: sigma_t = 0.02 S/m")
    assert "ran " not in caplog.text, caplog.text          # no cable ran


def test_a_cable_runs_once_per_process_for_the_same_inputs(caplog):
    """Cable results are pure functions of their inputs: the second propagation check of
    the same scaled conductivity, grid and step reuses the first's CV and runs no cable;
    another conductivity runs its own."""
    import logging

    from pipeline.simulate.calibration import propagation_check

    with caplog.at_level(logging.INFO, logger="pipeline.monodomain.solver"):
        first = propagation_check(0.05, 4.0, 2.0, 0.1)
        assert "ran " in caplog.text and first["cv_mm_per_ms"] > 0.02
        caplog.clear()
        again = propagation_check(0.05, 4.0, 2.0, 0.1)
        assert again == first and "ran " not in caplog.text
        slower = propagation_check(0.04, 4.0, 2.0, 0.1)
        assert "ran " in caplog.text and slower["cv_mm_per_ms"] < first["cv_mm_per_ms"]


def test_the_fast_layers_take_their_own_scale_in_a_per_direction_calibration(inputs):  # noqa: F811
    """Mode ``directions`` on the 2 mm heart: three scales, the fast layer's well below the
    fibre direction's (a coarse grid slows a large conductivity less); the shard's problem
    multiplies sigma_fast_endo by it, and its physical conductivities are the sampled ones.
    The layer's target, its front on the 0.1 mm slab over myocardium (0.15 / 0.04 S/m), is
    slower than a free cable of its conductivity (the CV-sigma fit of CV_TABLE, 16 cables
    at 0.1 mm): the myocardium is a sink (a load of 0.92-0.96). At 2 mm the fibre
    direction's scale makes that front far too fast (measured +35 %); the layer's own
    scale restores the 0.1 mm speed."""
    from pipeline.anatomy.io import read_anatomy
    from pipeline.cell.steady import read_initial_states
    from pipeline.monodomain.cv_relation import cv_from_sigma
    from pipeline.monodomain.layer import layer_cv
    from pipeline.params import rows
    from pipeline.settings import RunSettings
    from pipeline.simulate.calibration import calibrate
    from pipeline.simulate.solver_adapter import ShardSolver

    root, _, table = inputs
    settings = _cfg(dt_ms=0.1)
    assert settings.calibrate_directions and settings.target_cv_mm_per_ms is None
    cal = calibrate(settings, RESOLUTION_MM, 0.15, 0.04, sigma_fast=0.8)
    assert set(cal.record) == {"l", "t", "fast"} and cal.sigma_fast_reference == 0.8
    assert 1.5 < cal.cv_scale_fast < 0.8 * cal.cv_scale < cal.cv_scale_t
    target = cal.record["fast"]["target_cv_mm_per_ms"]
    assert cal.record["fast"]["achieved_cv_mm_per_ms"] == pytest.approx(target, rel=0.02)
    assert 0.92 < target / float(cv_from_sigma(0.8)) < 0.96
    too_fast = layer_cv(np.array([0.8 * cal.cv_scale]), RESOLUTION_MM, 0.1, depth_mm=1.0,
                        sigma_l=0.15 * cal.cv_scale, sigma_t=0.04 * cal.cv_scale_t)[0]
    print(f"\nfast layer at 2 mm with the fibre direction's scale: {too_fast / target - 1:+.1%}")
    assert too_fast > 1.25 * target
    run = RunSettings(device="cpu", dtype="float32", compile=False, batch_size=1, threads=1)
    solver = ShardSolver(read_anatomy(root / "anatomy.h5"),
                         read_initial_states(root / "cells.h5"), settings, run,
                         calibration=cal)
    cond = solver.solver(rows(table)).problem.conductivities
    assert cond.sigma_fast_endo[0] == pytest.approx(0.8 * cal.cv_scale_fast)
    assert cond.sigma_l[0] == pytest.approx(0.15 * cal.cv_scale)
    assert cond.physical().sigma_fast_endo[0] == pytest.approx(0.8)
    assert solver.attrs(solver.solver(rows(table)))["cv_scale_fast"] == cal.cv_scale_fast


def test_a_calibration_file_of_version_1_is_refused_by_name(tmp_path):
    """Version 1 files scaled the fast layer by sigma_l's factor: refused, naming the fix."""
    from pipeline.errors import InputError

    path = _file(tmp_path, _cfg(dt_ms=0.1, target_cv_mm_per_ms=0.6))
    body = json.loads(path.read_text())
    body["version"] = 1
    path.write_text(json.dumps(body))
    with pytest.raises(InputError, match=r"version 1, this pipeline reads version 2 .*"
                                         r"rerun 'pipeline calibrate'"):
        read_calibration(path)


def test_the_continuum_relation_sets_the_per_direction_targets(tmp_path):
    """simulate.cv_relation continuum: the monodomain's per-direction targets are the
    converged CVs (1.6926 sqrt(sigma)), the fast layer's that CV of sigma_fast times its
    load (the reaction-eikonal mode's layer speed); every scale reaches its target on the
    2 mm grid, each above the 0.1 mm cables' scale; a file records its relation, and a
    file of the other relation is refused by name while one without it (older) reads as
    the 0.1 mm cables'."""
    from pipeline.monodomain.cv_relation import cv_from_sigma
    from pipeline.monodomain.layer import layer_load
    from pipeline.simulate.calibration import calibrate, check_calibration

    cont = _cfg(dt_ms=0.1, cv_relation="continuum")
    cal = calibrate(cont, RESOLUTION_MM, 0.15, 0.04, sigma_fast=0.8)
    targets = {"l": cv_from_sigma(0.15, "continuum"), "t": cv_from_sigma(0.04, "continuum"),
               "fast": cv_from_sigma(0.8, "continuum") * float(layer_load(0.8, 0.15, 0.04,
                                                                          1.0))}
    for key, target in targets.items():
        assert cal.record[key]["target_cv_mm_per_ms"] == pytest.approx(target, rel=1e-9)
        assert cal.record[key]["achieved_cv_mm_per_ms"] == pytest.approx(target, rel=0.02)
    cab = _cfg(dt_ms=0.1, cv_relation="cable_0.1mm")
    cable = calibrate(cab, RESOLUTION_MM, 0.15, 0.04, sigma_fast=0.8)
    assert cal.cv_scale > cable.cv_scale and cal.cv_scale_t > cable.cv_scale_t
    assert cal.cv_scale_fast > cable.cv_scale_fast
    assert cal.inputs["cv_relation"] == "continuum"
    table = pd.DataFrame({"sim_id": [0], "sigma_l": [0.15], "sigma_t": [0.04]})
    with pytest.raises(CalibrationMismatch, match="cv_relation = continuum, this shard has "
                                                  "cable_0.1mm"):
        check_calibration(cal, cab, RESOLUTION_MM, table, "f.json")
    older = replace(cable, inputs={k: v for k, v in cable.inputs.items() if k != "cv_relation"})
    check_calibration(older, cab, RESOLUTION_MM, table, "f.json")
    with pytest.raises(CalibrationMismatch, match="cv_relation"):
        check_calibration(older, cont, RESOLUTION_MM, table, "f.json")
