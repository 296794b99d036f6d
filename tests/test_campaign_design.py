"""Sweep design: prefix stability, stratification, Sobol space filling, shards, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from pipeline import cli
from pipeline.campaign import design
from pipeline.errors import InputError


def _config(n: int = 20, shard_size: int = 4, hearts: int = 2, **campaign) -> dict:
    return {"seed": 7, "anatomy": {"parametric": {"count": hearts}},
            "campaigns": {"demo": {"n_simulations": n, "shard_size": shard_size, **campaign}}}


def test_growing_keeps_rows_and_only_adds_or_tops_up_shards():
    small, big = _config(n=20), _config(n=37)
    t_small, t_big = design.design_table(small, "demo"), design.design_table(big, "demo")
    pd.testing.assert_frame_equal(t_small, t_big.iloc[:20])
    s_small, s_big = design.shard_names(small, "demo"), design.shard_names(big, "demo")
    assert set(s_small) <= set(s_big) and len(s_big) > len(s_small)
    changed = []
    for shard in s_small:
        same = design.shard_table(small, "demo", shard).equals(design.shard_table(big, "demo", shard))
        settings_same = (design.shard_settings(small, "demo", shard)
                         == design.shard_settings(big, "demo", shard))
        assert same == settings_same, shard  # params trigger fires exactly on changed shards
        if not same:
            changed.append(shard)
    # 20 sims over 2 hearts = 10 each = shards of 4, 4, 2: only the partial last shards grow
    assert changed == ["param000-002", "param001-002"]


def test_shard_settings_alone_reproduce_the_shard():
    config = _config(n=23, split={"by": "sample", "val_fraction": 0.2})
    config["anatomy"]["meshes"] = [{"name": "llnl", "path": "heart.vtk"}]
    config["anatomy"]["parametric"]["count"] = 3
    config["campaigns"]["demo"]["anatomies"] = ["llnl", "param001"]
    for shard in design.shard_names(config, "demo"):
        settings = design.shard_settings(config, "demo", shard)
        assert "split" not in settings["campaigns"]["demo"]
        pd.testing.assert_frame_equal(design.shard_table(settings, "demo", shard),
                                      design.shard_table(config, "demo", shard))
        assert settings["anatomy"] == {"parametric": {"count": 2},
                                       "meshes": [{"name": "llnl", "path": "heart.vtk"}]}
    assert {s.split("-")[0] for s in design.shard_names(config, "demo")} == {"llnl", "param001"}
    table = design.table_settings(config, "demo")
    pd.testing.assert_frame_equal(design.design_table(table, "demo"),
                                  design.design_table(config, "demo"))


def test_round_robin_and_shard_membership():
    config = _config(n=21, shard_size=3, hearts=3)
    table = design.design_table(config, "demo")
    assert (table["anatomy"] == [f"param{i % 3:03d}" for i in range(21)]).all()
    names = design.shard_names(config, "demo")
    assert names == [f"param{h:03d}-{k:03d}" for h in range(3) for k in range(3)]
    members = np.concatenate([design.shard_sim_ids(config, "demo", s) for s in names])
    assert sorted(members.tolist()) == list(range(21))
    assert design.shard_sim_ids(config, "demo", "param001-001").tolist() == [10, 13, 16]


def test_categorical_strata_are_balanced_in_every_block():
    config = _config(n=2 * 30 * 2, shard_size=10)  # two full blocks of 5 x 3 x 2 per heart
    table = design.design_table(config, "demo")
    combos = set(itertools.product(["normal", "lbbb", "rbbb", "rv_apex", "lv_lateral"],
                                   [0.0, 0.5, 1.0], [600.0, 1000.0]))
    for _, rows in table.groupby("anatomy"):
        rows = rows.sort_values("sim_id")
        for block in (rows.iloc[:30], rows.iloc[30:]):
            got = list(zip(block["pattern"], block["gkr_scale"], block["bcl_ms"], strict=True))
            assert set(got) == combos and len(got) == 30
        for start in range(0, 60, 5):  # every aligned run of 5 covers all patterns
            assert rows["pattern"].iloc[start:start + 5].nunique() == 5


def test_sobol_points_are_stratified_per_heart():
    """64 scrambled Sobol points put exactly one point in each 1/64 bin of every dimension."""
    config = _config(n=128, shard_size=64)
    table = design.design_table(config, "demo")
    ranges = {"sigma_l": (0.10, 0.20), "sigma_t": (0.02, 0.06),
              "sigma_fast_endo": (0.5, 1.0), "site_delay_max_ms": (0.0, 10.0)}
    for _, rows in table.groupby("anatomy"):
        assert len(rows) == 64
        for column, (low, high) in ranges.items():
            u = (rows[column].to_numpy() - low) / (high - low)
            assert (u >= 0).all() and (u < 1).all()
            assert sorted(np.floor(u * 64).astype(int).tolist()) == list(range(64)), column
    random = design.design_table(_config(n=128, shard_size=64, sampling="random"), "demo")
    u = (random["sigma_l"].to_numpy()[::2] - 0.1) / 0.1
    assert len(set(np.floor(u * 64).astype(int).tolist())) < 64  # iid draws leave gaps


def test_seeds_are_distinct_and_everything_follows_the_config_seed():
    table = design.design_table(_config(n=200), "demo")
    assert table["seed"].is_unique and (table["site_jitter_mm"] == 3.0).all()
    assert design.design_table(_config(n=200), "demo").equals(table)
    other = design.design_table({**_config(n=200), "seed": 8}, "demo")
    assert not np.isclose(other["sigma_l"], table["sigma_l"]).any()
    renamed = _config(n=200)
    renamed["campaigns"] = {"other": renamed["campaigns"]["demo"]}
    assert not design.design_table(renamed, "other")["seed"].isin(table["seed"]).any()


@pytest.mark.parametrize("config, words", [
    (_config(), "campaign 'nope' is not in config key 'campaigns'"),
    (_config(anatomies=["param007"]), "are not configured hearts"),
    (_config(conductivity={"sigma_t": [0.02, 0.3]}), "sigma_t's high 0.3 exceeds sigma_l's low"),
    (_config(conductivity={"sigma_l": [0.3, 0.2]}), "low 0.3 > high 0.2"),
])
def test_bad_campaigns_name_the_key(config, words):
    name = "nope" if "nope" in words else "demo"
    with pytest.raises(InputError, match=words.replace("(", r"\(")):
        design.shard_names(config, name)


def test_unknown_shard_is_an_error():
    with pytest.raises(InputError, match="shard 'param000-009' is not in campaign 'demo'"):
        design.shard_table(_config(), "demo", "param000-009")


def test_cli_writes_the_table_and_every_shard(tmp_path):
    import json

    config = _config(n=10, shard_size=3)
    out = tmp_path / "demo.csv"
    rc = cli.main(["design", "--campaign", "demo", "--out", str(out), "--shards-dir",
                   str(tmp_path / "demo"), "--settings", json.dumps(config)])
    assert rc == 0
    whole = design.read_design(out)
    pd.testing.assert_frame_equal(whole, design.design_table(config, "demo"))
    parts = [design.read_design(tmp_path / "demo" / f"{s}.csv")
             for s in design.shard_names(config, "demo")]
    joined = pd.concat(parts).sort_values("sim_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(joined, whole)
    bad = tmp_path / "bad.csv"
    bad.write_text("sim_id,anatomy\n0,param000\n")
    with pytest.raises(InputError, match="missing column"):
        design.read_design(bad)
