"""Dataset assembly from shard files: order, labels, splits, integrity errors, summary."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest

from campaign_synth import electrodes_for, expected_labels, make_shard, point_activation
from pipeline import cli
from pipeline.campaign import design
from pipeline.campaign.assemble import assemble
from pipeline.campaign.splits import split_by_anatomy, split_by_sample
from pipeline.errors import InputError

T = 120  # samples per trace: short keeps the tests fast; labels stay analytic
SPLIT = {"by": "sample", "val_fraction": 0.1, "test_fraction": 0.1}


def _config(n: int = 12, hearts: int = 2) -> dict:
    return {"seed": 3, "anatomy": {"parametric": {"count": hearts}},
            "campaigns": {"demo": {"n_simulations": n, "shard_size": 4}}}


def _shards(tmp_path, config, n_samples=T):
    paths = []
    for shard in design.shard_names(config, "demo"):
        paths.append(make_shard(tmp_path / "sims" / f"{shard}.h5",
                                design.shard_table(config, "demo", shard), n_samples))
    return paths


def _labels_short(ta):
    """Labels for T = 120 samples: the AP never repolarises inside the window."""
    act, label, _ = expected_labels(ta)
    return act, label


def test_assembly_orders_by_sim_id_and_keeps_values(tmp_path):
    config = _config()
    paths = _shards(tmp_path, config)
    table = design.design_table(config, "demo")
    out = tmp_path / "demo.h5"
    report = assemble(paths[::-1], out, split_cfg=SPLIT, seed=3, campaign="demo", design=table)
    assert report["n"] == 12 and report["splits"] == {"train": 10, "val": 1, "test": 1}
    with h5py.File(out, "r") as h5:
        assert h5["ecg"].shape == (12, 12, T) and h5["vm"].shape == (12, 75, T)
        np.testing.assert_array_equal(h5["params/sim_id"][()], np.arange(12))
        for i in (0, 5, 11):
            np.testing.assert_allclose(h5["electrodes"][i], electrodes_for(i, T), atol=1e-6)
            act, label = _labels_short(point_activation(i))
            np.testing.assert_allclose(h5["activation_ms"][i], act, atol=1e-4)
            np.testing.assert_array_equal(h5["activation_label_ms"][i], label)
        anatomy = [a.decode() for a in h5["params/anatomy"][()]]
        assert anatomy == table["anatomy"].tolist()
        np.testing.assert_array_equal(h5["params/sigma_l"][()], table["sigma_l"].to_numpy())
        assert [n.decode() if isinstance(n, bytes) else n for n in h5.attrs["lead_names"]][:3] \
            == ["I", "II", "III"]
        assert h5.attrs["dt_ms"] == 1.0 and "git_commit" in h5.attrs


def test_two_assemblies_are_identical_whatever_the_shard_order(tmp_path):
    paths = _shards(tmp_path, _config())
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    assemble(paths, a, split_cfg=SPLIT, seed=3, campaign="demo")
    assemble(sorted(paths, key=lambda p: p.name[::-1]), b, split_cfg=SPLIT, seed=3,
             campaign="demo")
    with h5py.File(a, "r") as ha, h5py.File(b, "r") as hb:
        for name in ("ecg", "electrodes", "vm", "activation_ms", "apd90_ms",
                     "split/train", "split/val", "split/test", "params/seed"):
            np.testing.assert_array_equal(ha[name][()], hb[name][()])


def test_random_split_sizes_and_stability():
    ids = np.arange(2000)
    splits = split_by_sample(ids, 0.05, 0.0, seed=1, campaign="paper")
    assert [len(splits[k]) for k in ("train", "val", "test")] == [1900, 100, 0]
    grown = split_by_sample(np.arange(2100), 0.05, 0.0, seed=1, campaign="paper")
    moved = np.setdiff1d(splits["val"], grown["val"]).size
    assert moved <= 10  # growing by 5 % moves about 5 % of the validation samples
    tiny = split_by_sample(np.arange(8), 0.05, 0.05, seed=1, campaign="ci")
    assert len(tiny["val"]) == 1 and len(tiny["test"]) == 1


def test_split_by_anatomy_holds_out_whole_hearts():
    anatomy = np.array([f"h{i % 5}" for i in range(50)], dtype=object)
    splits = split_by_anatomy(anatomy, 0.2, 0.2, seed=1, campaign="demo")
    held = {k: set(anatomy[v]) for k, v in splits.items()}
    assert all(len(held[k]) == 1 for k in ("val", "test")) and len(held["train"]) == 3
    assert not held["train"] & (held["val"] | held["test"])
    with pytest.raises(InputError, match="cannot give"):
        split_by_anatomy(anatomy[anatomy == "h1"], 0.2, 0.2, seed=1, campaign="demo")


def _corrupt(path, name, index, value):
    with h5py.File(path, "r+") as h5:
        data = h5[name][()]
        data[index] = value
        h5[name][...] = data


def test_nan_signal_is_an_error_naming_shard_and_sim(tmp_path):
    paths = _shards(tmp_path, _config())
    _corrupt(paths[1], "vm", (1, 5, 40), np.nan)
    with h5py.File(paths[1], "r") as h5:
        sim = int(h5["params/sim_id"][1])
    with pytest.raises(InputError, match=rf"{paths[1].name}.*'vm' of sim_id {sim} has NaN"):
        assemble(paths, tmp_path / "x.h5", split_cfg=SPLIT, seed=3, campaign="demo")
    assert not (tmp_path / "x.h5").exists()


def test_leads_inconsistent_with_electrodes_are_an_error(tmp_path):
    paths = _shards(tmp_path, _config())
    _corrupt(paths[0], "ecg", (1, 2, 10), 5.0)  # lead III no longer LL - LA
    with pytest.raises(InputError, match="differ from its electrodes"):
        assemble(paths, tmp_path / "x.h5", split_cfg=SPLIT, seed=3, campaign="demo")


def test_shards_must_match_the_design(tmp_path):
    config = _config()
    paths = _shards(tmp_path, config)
    table = design.design_table(config, "demo")
    with pytest.raises(InputError, match=r"missing sim_id \[0, 2, 4, 6, 8, 10\]"):
        assemble(paths[2:], tmp_path / "x.h5", split_cfg=SPLIT, seed=3, campaign="demo",
                 design=table)
    changed = table.copy()
    changed.loc[4, "sigma_t"] = 0.05123
    with pytest.raises(InputError, match="params/sigma_t of sim_id 4"):
        assemble(paths, tmp_path / "x.h5", split_cfg=SPLIT, seed=3, campaign="demo",
                 design=changed)
    with pytest.raises(InputError, match="sim_id 0 appears in more than one place"):
        assemble(paths + [paths[0]], tmp_path / "x.h5", split_cfg=SPLIT, seed=3,
                 campaign="demo")


def test_shards_of_different_lengths_are_an_error(tmp_path):
    config = _config()
    paths = _shards(tmp_path, config)
    other = make_shard(tmp_path / "other.h5",
                       design.shard_table(config, "demo", "param000-000"), T + 10)
    with pytest.raises(InputError, match="other.h5: ecg shape"):
        assemble([paths[1], other], tmp_path / "x.h5", split_cfg=SPLIT, seed=3,
                 campaign="demo")


def test_cli_writes_dataset_summary_and_figure(tmp_path):
    config = _config(n=16)
    paths = _shards(tmp_path, config)
    table = design.design_table(config, "demo")
    design.write_design(table, tmp_path / "demo.csv")
    out = tmp_path / "demo.h5"
    settings = {**config, "campaigns": {"demo": {**config["campaigns"]["demo"],
                                                 "split": {"by": "anatomy",
                                                           "val_fraction": 0.0,
                                                           "test_fraction": 0.5}}}}
    rc = cli.main(["dataset", "--shards", *map(str, paths), "--out", str(out),
                   "--campaign", "demo", "--design", str(tmp_path / "demo.csv"),
                   "--summary", str(tmp_path / "s.json"), "--figure", str(tmp_path / "s.png"),
                   "--settings", json.dumps(settings)])
    assert rc == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["n"] == 16 and summary["splits"] == {"test": 8, "train": 8, "val": 0}
    assert summary["counts"]["pattern"] == table["pattern"].value_counts().sort_index().to_dict()
    assert summary["ranges"]["sigma_l"]["min"] == pytest.approx(table["sigma_l"].min())
    act = np.stack([_labels_short(point_activation(i))[0] for i in range(16)])
    assert summary["qrs_ms"]["max"] == pytest.approx((act.max(1) - act.min(1)).max(), abs=1e-4)
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    # the textbook criteria are tallied for the patterns that have them (not rv_apex and
    # lv_lateral); the synthetic shards' ECGs are no beats, so few criteria are met
    counts = summary["counts"]["pattern"]
    assert set(summary["criteria"]) == {"normal", "lbbb", "rbbb"} & set(counts)
    for pattern, tally in summary["criteria"].items():
        assert tally["n"] == counts[pattern] and 0 <= tally["all_met"] <= tally["n"]
    with h5py.File(out, "r") as h5:
        assert h5.attrs["split_by"] == "anatomy"
        test_hearts = set(h5["params/anatomy"][()][h5["split/test"][()]])
        assert len(test_hearts) == 1
    assert pd.read_csv(tmp_path / "demo.csv").shape == (16, 11)
