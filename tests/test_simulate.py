"""The simulate stage: bad inputs fail before any simulation; a normal beat on a coarse heart."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.cli import main
from pipeline.config import section
from pipeline.errors import InputError
from pipeline.params import COLUMNS
from pipeline.settings import SimulateSettings
from pipeline.simulate.run import prepare_shard

RESOLUTION_MM = 2.0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A 2 mm parametric heart, a cells file (TP06's BCL 1000 ms states) and a table."""
    from pipeline.anatomy.build import build_parametric
    from pipeline.anatomy.io import write_anatomy
    from pipeline.cell import tp06
    from pipeline.cell.steady import InitialStates, write_initial_states

    root = tmp_path_factory.mktemp("simulate")
    settings, seed = section({"anatomy": {"resolution_mm": RESOLUTION_MM}}, "anatomy")
    anatomy, _ = build_parametric(0, seed, settings)
    write_anatomy(root / "anatomy.h5", anatomy)
    start = tp06.initial_state(["endo", "M", "epi"], dtype=torch.float64).T.numpy()  # (3, 19)
    states = np.broadcast_to(start[:, None, None, :], (3, 1, 2, tp06.N_STATES)).copy()
    write_initial_states(root / "cells.h5", InitialStates(
        states=states, celltypes=("endo", "M", "epi"), bcl_ms=np.array([1000.0]),
        gkr_scale=np.array([0.5, 1.0])))
    table = pd.DataFrame({"sim_id": [0], "anatomy": [anatomy.name], "pattern": ["normal"],
                          "sigma_l": [0.15], "sigma_t": [0.04], "sigma_fast_endo": [0.8],
                          "gkr_scale": [1.0], "bcl_ms": [1000.0], "seed": [11],
                          "site_jitter_mm": [0.0], "site_delay_max_ms": [0.0]})
    table.to_csv(root / "params.csv", index=False)
    return root, anatomy, table


def _cfg(**over):
    cfg, _ = section({"simulate": over}, "simulate")
    return SimulateSettings.from_config(cfg)


def _write(root, table, name):
    path = root / name
    table.to_csv(path, index=False)
    return path


def test_bad_inputs_fail_before_any_simulation(inputs, capsys):
    root, anatomy, table = inputs
    anat, cells = root / "anatomy.h5", root / "cells.h5"
    job = prepare_shard(anat, cells, root / "params.csv", _cfg())
    assert job.n_samples == 500 and job.record_every == 25
    assert len(job.point_index) == 75

    bad = table.copy()
    bad["sigma_l"] = 25.0
    with pytest.raises(InputError, match=r"sim_id 0: column sigma_l = 25.0 is out of range"):
        prepare_shard(anat, cells, _write(root, bad, "range.csv"), _cfg())
    bad = table.copy()
    bad["pattern"] = "wolff_parkinson_white"
    with pytest.raises(InputError, match="unknown pattern 'wolff_parkinson_white'; expected one "
                                         "of normal, lbbb, rbbb, rv_apex, lv_lateral"):
        prepare_shard(anat, cells, _write(root, bad, "pattern.csv"), _cfg())
    bad = table.copy()
    bad["bcl_ms"] = 600.0
    with pytest.raises(InputError, match="bcl_ms = 600 has no initial state"):
        prepare_shard(anat, cells, _write(root, bad, "bcl.csv"), _cfg())
    with pytest.raises(InputError, match="missing column.*site_jitter_mm"):
        prepare_shard(anat, cells, _write(root, table.drop(columns="site_jitter_mm"),
                                          "cols.csv"), _cfg())
    bad = table.copy()
    bad["anatomy"] = "param007"
    with pytest.raises(InputError, match="names 'param007' but the anatomy file is"):
        prepare_shard(anat, cells, _write(root, bad, "heart.csv"), _cfg())
    with pytest.raises(InputError, match="record_every_ms = 0.5 must be a multiple"):
        prepare_shard(anat, cells, root / "params.csv", _cfg(dt_ms=0.03, record_every_ms=0.5))

    broken = root / "broken_anatomy.h5"
    shutil.copy(anat, broken)
    with h5py.File(broken, "r+") as h5:
        del h5["points/ijk"]
    with pytest.raises(InputError, match="missing field 'points/ijk'"):
        prepare_shard(broken, cells, root / "params.csv", _cfg())

    # Through the CLI: exit code 1, a one-line message, no output file.
    out = root / "never.h5"
    code = main(["simulate", "--anatomy", str(broken), "--cells", str(cells), "--params",
                 str(root / "params.csv"), "--out", str(out)])
    assert code == 1 and not out.exists()
    assert "missing field 'points/ijk'" in capsys.readouterr().err
    code = main(["simulate", "--anatomy", str(anat), "--cells", str(cells), "--params",
                 str(root / "pattern.csv"), "--out", str(out)])
    assert code == 1 and not out.exists()
    assert list(COLUMNS)[0] == "sim_id"


