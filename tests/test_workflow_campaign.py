"""The campaign part of the workflow run by Snakemake on the CI config: design before
simulation, the dataset rule, and rerunning single stages (--forcerun, --until, growing a
campaign, changing the split) checked with dry runs.

While a stage upstream of the dataset has no CLI in this checkout, its files are stood in
for in the exact layout (``workflow_helpers.fake_upstream``).
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.campaign import design
from workflow_helpers import CI_CONFIG, TARGET, ci_local_run, job_counts, snakemake  # noqa: F401

# one xdist worker runs all the modules that share the CI workflow run (tests/conftest.py)
pytestmark = pytest.mark.slow


def test_design_and_dataset_of_the_ci_run(ci_local_run):
    workdir, log = ci_local_run
    config = yaml.safe_load(CI_CONFIG.read_text())
    table = design.read_design(workdir / "results" / "design" / "ci.csv")
    pd.testing.assert_frame_equal(table, design.design_table(config, "ci"))
    for shard in design.shard_names(config, "ci"):
        part = design.read_design(workdir / "results" / "design" / "ci" / f"{shard}.csv")
        pd.testing.assert_frame_equal(part, design.shard_table(config, "ci", shard))
    with h5py.File(workdir / TARGET, "r") as h5:
        np.testing.assert_array_equal(h5["params/sim_id"][()], table["sim_id"].to_numpy())
        np.testing.assert_array_equal(h5["params/sigma_l"][()], table["sigma_l"].to_numpy())
        assert [h5["params/pattern"][i].decode() for i in range(4)] == table["pattern"].tolist()
        sizes = {k: len(h5["split"][k]) for k in ("train", "val", "test")}
        assert sizes == {"train": 2, "val": 1, "test": 1}  # 25 % / 25 % of 4
        assert np.isfinite(h5["ecg"][()]).all() and np.isfinite(h5["vm"][()]).all()
    assert (workdir / "results" / "dataset" / "ci.png").stat().st_size > 0
    again = snakemake(workdir, "-n", TARGET)
    assert "Nothing to be done" in again.stdout + again.stderr


def _variant(tmp_path, name, **campaign):
    config = yaml.safe_load(CI_CONFIG.read_text())
    config["campaigns"]["ci"].update(campaign)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_growing_the_campaign_reruns_only_new_shards(ci_local_run, tmp_path):
    workdir, _ = ci_local_run
    grown = _variant(tmp_path, "grown", n_simulations=7)  # 4 -> 7: a full and a partial shard
    out = snakemake(workdir, "-n", TARGET, config=grown)
    text = out.stdout + out.stderr
    assert job_counts(text) == {"design": 2, "design_table": 1, "simulate": 2, "dataset": 1}
    for old in ("param000-000", "param000-001"):
        assert f"shard={old}" not in text
    assert "shard=param000-002" in text and "shard=param000-003" in text


def test_split_change_reruns_only_the_dataset(ci_local_run, tmp_path):
    workdir, _ = ci_local_run
    split = _variant(tmp_path, "split", split={"by": "sample", "val_fraction": 0.5,
                                               "test_fraction": 0.0})
    out = snakemake(workdir, "-n", TARGET, config=split)
    assert job_counts(out.stdout + out.stderr) == {"dataset": 1}


@pytest.mark.parametrize("args, expected", [
    (("--forcerun", "design_table"), {"design_table": 1, "dataset": 1}),
    (("--forcerun", "design", "--until", "simulate"), {"design": 2, "simulate": 2}),
])
def test_forcerun_and_until(ci_local_run, args, expected):
    workdir, _ = ci_local_run
    out = snakemake(workdir, "-n", TARGET, *args)
    assert job_counts(out.stdout + out.stderr) == expected
