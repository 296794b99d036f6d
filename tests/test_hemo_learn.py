"""Campaign file, emulator, inverse networks, patient CSV and twins of pipeline.hemo (tiny sizes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch

from pipeline.config import resolve
from pipeline.errors import InputError
from pipeline.hemo import params as P
from pipeline.hemo.patients import read_patients

torch.set_num_threads(1)


def tiny_config(**over: Any) -> dict[str, Any]:
    cfg = {"hemo": {
        "solver": {"n_cycles": 4, "steps_per_cycle": 60},
        "campaign": {"n_simulations": 160, "batch": 160, "curve_points": 16, "val_fraction": 0.15,
                     "test_fraction": 0.2},
        "emulator": {"hidden": 64, "layers": 2, "epochs": 150, "batch": 32, "lr": 0.003},
        "inverse": {"hidden": 32, "layers": 2, "epochs": 200, "batch": 32, "lr": 0.005},
        "lvad": {"speeds_rpm": [11000], "max_patients": 3},
        "patients": {"n_pv_loops": 2},
        **over}}
    return resolve(cfg)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from pipeline.hemo.campaign import run_campaign
    from pipeline.hemo.emulator import train_emulator
    from pipeline.hemo.inverse import train_inverse

    root = tmp_path_factory.mktemp("hemo")
    full = tiny_config()
    cfg, seed = full["hemo"], full["seed"]
    run_campaign(root / "campaign.h5", cfg, seed)
    emu = train_emulator(root / "campaign.h5", root / "emulator.pt", root / "emulator.json", cfg, seed)
    inv = train_inverse(root / "campaign.h5", root / "emulator.pt", root, cfg, seed)
    return {"root": root, "cfg": cfg, "seed": seed, "emulator": emu, "inverse": inv}


def test_campaign_file_layout_and_consistency(trained: dict[str, Any]) -> None:
    from pipeline.hemo.campaign import read_campaign, sample_parameters

    path = trained["root"] / "campaign.h5"
    camp = read_campaign(path)
    low, high = (b.numpy() for b in P.bounds())
    assert camp.params.shape == (160, 7)
    assert ((camp.params >= low) & (camp.params <= high)).all()
    assert np.allclose(camp.params, sample_parameters(160, trained["seed"]).numpy())   # same seed, same sweep
    ind = camp.indices
    assert np.allclose(ind["EF_percent"], 100 * (ind["EDV_mL"] - ind["ESV_mL"]) / ind["EDV_mL"], atol=1e-3)
    assert np.allclose(ind["HR_bpm"], 60.0 / camp.params[:, 0], rtol=1e-5)
    vol = camp.curves["volume_mL"]
    assert vol.shape == (160, 16)
    assert (vol.max(1) <= ind["EDV_mL"] + 1e-3).all() and (vol.max(1) > ind["EDV_mL"] - 15).all()
    parts = [camp.split[k] for k in ("train", "val", "test")]
    assert sum(len(p) for p in parts) == 160 and len(np.unique(np.concatenate(parts))) == 160
    with h5py.File(path, "r") as f:
        assert "git_commit" in f.attrs and "config_yaml" in f.attrs
        assert f["params/Emax"].attrs["unit"] == "mmHg/mL"


def test_emulator_beats_the_mean_predictor(trained: dict[str, Any]) -> None:
    from pipeline.hemo.campaign import read_campaign

    camp = read_campaign(trained["root"] / "campaign.h5")
    te = camp.split["test"]
    edv = camp.indices["EDV_mL"]
    mean_mae = np.abs(edv[te] - edv[camp.split["train"]].mean()).mean()
    test = trained["emulator"]["splits"]["test"]
    assert test["EDV_mae_mL"] < 0.35 * mean_mae
    assert test["curve_rmse_mL"] < 0.5 * edv[te].std()


def test_inverse_networks_recover_heart_rate_and_report_identifiability(trained: dict[str, Any]) -> None:
    rep = trained["inverse"]
    for net in ("pssl", "supervised"):
        assert rep["networks"][net]["test_r2"]["Tc"] > 0.8       # HR = 60 / Tc is measured
        assert set(rep["networks"][net]["test_r2"]) == set(P.INFERRED)
    assert rep["identifiable"]["Tc"] is True
    saved = json.loads((trained["root"] / "identifiability.json").read_text())
    assert saved["identifiable"] == rep["identifiable"]
    assert (trained["root"] / "identifiability.png").stat().st_size > 10_000


def test_twins_from_an_echonet_filelist(trained: dict[str, Any], tmp_path: Path) -> None:
    from pipeline.hemo.twins import make_twins

    csv = tmp_path / "FileList.csv"
    csv.write_text("FileName,EF,ESV,EDV,FrameHeight,FrameWidth,FPS,NumberOfFrames,Split\n"
                   "0X1A,25.0,120.0,160.0,112,112,50,201,TEST\n"
                   "0X1B,60.0,40.0,100.0,112,112,50,201,TEST\n"
                   "0X1C,45.0,66.0,120.0,112,112,50,201,TEST\n")
    pats = read_patients(csv, 75.0)
    assert pats.ids == ["0X1A", "0X1B", "0X1C"]
    assert np.allclose(pats.hr, 75.0)
    summary = make_twins(pats, trained["root"] / "pssl.pt", tmp_path / "out", trained["cfg"], trained["seed"])
    table = np.genfromtxt(tmp_path / "out" / "parameters.csv", delimiter=",", names=True, dtype=None,
                          encoding=None)
    assert np.allclose(table["Tc"], 0.8, atol=0.1)               # 75 bpm
    assert summary["lvad"]["n_patients"] == 3
    for name in ("pv_loops.png", "lvad_trial.png", "lvad_trial.csv"):
        assert (tmp_path / "out" / name).stat().st_size > 100


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.csv"
    path.write_text(text)
    return path


def test_patient_csv_columns_and_defaults(tmp_path: Path) -> None:
    pats = read_patients(write(tmp_path, "id,EDV_mL,ESV_mL,HR_bpm\nA,150,90,60\nB,120,50,\n"), 70.0)
    assert pats.ids == ["A", "B"]
    assert np.allclose(pats.ef, [40.0, 100 * 70 / 120])
    assert np.allclose(pats.hr, [60.0, 70.0])


@pytest.mark.parametrize("text, words", [
    ("FileName,EF,EDV\nx,50,100\n", ["missing column 'ESV'"]),
    ("EDV,ESV\n100,120\n", ["row 1", "line 2", "'ESV'", "larger than EDV"]),
    ("EDV,ESV,EF\n100,50,50\n100,40,120\n", ["row 2", "'EF'", "outside 0-100"]),
    ("EDV,ESV\n100,50\n-3,-5\n", ["row 2", "'EDV'", "positive"]),
    ("EDV,ESV\n100,abc\n", ["row 1", "'ESV'", "not a number"]),
    ("EDV,ESV\n100,\n", ["row 1", "'ESV'", "empty"]),
    ("EDV,ESV,HR\n100,50,0\n", ["row 1", "'HR'", "heart rate"]),
])
def test_patient_csv_errors_name_row_and_column(tmp_path: Path, text: str, words: list[str]) -> None:
    with pytest.raises(InputError) as err:
        read_patients(write(tmp_path, text))
    for word in words:
        assert word in str(err.value)
