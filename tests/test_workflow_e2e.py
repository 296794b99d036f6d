"""End to end: the CI config's real simulations (anatomy -> cells -> simulate -> dataset,
run once per session by ``workflow_helpers.ci_local_run``), then training and evaluation
of Network I through the workflow on that dataset.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from workflow_helpers import TARGET, ci_local_run, real_upstream, snakemake  # noqa: F401

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
