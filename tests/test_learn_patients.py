"""Real patients: predict through pipeline.clinical (every reader, every bad input, the two
shared recordings), the ensemble's spread and its calibration, the OOD score, seen/unseen
hearts, the learning curve and the self-supervised adaptation (P-SSL)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from learn_synthetic import LEADS, write_tiny_dataset

from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.learn.checkpoint import load_model
from pipeline.learn.checkpoint import read as read_checkpoint
from pipeline.learn.data import read_dataset, scale_ecg
from pipeline.learn.metrics import calibration, heart_breakdown
from pipeline.learn.ood import embed, fit_ood, from_checkpoint, ledoit_wolf
from pipeline.learn.predict import Predictor, load_beat, predict_file
from pipeline.learn.spread import fit_sd_scale, sd_scale
from pipeline.learn.train import train

T = 128
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ecg"
PTBXL = SHARED / "ptbxl_00001" / "00001_hr"
GEORGIA = SHARED / "cinc2021_E07509_rbbb" / "E07509"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="shared ECG recordings not present")
TINY = {"width": 4, "stages": 2}


@pytest.fixture(scope="module")
def ens(tmp_path_factory):
    """A tiny 5-member ensemble of ResNets trained on a synthetic dataset (T = 128)."""
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("patients")
    ds = root / "tiny.h5"
    write_tiny_dataset(ds, n=96, t_len=T, seed=0, t0_range=(5.0, 40.0))
    ckpt = train(ds, "ensemble", root / "m", settings={"epochs": 6, "batch_size": 8}, seed=1,
                 overrides=TINY, progress=False)
    return {"root": root, "dataset": ds, "model": ckpt}


def _recording(beat: np.ndarray, fs: float = 500.0, rr_ms: int = 800, n: int = 5,
               seed: int = 0) -> np.ndarray:
    """A recording (12, samples at ``fs``) of ``n`` copies of a 1-kHz beat plus noise."""
    sig = np.zeros((12, rr_ms * (n + 1)))
    for k in range(n):
        start = 300 + k * rr_ms
        sig[:, start:start + beat.shape[1]] += beat
    sig += np.random.default_rng(seed).normal(0, 0.002, sig.shape)
    return sig[:, ::int(round(1000 / fs))]


def _beat(ens) -> np.ndarray:
    data = read_dataset(ens["dataset"])
    return data.ecg[data.splits["test"][0]].astype(np.float64)


def test_predict_on_the_shared_recordings(ens, tmp_path):
    if not SHARED.exists():
        pytest.skip("shared ECG recordings not present")
    for rec in (PTBXL, GEORGIA.with_suffix(".mat")):
        out = tmp_path / rec.stem
        assert main(["predict", "--model", str(ens["model"]), "--ecg", str(rec), "--out",
                     str(out), "--dataset", str(ens["dataset"])]) == 0
        res = json.loads((out / "activation.json").read_text())
        assert res["layout"] == "recording" and res["time_origin"] == "QRS onset"
        assert len(res["activation_ms"]) == 75 and all(v is not None for v in res["activation_ms"])
        assert min(res["sd_ms"]) >= 0 and max(res["sd_ms"]) > 0           # ensemble spread
        assert res["preprocessing"]["n_beats"] >= 8
        ood = res["ood"]
        assert set(ood) >= {"score", "threshold", "ood"} and np.isfinite(ood["score"])
        # a network that saw only Gaussian bumps: a real ECG lies far outside its data
        assert ood["ood"] and ood["score"] > ood["threshold"]
        assert res["nearest"]["rms_distance"] > res["nearest"]["val_median_rms"]
        for name in ("activation.csv", "bullseye.png", "ecg_comparison.png"):
            assert (out / name).stat().st_size > 500
        assert res["timing_s"]["read_preprocess"] + res["timing_s"]["network_ood"] < 5.0


def test_every_reader_gives_the_same_prediction(ens, tmp_path):
    import wfdb

    beat = _beat(ens)
    sig = _recording(beat)                                       # 500 Hz
    perm = [3, 0, 1, 2, 11, 4, 5, 6, 7, 8, 9, 10]
    wfdb.wrsamp("rec", fs=500, units=["mV"] * 12, sig_name=[LEADS[i] for i in perm],
                p_signal=sig[perm].T, fmt=["32"] * 12, adc_gain=[1e5] * 12,
                baseline=[0] * 12, write_dir=str(tmp_path))
    np.save(tmp_path / "rec.npy", sig)
    np.savetxt(tmp_path / "rec.csv", sig.T, delimiter=",", header=",".join(LEADS), comments="")
    t_ms = np.arange(sig.shape[1]) * 2.0
    np.savetxt(tmp_path / "rect.csv", np.column_stack([t_ms, sig.T]), delimiter=",",
               header=",".join(["t_ms"] + LEADS), comments="")
    pred = Predictor(ens["model"])
    runs = {"wfdb": pred.predict(tmp_path / "rec.hea"),
            "npy": pred.predict(tmp_path / "rec.npy", fs=500.0),
            "csv": pred.predict(tmp_path / "rec.csv", fs=500.0),
            "csv_t": pred.predict(tmp_path / "rect.csv")}
    ref = np.array(runs["wfdb"]["activation_ms"])
    for name, r in runs.items():
        assert r["layout"] == "recording", name
        np.testing.assert_allclose(r["activation_ms"], ref, atol=1e-3, err_msg=name)
    # the median beat is the original beat moved so that its QRS onset is at 0
    med = runs["wfdb"]["_beat"].beat_mV
    lags = range(60)
    r = [np.corrcoef(med[:, :T - 60].ravel(), beat[:, k:k + T - 60].ravel())[0, 1] for k in lags]
    assert max(r) > 0.97
    # a (12, T) .npy at 1 kHz is one beat in the dataset layout, taken as it is
    np.save(tmp_path / "beat.npy", beat)
    got = predict_file(ens["model"], tmp_path / "beat.npy", tmp_path / "b")
    model, *_ = load_model(ens["model"])
    with torch.no_grad():
        direct = model(torch.from_numpy(scale_ecg(beat)[None].astype(np.float32)))[0] * 100.0
    assert got["layout"] == "beat"
    np.testing.assert_allclose(got["activation_ms"], direct.numpy(), atol=1e-3)
    assert load_beat(tmp_path / "beat.npy", T).x.shape == (12, T)


@needs_shared
def test_wfdb_mat_record_reads_like_its_header(ens):
    pred = Predictor(ens["model"])
    a = pred.predict(GEORGIA.with_suffix(".mat"))["activation_ms"]
    b = pred.predict(GEORGIA.with_suffix(".hea"))["activation_ms"]
    np.testing.assert_array_equal(a, b)


def _bad_inputs(beat: np.ndarray, tmp_path: Path) -> list[tuple[list[str], str]]:
    sig = _recording(beat, fs=1000.0)
    cases = []
    np.save(tmp_path / "eleven.npy", sig[:11])
    cases.append((["--ecg", str(tmp_path / "eleven.npy"), "--fs", "1000"], "shape"))
    cols = [i for i in range(12) if LEADS[i] != "V4"]
    np.savetxt(tmp_path / "noV4.csv", sig[cols].T, delimiter=",",
               header=",".join(LEADS[i] for i in cols), comments="")
    cases.append((["--ecg", str(tmp_path / "noV4.csv"), "--fs", "1000"], r"missing leads \['V4'\]"))
    nan = sig.copy()
    nan[4, 77] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    cases.append((["--ecg", str(tmp_path / "nan.npy"), "--fs", "1000"], "aVL at sample 77"))
    np.save(tmp_path / "nofs.npy", sig)
    cases.append((["--ecg", str(tmp_path / "nofs.npy")], "sampling rate"))
    np.save(tmp_path / "short.npy", sig[:, :1000])
    cases.append((["--ecg", str(tmp_path / "short.npy"), "--fs", "1000"], "shorter than 1.5 s"))
    flat = sig.copy()
    flat[8] = 0.2
    np.save(tmp_path / "flat.npy", flat)
    cases.append((["--ecg", str(tmp_path / "flat.npy"), "--fs", "1000"], "flat lead.*V3"))
    sat = sig.copy()
    sat[7, 1000:1100] = sat[7].max() + 1.0
    np.save(tmp_path / "sat.npy", sat)
    cases.append((["--ecg", str(tmp_path / "sat.npy"), "--fs", "1000"], "V2 is saturated"))
    np.save(tmp_path / "noise.npy", np.random.default_rng(1).normal(0, 0.1, sig.shape))
    cases.append((["--ecg", str(tmp_path / "noise.npy"), "--fs", "1000"], "no beats found"))
    (tmp_path / "x.txt").write_text("1")
    cases.append((["--ecg", str(tmp_path / "x.txt")], "unknown ECG format"))
    cases.append((["--ecg", str(tmp_path / "absent.hea")], "does not exist"))
    np.save(tmp_path / "uv.npy", sig * 1000.0)                      # uV read as mV
    cases.append((["--ecg", str(tmp_path / "uv.npy"), "--fs", "1000"], "unit"))
    return cases


def test_bad_inputs_surface_as_error_lines(ens, tmp_path, capsys):
    for args, pattern in _bad_inputs(_beat(ens), tmp_path):
        rc = main(["predict", "--model", str(ens["model"]), "--out", str(tmp_path / "o")] + args)
        err = capsys.readouterr().err
        assert rc == 1, (args, err)
        lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
        assert len(lines) == 1 and __import__("re").search(pattern, lines[0]), (args, err)
    rc = main(["predict", "--model", str(tmp_path / "none.pt"), "--ecg", "x.npy"])
    assert rc == 1 and "error: " in capsys.readouterr().err


def test_calibration_on_a_constructed_example():
    true = np.zeros((2, 4))
    pred = np.array([[0.5, -1.5, 2.5, 0.9], [1.0, -2.0, np.nan, 3.0]])
    sd = np.ones((2, 4))
    c = calibration(pred, sd, true)
    # |errors| 0.5 1.5 2.5 0.9 1.0 2.0 3.0 (NaN skipped): <= 1: 3 of 7, <= 2: 5 of 7
    assert c["n"] == 7
    assert c["within_1sd"] == pytest.approx(3 / 7) and c["within_2sd"] == pytest.approx(5 / 7)
    assert c["mean_sd_ms"] == pytest.approx(1.0)
    assert c["sd_scale_68"] == pytest.approx(np.quantile([0.5, 1.5, 2.5, 0.9, 1.0, 2.0, 3.0],
                                                         0.6827))
    big = calibration(pred, 10 * sd, true)
    assert big["within_1sd"] == 1.0 and big["within_2sd"] == 1.0


def _member_errors(ens, split: str):
    """(model, config, |members' mean - true|, members' SD) on ``split``, in ms, computed
    from the members directly (activation units of 100 ms)."""
    from pipeline.learn.data import paper_activation

    model, cfg, _, _ = load_model(ens["model"])
    data = read_dataset(ens["dataset"])
    idx = data.splits[split]
    with torch.no_grad():
        each = model.members_forward(torch.from_numpy(scale_ecg(data.ecg[idx]))).numpy() * 100.0
    return model, cfg, np.abs(each.mean(0) - paper_activation(data.vm[idx])), each.std(0)


def test_ensemble_spread_and_calibration_in_metrics(ens, tmp_path):
    assert main(["evaluate", "--model", str(ens["model"]), "--dataset", str(ens["dataset"]),
                 "--out", str(tmp_path / "e")]) == 0
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    for s in ("val", "test"):
        u = m["uncertainty"][s]
        assert 0.0 <= u["within_1sd"] <= u["within_2sd"] <= 1.0
        assert u["mean_sd_ms"] > 0
    # recomputed independently from the members
    model, cfg, err, sd = _member_errors(ens, "test")
    ok = np.isfinite(err)
    assert m["uncertainty_raw"]["test"]["within_1sd"] == pytest.approx(
        np.mean(err[ok] <= sd[ok]), abs=1e-6)
    k = m["sd_scale"]
    assert k > 0 and k == pytest.approx(sd_scale(read_checkpoint(ens["model"])))
    assert m["uncertainty"]["test"]["within_1sd"] == pytest.approx(
        np.mean(err[ok] <= k * sd[ok]), abs=1e-6)
    assert len(model.members) == 5 and cfg.members == 5


def test_sd_scale_gives_gaussian_coverage_on_validation(ens):
    """The fitted scale puts 68.3 % of the validation errors within one scaled SD."""
    _, _, err, sd = _member_errors(ens, "val")
    ckpt = read_checkpoint(ens["model"])
    ok = np.isfinite(err)
    cover = np.mean(err[ok] <= ckpt["sd_scale"]["scale"] * sd[ok])
    assert cover == pytest.approx(0.6827, abs=2.0 / ok.sum())
    assert ckpt["sd_scale"]["val_within_1sd"] == pytest.approx(cover, abs=1e-9)


def test_fit_sd_scale_on_gaussian_errors():
    """Errors drawn with SD 3 against a claimed SD of 1: the scale is 3 (to sampling)."""
    rng = np.random.default_rng(0)
    true = np.zeros((4000, 75))
    pred = rng.normal(0.0, 3.0, true.shape)
    entry = fit_sd_scale(pred, np.ones_like(true), true)
    assert entry["scale"] == pytest.approx(3.0, rel=0.02)
    assert entry["val_within_1sd"] == pytest.approx(0.6827, abs=1e-3)
    assert entry["val_within_1sd_raw"] == pytest.approx(0.2611, abs=0.01)   # P(|z| <= 1/3)
    with pytest.raises(ValueError, match="SD scale"):
        fit_sd_scale(pred, np.zeros_like(true), true)


def test_ledoit_wolf_matches_the_closed_form():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, 6)) @ rng.normal(size=(6, 6))
    z -= z.mean(0)
    cov, s = ledoit_wolf(z)
    assert 0 <= s <= 1
    emp = z.T @ z / 40
    mu = np.trace(emp) / 6
    np.testing.assert_allclose(cov, (1 - s) * emp + s * mu * np.eye(6))
    # few samples in many dimensions: strong shrinkage, still invertible
    cov2, s2 = ledoit_wolf(rng.normal(size=(10, 50)))
    assert s2 > 0.5 and np.linalg.cond(cov2) < 1e3


def test_ood_score_separates_training_like_inputs_from_noise(ens):
    model, *_ = load_model(ens["model"])
    ckpt = torch.load(ens["model"], weights_only=True)
    ood = from_checkpoint(ckpt)
    assert ood is not None and np.isfinite(ood.threshold)
    data = read_dataset(ens["dataset"])
    test = ood.score(embed(model, scale_ecg(data.ecg[data.splits["test"]])))
    assert np.mean(test <= ood.threshold) >= 0.8
    noise = scale_ecg(np.random.default_rng(3).normal(0, 1, (10, 12, T)) * 5.0)
    assert (ood.score(embed(model, noise)) > ood.threshold).all()
    # refitting on the same data gives the same threshold
    again = fit_ood(embed(model, scale_ecg(data.ecg[data.splits["train"]])),
                    embed(model, scale_ecg(data.ecg[data.splits["val"]])))
    assert again.threshold == pytest.approx(ood.threshold, rel=1e-6)


def test_seen_and_unseen_hearts(tmp_path):
    from pipeline.campaign.splits import split_by_heart_and_sample

    hearts = np.array([f"h{i % 5}" for i in range(100)])
    sp = split_by_heart_and_sample(hearts, np.arange(100), 0.15, 0.2, 0, "c")
    train_h = set(hearts[sp["train"]])
    test_h = set(hearts[sp["test"]])
    assert test_h - train_h and test_h & train_h                       # unseen and seen
    assert not set(hearts[sp["val"]]) - train_h
    assert sorted(np.concatenate(list(sp.values()))) == list(range(100))
    hb = heart_breakdown(np.array([[1.0], [3.0], [6.0]]), np.zeros((3, 1)), ["a", "a", "b"],
                         {"a"})
    assert hb["seen_mae_ms"] == 2.0 and hb["unseen_mae_ms"] == 6.0
    assert hb["n_seen"] == 2 and hb["per_heart_mae_ms"] == {"a": 2.0, "b": 6.0}
    torch.set_num_threads(2)
    ds = tmp_path / "hearts.h5"
    write_tiny_dataset(ds, n=80, t_len=64, seed=2, n_hearts=6, split="heart_and_sample")
    ckpt = train(ds, "resnet", tmp_path / "m", settings={"epochs": 2}, seed=0, overrides=TINY,
                 progress=False, fit_ood=False)
    assert main(["evaluate", "--model", str(ckpt), "--dataset", str(ds),
                 "--out", str(tmp_path / "e")]) == 0
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["test_seen_heart_mae_ms"] > 0 and m["test_unseen_heart_mae_ms"] > 0
    assert m["hearts"]["n_seen"] + m["hearts"]["n_unseen"] == len(read_dataset(ds).splits["test"])


def test_learning_curve(tmp_path):
    torch.set_num_threads(2)
    ds = tmp_path / "d.h5"
    write_tiny_dataset(ds, n=60, t_len=64, seed=4)
    settings = json.dumps({"seed": 0, "learn": {"epochs": 1}})
    assert main(["learning-curve", "--network", "resnet", "--dataset", str(ds), "--sizes",
                 "0.5", "1.0", "--out", str(tmp_path / "lc"), "--settings", settings]) == 0
    res = json.loads((tmp_path / "lc" / "learning_curve.json").read_text())
    n = [r["n_train"] for r in res["rows"]]
    assert n == [round(0.5 * n[1]), n[1]] and n[1] == len(read_dataset(ds).splits["train"])
    assert all(r["val_mae_ms"] > 0 and r["ridge_val_mae_ms"] > 0 for r in res["rows"])
    assert (tmp_path / "lc" / "learning_curve.png").stat().st_size > 1000


def test_adaptation_emulator_fits_and_runs(ens, tmp_path):
    from pipeline.learn.adapt import run_adaptation, train_emulator

    torch.set_num_threads(2)
    data = read_dataset(ens["dataset"])
    kw = {"hidden": 256, "lr": 3e-3, "batch_size": 8}
    _, rep = train_emulator(data, epochs=150, shift_max_ms=0, **kw)
    # the emulator explains most of the ECG: far below predicting the mean training ECG
    # (measured 0.20; an untrained or too small emulator stays near 0.4-1)
    assert rep["val_relative_mse"] < 0.3, rep
    res = run_adaptation(ens["model"], ens["dataset"], tmp_path / "a", emulator_epochs=30,
                         steps=20, lr=1e-4, emulator_kw=kw)
    for k in ("supervised", "adapted"):
        assert np.isfinite(res[k]["shifted_test_mae_ms"]) and np.isfinite(res[k]["clean_test_mae_ms"])
    assert res["adapted"]["shifted_test_recon_mse"] <= res["supervised"]["shifted_test_recon_mse"] * 1.05
    _, cfg, *_ = load_model(tmp_path / "a" / "ensemble.adapted.pt")
    assert cfg.name == "ensemble"
    with pytest.raises(InputError, match="activation network"):
        d2 = tmp_path / "vm.h5"
        write_tiny_dataset(d2, n=20, t_len=64)
        vm = train(d2, "II", tmp_path / "vm", settings={"epochs": 1}, progress=False,
                   fit_ood=False)
        run_adaptation(vm, d2, tmp_path / "b")
