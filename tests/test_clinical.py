"""Clinical recordings: every reader, lead names, derived leads, preprocessing on a synthetic
ECG with known beats, every bad input, and the two shared real recordings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.clinical import network_input, preprocess, read_ecg
from pipeline.clinical.read import LEAD_NAMES, Recording, assemble_leads, canonical_lead
from pipeline.errors import InputError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ecg"
PTBXL = SHARED / "ptbxl_00001" / "00001_hr"
GEORGIA = SHARED / "cinc2021_E07509_rbbb" / "E07509"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="shared ECG recordings not present")

INDEPENDENT = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")


# --------------------------------------------------------------------------- synthetic ECG

def _bump(t: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Raised-cosine wave of unit height, zero outside centre +- width / 2 (so onsets are exact)."""
    u = (t - centre) / width
    return np.where(np.abs(u) < 0.5, 0.5 * (1 + np.cos(2 * np.pi * u)), 0.0)


def _template(t_ms: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One beat per lead, R peak at t = 0 ms, QRS onset at -40 ms: (n_leads, len(t))."""
    waves = np.stack([
        _bump(t_ms, -160, 80),       # P
        _bump(t_ms, -30, 20),        # Q: -40..-20 ms (the QRS onset is at -40 ms)
        _bump(t_ms, 0, 40),          # R: -20..20 ms
        _bump(t_ms, 30, 20),         # S: 20..40 ms
        _bump(t_ms, 250, 160),       # T
    ])
    return weights @ waves


QRS_ONSET_FROM_R_MS = 40.0


def _weights(n_leads: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = np.empty((n_leads, 5))
    w[:, 0] = rng.uniform(0.05, 0.2, n_leads)
    w[:, 1] = -rng.uniform(0.05, 0.3, n_leads)
    w[:, 2] = rng.choice([-1, 1], n_leads) * rng.uniform(0.6, 1.5, n_leads)
    w[:, 3] = -rng.uniform(0.1, 0.5, n_leads)
    w[:, 4] = rng.uniform(0.1, 0.4, n_leads)
    return w


def synthetic(fs: float = 500.0, duration_s: float = 10.0, rr_ms: float = 850.0,
              jitter_ms: float = 40.0, noise: bool = True, seed: int = 0,
              first_r_ms: float = 400.0) -> tuple[Recording, np.ndarray, np.ndarray]:
    """A 12-lead recording built from I, II, V1..V6 beats at known R times.

    Returns the recording, the R times (ms) and the clean weights of the 8 leads.
    """
    rng = np.random.default_rng(seed)
    r_times = [first_r_ms]
    while True:
        nxt = r_times[-1] + rr_ms + rng.uniform(-jitter_ms, jitter_ms)
        if nxt > duration_s * 1000 - 200:
            break
        r_times.append(nxt)
    r = np.array(r_times)
    t = np.arange(int(duration_s * fs)) * 1000.0 / fs
    w = _weights(8)
    x = np.zeros((8, t.size))
    for rt in r:
        near = np.abs(t - rt) < 600
        x[:, near] += _template(t[near] - rt, w)
    if noise:
        ts = t / 1000.0
        x += 0.4 * np.sin(2 * np.pi * 0.25 * ts + rng.uniform(0, 6, (8, 1)))
        x += 0.2 * np.sin(2 * np.pi * 0.11 * ts + rng.uniform(0, 6, (8, 1)))
        x += 0.05 * np.sin(2 * np.pi * 50.0 * ts + rng.uniform(0, 6, (8, 1)))
        x += rng.normal(0, 0.01, x.shape)
    rec = assemble_leads(x, INDEPENDENT, fs, "synthetic")
    return rec, r, w


def _clean_median(w: np.ndarray, onset_ms: float, n: int = 500) -> np.ndarray:
    """The clean beat in the 12 canonical leads, at 1 kHz, QRS onset at sample onset_ms."""
    t = np.arange(n) - onset_ms - QRS_ONSET_FROM_R_MS
    eight = _template(t, w)
    return assemble_leads(eight, INDEPENDENT, 1000.0, "clean").signals


# --------------------------------------------------------------------------- readers

def _write_csv(path: Path, names: list[str], columns: np.ndarray) -> None:
    np.savetxt(path, columns.T, delimiter=",", header=",".join(names), comments="", fmt="%.10g")


def test_lead_name_spellings():
    for name, want in [("AVR", "aVR"), ("avl", "aVL"), ("aVF", "aVF"), ("i", "I"), ("II", "II"),
                       ("iii", "III"), ("V1", "V1"), ("v6", "V6"), ("Lead II", "II"),
                       (" lead_v3 ", "V3"), ("MLII", None), ("V7", None), ("ECG", None)]:
        assert canonical_lead(name) == want, name


def test_csv_round_trip_any_order_and_spelling(tmp_path):
    rec, _, _ = synthetic(seed=3)
    order = [11, 3, 0, 7, 1, 2, 4, 5, 6, 8, 9, 10]
    spelled = {"aVR": "AVR", "aVL": "avl", "aVF": "AVF", "V1": "v1"}
    names = [spelled.get(LEAD_NAMES[i], LEAD_NAMES[i]) for i in order]
    t_ms = np.arange(rec.n_samples) * 2.0
    path = tmp_path / "ecg.csv"
    _write_csv(path, ["t_ms"] + names, np.vstack([t_ms, rec.signals[order]]))
    back = read_ecg(path)
    assert back.fs == pytest.approx(500.0)
    assert back.derived == ()
    np.testing.assert_allclose(back.signals, rec.signals, rtol=1e-9, atol=1e-9)
    # without a time column the rate must be given; given it, the values are the same
    path2 = tmp_path / "ecg2.csv"
    _write_csv(path2, names, rec.signals[order])
    with pytest.raises(InputError, match="sampling rate unknown"):
        read_ecg(path2)
    np.testing.assert_allclose(read_ecg(path2, fs=500).signals, rec.signals, atol=1e-9)
    # microvolts
    _write_csv(path2, names, rec.signals[order] * 1000)
    np.testing.assert_allclose(read_ecg(path2, unit="uV", fs=500).signals, rec.signals,
                               atol=1e-9)
    with pytest.raises(InputError, match="unit"):
        read_ecg(path2, fs=500)                       # 1000x too large for mV
    with pytest.raises(InputError, match="says"):
        _write_csv(path, ["t_ms"] + names, np.vstack([t_ms, rec.signals[order]]))
        read_ecg(path, fs=1000)                       # conflicts with the time column


def test_npy_round_trip_both_layouts(tmp_path):
    rec, _, _ = synthetic(seed=4)
    for arr in (rec.signals, rec.signals.T):
        path = tmp_path / "ecg.npy"
        np.save(path, arr)
        back = read_ecg(path, fs=500)
        np.testing.assert_array_equal(back.signals, rec.signals)
        assert back.fs == 500.0
    with pytest.raises(InputError, match="sampling rate"):
        read_ecg(path)
    np.save(path, rec.signals[:8])
    with pytest.raises(InputError, match="shape"):
        read_ecg(path, fs=500)


def test_derived_limb_leads_equal_einthoven_goldberger(tmp_path):
    rng = np.random.default_rng(7)
    from pipeline.signals.leads import leads_from_electrodes
    electrodes = rng.normal(0, 1, (10, 300))
    full = leads_from_electrodes(electrodes)                 # (12, 300), the simulator's leads
    idx = [LEAD_NAMES.index(n) for n in INDEPENDENT]
    path = tmp_path / "eight.csv"
    _write_csv(path, list(INDEPENDENT), full[idx])
    rec = read_ecg(path, fs=1000)
    assert set(rec.derived) == {"III", "aVR", "aVL", "aVF"}
    np.testing.assert_allclose(rec.signals, full, atol=1e-9)
    # II and III given, I missing: I = II - III
    names = ["II", "III", "V1", "V2", "V3", "V4", "V5", "V6"]
    _write_csv(path, names, full[[LEAD_NAMES.index(n) for n in names]])
    np.testing.assert_allclose(read_ecg(path, fs=1000).signals, full, atol=1e-9)


def test_missing_unknown_and_duplicate_leads(tmp_path):
    rec, _, _ = synthetic(seed=5, duration_s=3)
    path = tmp_path / "bad.csv"
    names = [n for n in LEAD_NAMES if n != "V4"]
    _write_csv(path, names, rec.signals[[LEAD_NAMES.index(n) for n in names]])
    with pytest.raises(InputError, match=r"bad\.csv.*missing leads \['V4'\]"):
        read_ecg(path, fs=500)
    names = ["I", "aVR", "V1", "V2", "V3", "V4", "V5", "V6"]       # one limb lead only
    _write_csv(path, names, rec.signals[[LEAD_NAMES.index(n) for n in names]])
    with pytest.raises(InputError, match="two of I, II, III"):
        read_ecg(path, fs=500)
    names = list(LEAD_NAMES[:-1]) + ["MLII"]
    _write_csv(path, names, rec.signals)
    with pytest.raises(InputError, match="unknown lead name.*MLII"):
        read_ecg(path, fs=500)
    names = list(LEAD_NAMES[:-1]) + ["v5"]
    _write_csv(path, names, rec.signals)
    with pytest.raises(InputError, match="more than once"):
        read_ecg(path, fs=500)
    with pytest.raises(InputError, match="unknown ECG format"):
        read_ecg(tmp_path / "ecg.txt")
    with pytest.raises(InputError, match="does not exist"):
        read_ecg(tmp_path / "none.csv")
    with pytest.raises(InputError, match="header"):
        read_ecg(tmp_path / "none.hea")


@needs_shared
def test_wfdb_dat_ptbxl_matches_wfdb():
    import wfdb
    raw = wfdb.rdrecord(str(PTBXL))
    for variant in (PTBXL, PTBXL.with_suffix(".hea"), PTBXL.with_suffix(".dat")):
        rec = read_ecg(variant)
        assert rec.signals.shape == (12, 5000) and rec.fs == 500.0
        assert rec.original_names[3:6] == ("AVR", "AVL", "AVF")
        np.testing.assert_array_equal(rec.signals, raw.p_signal.T)    # same order, mV
    with pytest.raises(InputError, match="header says 500"):
        read_ecg(PTBXL, fs=250)
    with pytest.raises(InputError, match="header says"):
        read_ecg(PTBXL, unit="uV")


@needs_shared
def test_wfdb_mat_georgia_matches_matlab_file():
    from scipy.io import loadmat
    val = loadmat(str(GEORGIA.with_suffix(".mat")))["val"] / 1000.0     # gain 1000/mV, no offset
    for variant in (GEORGIA, GEORGIA.with_suffix(".mat"), GEORGIA.with_suffix(".hea")):
        rec = read_ecg(variant)
        assert rec.signals.shape == (12, 5000) and rec.fs == 500.0
        np.testing.assert_allclose(rec.signals, val, atol=1e-12)


# --------------------------------------------------------------------------- preprocessing

def test_preprocess_synthetic_known_beats():
    rec, r_ms, w = synthetic(seed=0)
    beats = preprocess(rec, notch_hz=50.0)
    # every R peak found, within 10 ms
    assert beats.n_beats == r_ms.size
    np.testing.assert_allclose(beats.r_peaks * 1000.0 / beats.fs, r_ms, atol=10.0)
    true_rate = 60000.0 / np.median(np.diff(r_ms))
    assert abs(beats.heart_rate_bpm - true_rate) < 1.0
    # QRS onsets within 10 ms; duration about the truth (Q start to S end: 80 ms)
    np.testing.assert_allclose(beats.qrs_onsets, r_ms - QRS_ONSET_FROM_R_MS, atol=10.0)
    assert abs(beats.qrs_duration_ms - 80.0) < 15.0
    # the median beat: layout and shape of the clean beat
    assert beats.median.shape == (12, 500) and beats.median.dtype == np.float32
    assert beats.beats.shape == (r_ms.size, 12, 500)
    assert beats.onset_ms == 0.0 and beats.qrs_onset_ms == 0.0
    # shape, apart from the onset error tested above (a 2-ms shift of 20-ms waves costs 0.02 of r)
    lag = float(np.mean(beats.qrs_onsets - (r_ms - QRS_ONSET_FROM_R_MS)))
    clean = _clean_median(w, beats.onset_ms - round(lag))
    r = [np.corrcoef(beats.median[k], clean[k])[0, 1] for k in range(12)]
    assert min(r) > 0.98, r
    assert np.corrcoef(beats.median.ravel(), clean.ravel())[0, 1] > 0.98
    assert beats.warnings == ()


def test_preprocess_onset_shift_and_network_scaling():
    rec, r_ms, w = synthetic(seed=2)
    b0 = preprocess(rec, notch_hz=50.0)
    b20 = preprocess(rec, notch_hz=50.0, onset_ms=20.0)
    np.testing.assert_allclose(b20.median[:, 20:], b0.median[:, :-20], atol=1e-6)
    assert b20.qrs_onset_ms == 20.0
    # before the onset: the isoelectric PR segment, close to 0 mV like a simulation's start
    assert np.abs(b20.median[:, :15]).max() < 0.05
    x = b0.network_input()
    np.testing.assert_allclose(x.max(axis=1) - x.min(axis=1), 1.0, rtol=1e-6)
    assert x.shape == (12, 500) and x.dtype == np.float32


def test_network_input_is_the_training_scaling():
    pytest.importorskip("torch")
    from pipeline.learn.data import scale_ecg
    rng = np.random.default_rng(0)
    ecg = rng.normal(0, 1, (3, 12, 500)).astype(np.float32)
    ecg[1, 4] = 0.0
    np.testing.assert_array_equal(network_input(ecg), scale_ecg(ecg))


def test_preprocess_without_mains_noise_at_1khz():
    rec, r_ms, _ = synthetic(fs=1000.0, noise=False, rr_ms=600, seed=6)
    beats = preprocess(rec)
    assert beats.n_beats == r_ms.size
    np.testing.assert_allclose(beats.r_peaks, r_ms, atol=10.0)


# --------------------------------------------------------------------------- bad input

def _with_lead(rec: Recording, lead: str, values: np.ndarray) -> Recording:
    sig = rec.signals.copy()
    sig[LEAD_NAMES.index(lead)] = values
    return Recording(sig, rec.fs, rec.source, rec.original_names)


def test_flat_lead_is_named():
    rec, _, _ = synthetic(seed=8)
    with pytest.raises(InputError, match="flat lead.*V3"):
        preprocess(_with_lead(rec, "V3", np.full(rec.n_samples, 0.2)))
    # a tiny-noise lead is flat too
    tiny = np.random.default_rng(0).normal(0, 1e-4, rec.n_samples)
    with pytest.raises(InputError, match="flat lead.*V5"):
        preprocess(_with_lead(rec, "V5", tiny))


def test_saturated_lead_is_named():
    rec, _, _ = synthetic(seed=9)
    v2 = rec.signals[LEAD_NAMES.index("V2")].copy()
    v2[1000:1100] = v2.max() + 1.0            # 200 ms at the amplifier's rail
    with pytest.raises(InputError, match="lead V2 is saturated"):
        preprocess(_with_lead(rec, "V2", v2))


def test_too_short():
    rec, _, _ = synthetic(seed=10, duration_s=1.2)
    with pytest.raises(InputError, match="shorter than 1.5 s"):
        preprocess(rec)


def test_rate_out_of_range():
    slow, _, _ = synthetic(seed=11, rr_ms=2500.0, jitter_ms=0.0)      # 24 bpm
    with pytest.raises(InputError, match="heart rate 24.0 bpm outside 30-200"):
        preprocess(slow)
    fast, _, _ = synthetic(seed=12, rr_ms=270.0, jitter_ms=0.0, noise=False)   # 222 bpm
    with pytest.raises(InputError, match="heart rate 2.* bpm outside 30-200"):
        preprocess(fast)


def test_no_beats_in_noise():
    rng = np.random.default_rng(13)
    rec = assemble_leads(rng.normal(0, 0.1, (8, 5000)), INDEPENDENT, 500.0, "noise")
    with pytest.raises(InputError, match="no beats found"):
        preprocess(rec)


def test_nan_is_named():
    rec, _, _ = synthetic(seed=14, duration_s=3)
    v = rec.signals[LEAD_NAMES.index("aVL")].copy()
    v[77] = np.nan
    with pytest.raises(InputError, match="lead aVL at sample 77"):
        preprocess(_with_lead(rec, "aVL", v))


def test_ectopic_beat_left_out_with_a_warning():
    rec, r_ms, w = synthetic(seed=15)
    k = 5                                            # invert beat 5 in all leads: not the median
    t = np.arange(rec.n_samples) * 1000.0 / rec.fs - r_ms[k]
    beat_k = assemble_leads(_template(t, w), INDEPENDENT, rec.fs, "beat").signals
    sig = rec.signals - 2.0 * beat_k
    beats = preprocess(Recording(sig, rec.fs, "ectopic", rec.original_names), notch_hz=50.0)
    assert not beats.used[k] and beats.used.sum() == r_ms.size - 1
    assert any("beat(s) 5" in m for m in beats.warnings)


# --------------------------------------------------------------------------- real recordings

@needs_shared
@pytest.mark.parametrize("path, rate, qrs_wide", [(PTBXL, 64.0, False), (GEORGIA, 48.0, True)])
def test_real_recordings(path, rate, qrs_wide):
    # rates from the PROVENANCE files: ~64 bpm (PTB-XL 1, sinus rhythm), ~48 bpm with 8 beats
    # (Georgia E07509, sinus bradycardia + right bundle branch block)
    rec = read_ecg(path)
    beats = preprocess(rec)
    assert abs(beats.heart_rate_bpm - rate) < 3.0
    assert abs(beats.n_beats - rec.duration_s * beats.heart_rate_bpm / 60.0) <= 1.0
    assert beats.used.all() and beats.warnings == ()
    assert beats.median.shape == (12, 500) and np.isfinite(beats.median).all()
    # RBBB: QRS >= 120 ms; the normal ECG below
    assert (beats.qrs_duration_ms >= 120) == qrs_wide
    assert 60 <= beats.qrs_duration_ms <= 180
    assert 0.2 < float(np.abs(beats.median).max()) < 5.0


# --------------------------------------------------------------------------- command line

def test_cli_ecg_preprocess_and_bench(tmp_path, capsys):
    import json

    from pipeline.cli import main
    rec, r_ms, _ = synthetic(seed=16, duration_s=4)
    path = tmp_path / "ecg.npy"
    np.save(path, rec.signals)
    out = tmp_path / "out"
    assert main(["ecg-preprocess", "--ecg", str(path), "--fs", "500", "--notch", "50",
                 "--out", str(out)]) == 0
    median = np.load(out / "median_beat.npy")
    assert median.shape == (12, 500)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_beats"] == r_ms.size and summary["lead_names"] == list(LEAD_NAMES)
    assert (out / "beats.png").stat().st_size > 10_000
    assert main(["ecg-preprocess", "--ecg", str(tmp_path / "none.npy"), "--fs", "500",
                 "--out", str(out)]) == 1
    assert main(["bench", "clinical", "--ecg", str(path), "--repeat", "1"]) == 1   # no fs
    np.save(path, rec.signals[:, :600])                                       # 1.2 s
    assert main(["ecg-preprocess", "--ecg", str(path), "--fs", "500", "--out", str(out)]) == 1
    assert "shorter than 1.5 s" in capsys.readouterr().err


def test_clinical_is_a_ground_floor_package():
    code = ("import sys, pipeline.clinical, pipeline.clinical.cli\n"
            "print(' '.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    heavy = ("torch", "matplotlib", "pipeline.learn", "pipeline.monodomain", "pipeline.cell",
             "pipeline.hemo", "pipeline.campaign", "pipeline.anatomy")
    assert [m for m in loaded if m.startswith(heavy)] == []
