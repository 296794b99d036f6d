"""End to end: the CI config's real simulations (anatomy -> cells -> simulate -> dataset,
run once per session by ``workflow_helpers.ci_local_run``), then training and evaluation
of Network I through the workflow on that dataset, and the patients rules (prediction on a
recording, learning curve, P-SSL).
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import yaml

from workflow_helpers import (  # noqa: F401
    CI_CONFIG, TARGET, ci_local_run, real_upstream, snakemake)

# one xdist worker runs all the modules that share the CI workflow run (tests/conftest.py)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_run(ci_local_run):
    if not real_upstream():
        pytest.skip("PIPELINE_E2E=stand-in: upstream stages stood in for")
    return ci_local_run[0]


def test_simulated_dataset_is_physiological(real_run):
    with h5py.File(real_run / TARGET, "r") as h5:
        ecg, vm = h5["ecg"][()], h5["vm"][()]
        act = h5["activation_ms"][()]
        patterns = [p.decode() for p in h5["params/pattern"][()]]
    # every simulation depolarises the heart and the ECG is in the millivolt range
    amplitude = np.ptp(ecg, axis=2).max(axis=1)
    print("patterns", patterns, "max lead amplitude (mV)", np.round(amplitude, 2),
          "activated points", np.isfinite(act).sum(axis=1))
    assert np.all(amplitude > 0.3) and np.all(amplitude < 20.0)
    assert vm.max() > 0.0 and -95.0 < vm[:, :, 0].mean() < -80.0
    normal = patterns.index("normal")
    assert np.isfinite(act[normal]).all(), "the normal pattern activates all 75 points"
    assert 5.0 < np.nanmax(act[normal]) < 100.0


def test_training_and_evaluation_through_the_workflow(real_run):
    target = "results/eval/I/metrics.json"
    snakemake(real_run, "--cores", "2", target, timeout=1200)
    metrics = json.loads((real_run / target).read_text())
    assert metrics["network"] == "I" and metrics["n_parameters"] == 486_657
    for split in ("val", "test"):
        values = metrics["splits"][split]
        assert np.isfinite(values["activation_mae_ms"]) and len(values["per_point_mae_ms"]) == 75
        assert set(metrics["baselines"]) == {"mean", "ridge"}
    assert (real_run / "results" / "models" / "I.pt").stat().st_size > 1_000_000


def test_patient_rules_through_the_workflow(real_run, tmp_path):
    """predict_recording on a recording made of a simulated beat, the learning curve and
    P-SSL, each through its rule with the patients section given on the command line."""
    from pipeline.signals.leads import LEAD_NAMES

    with h5py.File(real_run / TARGET, "r") as h5:
        ecg = h5["ecg"][:].astype(np.float64)                      # (N, 12, T) at 1 kHz
    # the beat whose weakest lead is strongest: 100 ms beats 800 ms apart, the rest of the
    # recording flat, so an RV-apex beat's aVR (0.15 mV peak to peak) would read as an
    # electrode off (sd below 0.01 mV)
    beat = ecg[int(np.argmax(np.ptp(ecg, axis=2).min(axis=1)))]
    rr = 800
    sig = np.zeros((12, rr * 6))
    for k in range(5):
        sig[:, 300 + k * rr:300 + k * rr + beat.shape[1]] += beat
    sig += np.random.default_rng(0).normal(0.0, 0.002, sig.shape)
    csv = tmp_path / "patient.csv"
    table = np.column_stack([np.arange(sig.shape[1], dtype=float), sig.T])
    np.savetxt(csv, table, delimiter=",", header=",".join(["t_ms", *LEAD_NAMES]), comments="")
    config = yaml.safe_load(CI_CONFIG.read_text())     # the CI config, plus patients
    config["patients"] = {
        "network": "I", "recordings": {"sim-beat": str(csv)},
        "learning_curve": {"enabled": True, "network": "I", "sizes": [0.5, 0.75, 1.0]},
        "adapt": {"enabled": True, "network": "I", "steps": 3, "emulator_epochs": 2}}
    cfg = tmp_path / "ci_patients.yaml"
    cfg.write_text(yaml.safe_dump(config))
    targets = ["results/patients/I/sim-beat/activation.json",
               "results/eval/learning_curve/I/learning_curve.json",
               "results/eval/adapt/I/adapt.json"]
    snakemake(real_run, "--cores", "2", *targets, config=cfg, timeout=1200)
    pred = json.loads((real_run / targets[0]).read_text())
    assert pred["network"] == "I" and pred["layout"] == "recording"
    assert pred["preprocessing"]["n_beats"] >= 4 and len(pred["activation_ms"]) == 75
    assert pred["ood"] is not None and np.isfinite(pred["ood"]["score"])
    curve = json.loads((real_run / targets[1]).read_text())
    assert [r["fraction"] for r in curve["rows"]] == [0.5, 0.75, 1.0]
    assert curve["rows"][0]["n_train"] < curve["rows"][-1]["n_train"]
    adapt = json.loads((real_run / targets[2]).read_text())
    assert adapt["settings"]["steps"] == 3 and np.isfinite(adapt["gain_ms"])
    assert (real_run / "results/eval/adapt/I/I.adapted.pt").is_file()
