"""Import of the authors' .npy layout: leads, labels, pairing and shape errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from campaign_synth import action_potential, expected_labels
from pipeline import cli
from pipeline.campaign.llnl import find_pairs, import_llnl, point_names
from pipeline.errors import InputError

SPLIT = {"by": "sample", "val_fraction": 0.2, "test_fraction": 0.2}


def _write_tree(root, n_per_folder=3):
    """Two sub-folders of pECGData_*/VmData_* pairs; returns {file key: (pecg, vm, ta)}."""
    rng = np.random.default_rng(0)
    made = {}
    for folder in ("data_hearts_a", "data_hearts_b"):
        (root / folder).mkdir(parents=True)
        for k in range(n_per_folder):
            key = f"{folder}_volunteer.v{k}_pattern.{k}"
            pecg = rng.normal(size=(500, 10))  # float64 (500, 10): RA LA LL RL V1..V6
            ta = rng.integers(5, 120, size=75).astype(np.float64)
            vm = action_potential(ta).T  # (500, 75)
            np.save(root / folder / f"pECGData_{key}.npy", pecg)
            np.save(root / folder / f"VmData_{key}.npy", vm)
            made[f"{folder}/pECGData_{key}.npy"] = (pecg, vm, ta)
    (root / "README.txt").write_text("not data")
    return made


def test_import_converts_leads_and_labels(tmp_path):
    made = _write_tree(tmp_path / "llnl")
    out = tmp_path / "llnl.h5"
    report = import_llnl(tmp_path / "llnl", out, split_cfg=SPLIT, seed=1)
    assert report["n"] == 6 and report["splits"] == {"train": 4, "val": 1, "test": 1}
    with h5py.File(out, "r") as h5:
        files = [f.decode() for f in h5["params/file"][()]]
        assert sorted(files) == files and set(files) == set(made)
        assert [a.decode() for a in h5["params/anatomy"][()]] == ["data_hearts_a"] * 3 + \
            ["data_hearts_b"] * 3
        for i, name in enumerate(files):
            pecg, vm, ta = made[name]
            ra, la, ll = pecg[:, 0], pecg[:, 1], pecg[:, 2]
            w = (ra + la + ll) / 3
            want = np.stack([la - ra, ll - ra, ll - la, 1.5 * (ra - w), 1.5 * (la - w),
                             1.5 * (ll - w), *(pecg[:, 4 + v] - w for v in range(6))])
            np.testing.assert_allclose(h5["ecg"][i], want, atol=1e-5)
            np.testing.assert_array_equal(h5["electrodes"][i], pecg.T.astype(np.float32))
            np.testing.assert_array_equal(h5["vm"][i], vm.T.astype(np.float32))
            act, label, apd = expected_labels(ta)
            np.testing.assert_allclose(h5["activation_ms"][i], act, atol=1e-4)
            np.testing.assert_array_equal(h5["activation_label_ms"][i], label)
            np.testing.assert_allclose(h5["apd90_ms"][i], apd, atol=1e-3)
        assert [p.decode() if isinstance(p, bytes) else p
                for p in h5.attrs["point_names"]] == point_names()
        assert h5.attrs["source"] == "llnl"


def test_point_names_follow_the_design():
    names = point_names()
    assert len(names) == 75 == len(set(names))
    assert names[0] == "AHA01" and names[17] == "RV01" and names[30] == "EPI_AHA01"
    assert names[50] == "MID_AHA01" and names[70] == "SEPTM_AHA02_RV05"


def test_file_without_partner_is_named(tmp_path):
    _write_tree(tmp_path / "llnl")
    lonely = tmp_path / "llnl" / "data_hearts_b" / "VmData_data_hearts_b_volunteer.v9_pattern.9.npy"
    np.save(lonely, np.zeros((500, 75)))
    with pytest.raises(InputError, match=rf"{lonely.name}: no partner file .*pECGData_data_hearts_b_volunteer.v9"):
        find_pairs(tmp_path / "llnl")


def test_wrong_shape_is_named(tmp_path):
    _write_tree(tmp_path / "llnl")
    bad = tmp_path / "llnl" / "data_hearts_a" / "pECGData_data_hearts_a_volunteer.v1_pattern.1.npy"
    np.save(bad, np.zeros((500, 12)))
    with pytest.raises(InputError, match=rf"{bad.name}: shape \(500, 12\), expected \(500, 10\)"):
        find_pairs(tmp_path / "llnl")


def test_nan_and_empty_folders_are_errors(tmp_path):
    _write_tree(tmp_path / "llnl")
    bad = tmp_path / "llnl" / "data_hearts_b" / "VmData_data_hearts_b_volunteer.v2_pattern.2.npy"
    vm = np.load(bad)
    vm[3, 4] = np.nan
    np.save(bad, vm)
    with pytest.raises(InputError, match=rf"{bad.name}: contains NaN"):
        import_llnl(tmp_path / "llnl", tmp_path / "x.h5", split_cfg=SPLIT, seed=1)
    assert not (tmp_path / "x.h5").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no pECGData_"):
        find_pairs(tmp_path / "empty")


def test_cli_import(tmp_path, capsys):
    _write_tree(tmp_path / "llnl", n_per_folder=2)
    out = tmp_path / "llnl.h5"
    assert cli.main(["import-llnl", str(tmp_path / "llnl"), "--out", str(out),
                     "--summary", str(tmp_path / "s.json")]) == 0
    assert out.exists() and (tmp_path / "s.json").exists()
    assert cli.main(["import-llnl", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    assert "is not a folder" in capsys.readouterr().err
