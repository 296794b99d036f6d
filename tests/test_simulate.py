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
from pipeline.measure.params import COLUMNS
from pipeline.measure.simulate import prepare_shard

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
    return cfg


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