def test_normal_beat_on_coarse_heart_gives_a_plausible_ecg(inputs, tmp_path):
    """One normal beat, 2 mm heart, 400 ms, CV calibrated to 0.6 mm/ms, through the CLI.

    Every point activates; QRS 70-120 ms on the ECG; millivolt amplitudes; a T wave; the
    figures of the simulation are drawn.
    """
    import json

    from pipeline.signals.features import beat_features
    from pipeline.signals.leads import LEAD_NAMES
    from pipeline.simulate.shard import read_shard

    root, anatomy, _ = inputs
    out = tmp_path / "shard.h5"
    settings = {"simulate": {"dt_ms": 0.1, "duration_ms": 400.0, "target_cv_mm_per_ms": 0.6,
                             "save_activation_map": True}}
    code = main(["simulate", "--anatomy", str(root / "anatomy.h5"), "--cells",
                 str(root / "cells.h5"), "--params", str(root / "params.csv"), "--out", str(out),
                 "--threads", "2", "--compile", "--settings", json.dumps(settings)])
    assert code == 0
    data = read_shard(out)
    amap = data.activation_map_ms[0]
    total = float(np.nanmax(amap) - np.nanmin(amap))
    assert data.ecg.shape == (1, 12, 400) and data.vm.shape == (1, 75, 400)
    act = data.activation_ms[0]
    f = beat_features(data.ecg[0], data.dt_ms)
    print(f"\nactivation at the 75 points: {np.nanmin(act):.1f}-{np.nanmax(act):.1f} ms; "
          f"APD90 {np.nanmin(data.apd90_ms):.0f}-{np.nanmax(data.apd90_ms):.0f} ms")
    print("ECG figures:", json.dumps(f.as_dict()))
    print("peak-to-peak per lead (mV):", dict(zip(LEAD_NAMES, np.round(np.ptp(data.ecg[0], axis=1),
                                                                       2).tolist())))
    assert np.isfinite(act).all() and act.max() < 120.0              # every point activated
    # QRS duration: the ECG's QRS spans the heart's activation. This single-scale 2 mm
    # monodomain (x4.2) is the distorted setting of docs/monodomain.md: its total activation
    # is 133 ms (114-118 ms with the RV half as wide as before 2026-12-02; 80-90 ms with the
    # reaction-eikonal mode), so the bound is the activation's, not the clinical 80-110 ms
    # (tests/test_reaction_eikonal.py checks that).
    print(f"total activation {total:.1f} ms, QRS {f.qrs_duration_ms:.0f} ms")
    assert 70.0 <= f.qrs_duration_ms <= 145.0 and abs(f.qrs_duration_ms - total) <= 10.0
    assert 0.3 <= f.qrs_amplitude_mV <= 20.0                          # millivolt range
    assert abs(f.t_amplitude_mV) >= 0.1 * f.qrs_amplitude_mV         # a T wave ...
    assert f.qrs_end_ms + 100.0 <= f.t_peak_ms <= 400.0               # ... after the ST segment
    # The paper's label is the 1-ms sample after the interpolated crossing, unless the
    # coarse grid notches the upstroke: AHA01 crosses 0 mV at 12.0 ms on line, reads -0.3 mV
    # at 12 ms and -7.1 at 13, and +17.9 at 14 (the label).
    label = data.activation_label_ms[0]
    late = label - act > 1.0 + 1e-4
    print(f"labels more than 1 ms after the crossing: {np.flatnonzero(late).tolist()}")
    assert np.all(label >= act) and late.sum() <= 2
    # APD90 is 200-400 ms wherever the 400-ms record holds the repolarisation: the latest
    # points (activated near 97 ms) repolarise at its very end or after it.
    apd = data.apd90_ms[0]
    done = np.isfinite(apd)
    print(f"APD90 undefined at points {np.flatnonzero(~done).tolist()}, activated at "
          f"{np.round(act[~done], 1).tolist()} ms")
    assert done[act < 80.0].all() and done.sum() >= 70
    assert np.all((apd[done] > 200) & (apd[done] < 400))
    # Figures of the simulation.
    figs = tmp_path / "figures"
    assert main(["simulate-figures", "--shard", str(out), "--anatomy", str(root / "anatomy.h5"),
                 "--out", str(figs)]) == 0
    for name in ("ecg12.png", "vm.png", "activation3d.png"):
        assert (figs / name).stat().st_size > 10_000


def test_a_conductivity_that_blocks_on_the_grid_is_named_before_the_time_loop(inputs, caplog):
    """2 mm, one CV scale for every conductivity (x about 4.2 for 0.6 mm/ms): sigma_t
    0.02 S/m does not conduct across the fibres; the warning names the simulation."""
    from pipeline.anatomy.io import read_anatomy
    from pipeline.cell.steady import read_initial_states
    from pipeline.settings import RunSettings
    from pipeline.simulate.solver_adapter import ShardSolver

    root, _, table = inputs
    settings = _cfg(dt_ms=0.1, target_cv_mm_per_ms=0.6)
    run = RunSettings(device="cpu", dtype="float32", compile=False, batch_size=1, threads=1)
    solver = ShardSolver(read_anatomy(root / "anatomy.h5"),
                         read_initial_states(root / "cells.h5"), settings, run)
    assert solver.cv_scale > 3.0
    assert solver.check_propagation(table.assign(sigma_t=[0.06])) is None   # conducts
    slow = table.assign(sim_id=[5], sigma_t=[0.02])
    warning = solver.check_propagation(slow)
    assert warning is not None and warning.startswith("sim_id 5: sigma_t = 0.02 S/m")
    assert "blocks across the fibres" in caplog.text
