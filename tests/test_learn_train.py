"""Learning stage end to end on a tiny learnable dataset: train, evaluate, checkpoint, resume,
ONNX, predict (NumPy, CSV, WFDB) and every bad-input error."""

from __future__ import annotations

import csv
import json
import os

import h5py
import numpy as np
import pytest
import torch
from learn_synthetic import write_tiny_dataset

from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.learn import checkpoint
from pipeline.learn.data import paper_activation, read_dataset, scale_ecg
from pipeline.learn.predict import predict_file
from pipeline.learn.train import train

T = 112
SPLIT_KEYS = {"activation_mae_ms", "activation_sd_ms", "per_point_mae_ms"}


def _write_anatomy(path):
    """A hollow-sphere 'heart' with the 75 points inside its box (for the 3-D figure)."""
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    path.parent.mkdir(parents=True)
    i, j, k = np.mgrid[:16, :16, :16]
    r2 = (i - 8) ** 2 + (j - 8) ** 2 + (k - 8) ** 2
    with h5py.File(path, "w") as f:
        f["grid/origin"] = np.zeros(3)
        f["grid/spacing"] = np.ones(3)
        f["mask"] = (r2 < 49) & (r2 > 16)
        f["points/xyz"] = np.random.default_rng(0).uniform(2, 14, (75, 3))
        f.attrs["heart_name"] = "param000"
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Network I (batch 8) trained for 4 epochs through the CLI, then evaluated through the CLI."""
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("learn")
    ds = root / "tiny.h5"
    write_tiny_dataset(ds, n=96, t_len=T, seed=0, t0_range=(5.0, 60.0))
    settings = json.dumps({"seed": 7, "learn": {"epochs": 4, "shift_max_ms": 0,
                                                     "batch_size": 8}})
    assert main(["train", "--network", "I", "--dataset", str(ds), "--out", str(root / "models"),
                 "--settings", settings, "--no-progress", "--threads", "2"]) == 0
    model = root / "models" / "I.pt"
    anatomy = _write_anatomy(root / "anatomy" / "param000" / "anatomy.h5")
    assert main(["evaluate", "--model", str(model), "--dataset", str(ds), "--anatomy",
                 str(anatomy), "--out", str(root / "eval")]) == 0
    return {"root": root, "dataset": ds, "model": model, "eval": root / "eval"}


def test_training_reduces_loss_and_beats_the_mean_baseline(trained):
    with open(trained["root"] / "models" / "I.curves.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    train_loss = [float(r["train_loss"]) for r in rows]
    assert train_loss[-1] < train_loss[0] / 5
    assert (trained["root"] / "models" / "I.curves.png").stat().st_size > 1000
    m = json.loads((trained["eval"] / "metrics.json").read_text())
    # the mean baseline, computed independently from the file
    data = read_dataset(trained["dataset"])
    label = paper_activation(data.vm)
    mean = np.nanmean(label[data.splits["train"]], axis=0)
    mae_mean = np.nanmean(np.abs(label[data.splits["val"]] - mean))
    assert m["baselines"]["mean"]["val"]["activation_mae_ms"] == pytest.approx(mae_mean, rel=1e-5)
    assert m["splits"]["val"]["activation_mae_ms"] < 0.6 * mae_mean
    # this relation is nearly linear in the binned ECG: ridge must get it to ~1 ms
    assert m["baselines"]["ridge"]["val"]["activation_mae_ms"] < 1.5


def test_metrics_json_has_exactly_the_design_keys(trained):
    m = json.loads((trained["eval"] / "metrics.json").read_text())
    assert set(m) == {"network", "n_parameters", "dataset", "splits", "baselines"}
    assert m["network"] == "I" and m["n_parameters"] == 486_657
    assert set(m["splits"]) == {"val", "test"}
    assert set(m["baselines"]) == {"mean", "ridge"}
    for block in [m["splits"]] + list(m["baselines"].values()):
        for split in ("val", "test"):
            assert set(block[split]) == SPLIT_KEYS
            assert len(block[split]["per_point_mae_ms"]) == 75
    interp = json.loads((trained["eval"] / "metrics_interpolated.json").read_text())
    assert set(interp) == set(m)
    # paper labels are the ceiling of the interpolated ones: errors differ by < 1 ms
    diff = abs(interp["splits"]["val"]["activation_mae_ms"] - m["splits"]["val"]["activation_mae_ms"])
    assert diff < 1.0
    for name in ("ecg.png", "activation_maps.png", "error_boxplot.png", "vm_traces.png",
                 "activation_3d.png"):
        assert (trained["eval"] / name).stat().st_size > 1000
    out = trained["root"] / "summary"
    assert main(["eval-summary", "--metrics", str(trained["eval"] / "metrics.json"),
                 "--out", str(out)]) == 0
    with open(out / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["split"] for r in rows] == ["val", "test"]
    assert float(rows[0]["activation_mae_ms"]) == pytest.approx(
        m["splits"]["val"]["activation_mae_ms"])
    assert (out / "summary.png").exists()


def test_vm_network_metrics_keys(tmp_path):
    torch.set_num_threads(2)
    ds = tmp_path / "tiny.h5"
    write_tiny_dataset(ds, n=24, t_len=64, seed=3)
    ckpt = train(ds, "II", tmp_path / "m", settings={"epochs": 1}, seed=1, progress=False)
    assert main(["evaluate", "--model", str(ckpt), "--dataset", str(ds),
                 "--out", str(tmp_path / "e")]) == 0
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    keys = SPLIT_KEYS | {"vm_pearson_r", "apd90_mae_ms", "sustained_activation_mae_ms"}
    assert m["n_parameters"] == 392_907
    assert set(m["splits"]["val"]) == keys and set(m["baselines"]["ridge"]["test"]) == keys
    # ridge reproduces this smooth Vm far better than the trained-for-one-epoch network
    assert m["baselines"]["ridge"]["val"]["vm_pearson_r"] > 0.9
    ridge = m["baselines"]["ridge"]["val"]
    print(f"\nridge on Vm: paper label MAE {ridge['activation_mae_ms']:.2f} ms, sustained "
          f"{ridge['sustained_activation_mae_ms']:.2f} ms")
    assert ridge["sustained_activation_mae_ms"] <= ridge["activation_mae_ms"] + 1.0


def test_checkpoint_round_trip(trained):
    model, cfg, norm, ckpt = checkpoint.load_model(trained["model"])
    raw = torch.load(trained["model"], weights_only=True)          # no pickled module
    for k, v in raw["state_dict"].items():
        assert torch.equal(model.state_dict()[k], v)
    data = read_dataset(trained["dataset"])
    assert norm.vm_min == pytest.approx(float(data.vm[data.splits["train"]].min()))
    assert cfg.name == "I" and cfg.n_samples == T and cfg.shift_max_ms == 0
    assert ckpt["n_parameters"] == 486_657 and ckpt["seed"] == 7
    assert ckpt["train_config"]["epochs"] == 4 and ckpt["train_config"]["lr"] == 1e-3
    assert len(ckpt["point_names"]) == 75 and "git_commit" in ckpt["provenance"]


def test_resume_continues_exactly(tmp_path):
    torch.set_num_threads(2)
    ds = tmp_path / "tiny.h5"
    write_tiny_dataset(ds, n=48, t_len=64, seed=5)
    over = {"width": 4, "stages": 2}
    train(ds, "resnet", tmp_path / "a", settings={"epochs": 2}, seed=3, overrides=over,
          progress=False)
    train(ds, "resnet", tmp_path / "b", settings={"epochs": 2}, seed=3, overrides=over,
          progress=False, stop_after=1)                  # a job killed after one epoch
    assert torch.load(tmp_path / "b" / "resnet.state.pt", weights_only=True)["epoch"] == 1
    train(ds, "resnet", tmp_path / "b", settings={"epochs": 2}, seed=3, overrides=over,
          progress=False, resume=True)
    a = torch.load(tmp_path / "a" / "resnet.state.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "resnet.state.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["history"] == b["history"]


def test_onnx_export_gives_the_same_predictions(trained, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "I.onnx"
    assert main(["export-onnx", "--model", str(trained["model"]), "--out", str(out)]) == 0
    model, *_ = checkpoint.load_model(trained["model"])
    data = read_dataset(trained["dataset"])
    x = scale_ecg(data.ecg[data.splits["test"]])
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(out)).run(None, {"ecg": x})[0]
    np.testing.assert_allclose(got, ref, atol=1e-3)      # ms; ~1e-5 relative
    assert not list(tmp_path.glob(".*"))                  # no temporary files left


def _beat(trained) -> np.ndarray:
    data = read_dataset(trained["dataset"])
    return data.ecg[data.splits["test"][0]].astype(np.float64)   # (12, T) at 1 kHz


def test_predict_on_a_dataset_beat(trained, tmp_path):
    """A (12, T) .npy at 1 kHz (a dataset record) is taken as one beat, as before; real
    recordings, every reader and every bad input: tests/test_learn_patients.py."""
    beat = _beat(trained)
    np.save(tmp_path / "beat.npy", beat)
    assert main(["predict", "--model", str(trained["model"]), "--ecg",
                 str(tmp_path / "beat.npy"), "--out", str(tmp_path / "p")]) == 0
    res = json.loads((tmp_path / "p" / "activation.json").read_text())
    model, *_ = checkpoint.load_model(trained["model"])
    with torch.no_grad():
        ref = model(torch.from_numpy(scale_ecg(beat)[None]))[0].numpy()
    np.testing.assert_allclose(res["activation_ms"], ref, atol=1e-3)
    assert res["layout"] == "beat" and res["ood"]["threshold"] > 0
    with open(tmp_path / "p" / "activation.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 75 and rows[0]["point"] == "AHA01"
    assert (tmp_path / "p" / "bullseye.png").stat().st_size > 1000
    direct = predict_file(trained["model"], tmp_path / "beat.npy", tmp_path / "q")
    assert direct["activation_ms"] == res["activation_ms"]
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(InputError, match="unknown ECG format"):
        predict_file(trained["model"], tmp_path / "x.txt", tmp_path)
