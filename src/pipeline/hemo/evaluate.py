"""Held-out evaluation: EF recovery of the twins and the cost of per-patient fitting.

On the campaign's test split, measurements get the configured noise (fixed seed). Each
inverse network maps them to parameters; the parameters are re-simulated with the ODE
solver (not the emulator) and the twin's EF, EDV and ESV are compared with the patient's
true, noise-free values. The per-patient fitting baseline (:mod:`pipeline.hemo.fit`)
runs on the first ``n_fit`` patients one at a time. Timings are wall-clock seconds per
patient on this machine (torch, one thread).

Outputs in ``out_dir``: ``metrics.json``, ``ef_recovery.png`` and ``cohort_FileList.csv``
(the noisy test cohort in the EchoNet-Dynamic FileList layout plus ``HR``), which the
``twins`` step reads when no patient CSV is configured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from pipeline.hemo import params as P
from pipeline.hemo.campaign import read_campaign
from pipeline.hemo.fit import fit_patient
from pipeline.hemo.inverse import add_noise, load_inverse, predict
from pipeline.hemo.twins import simulate_batch
from pipeline.io import atomic_path, write_json

log = logging.getLogger(__name__)


def _errors(ind: Mapping[str, torch.Tensor], true: Mapping[str, np.ndarray]) -> dict[str, float]:
    out = {}
    for key in ("EF_percent", "EDV_mL", "ESV_mL"):
        err = np.abs(ind[key].numpy() - true[key])
        out[f"{key.split('_')[0]}_mae"] = float(np.nanmean(err))
        out[f"{key.split('_')[0]}_p90"] = float(np.nanquantile(err, 0.9))
    return out


def evaluate(campaign: str | Path, models: str | Path, out_dir: str | Path, cfg: Mapping[str, Any],
             seed: int) -> dict[str, Any]:
    """Evaluate the inverse networks and the per-patient fit on the held-out cohort."""
    from pipeline.hemo.figures import ef_recovery_figure

    ecfg, icfg, solver = cfg["evaluate"], cfg["inverse"], cfg["solver"]
    out_dir, models = Path(out_dir), Path(models)
    camp = read_campaign(campaign)
    te = camp.split["test"][: ecfg["n_patients"]]
    true = {k: camp.indices[k][te].astype(np.float64) for k in ("EF_percent", "EDV_mL", "ESV_mL")}
    hr = 60.0 / camp.params[te, 0]
    curve = torch.from_numpy(camp.curves["volume_mL"][te]).double()
    gen = torch.Generator().manual_seed(seed + 90)
    meas = add_noise(torch.from_numpy(true["EDV_mL"]), torch.from_numpy(true["ESV_mL"]), torch.from_numpy(hr),
                     curve, icfg, gen)
    report: dict[str, Any] = {"campaign": str(campaign), "n_patients": int(len(te)), "noise": {
        k: icfg[k] for k in ("noise_volume_rel", "noise_hr_bpm", "noise_curve_mL")}, "methods": {}}
    noise_floor = np.abs(meas["EF_percent"].numpy() - true["EF_percent"])
    report["measured_EF_mae_points"] = float(noise_floor.mean())
    ef_plot: dict[str, np.ndarray] = {}
    for name in ("pssl", "supervised"):
        model, ckpt = load_inverse(models / f"{name}.pt")
        use_curve = bool(ckpt["use_curve"])
        t0 = time.perf_counter()
        theta = predict(model, meas, use_curve)
        infer_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ind, _ = simulate_batch(theta, solver)
        sim_s = time.perf_counter() - t0
        errs = _errors(ind, true)
        report["methods"][name] = {**errs, "inference_seconds_per_patient": infer_s / len(te),
                                   "simulation_seconds_per_patient": sim_s / len(te),
                                   "param_mae": {n: float(v) for n, v in zip(P.INFERRED, (
                                       theta - torch.from_numpy(camp.params[te])).abs().mean(0).tolist())}}
        ef_plot[name] = ind["EF_percent"].numpy()
        log.info("%s: twin EF MAE %.2f points (measurement noise alone %.2f), %.2e s/patient", name,
                 errs["EF_mae"], report["measured_EF_mae_points"], infer_s / len(te))
    # per-patient fitting baseline, one patient at a time
    fit_solver = {**solver, "steps_per_cycle": ecfg["fit_steps_per_cycle"]}
    fits, seconds = [], []
    n_fit = min(ecfg["n_fit"], len(te))
    for i in tqdm(range(n_fit), desc="per-patient fit", unit="patient"):
        m = {k: float(meas[k][i]) for k in ("EDV_mL", "ESV_mL", "EF_percent", "HR_bpm")}
        r = fit_patient(m, fit_solver, ecfg["fit_iterations"], ecfg["fit_lr"])
        fits.append(r["params"])
        seconds.append(r["seconds"])
        log.info("fit patient %d: loss %.2e in %.1f s", i, r["loss"], r["seconds"])
    ind_fit, _ = simulate_batch(torch.stack(fits), solver)
    sub = {k: v[:n_fit] for k, v in true.items()}
    report["methods"]["per_patient_fit"] = {**_errors(ind_fit, sub), "n_patients": n_fit,
                                            "seconds_per_patient": float(np.mean(seconds)),
                                            "iterations": ecfg["fit_iterations"]}
    pssl_same = np.abs(ef_plot["pssl"][:n_fit] - true["EF_percent"][:n_fit])
    report["methods"]["pssl"]["EF_mae_on_fit_patients"] = float(pssl_same.mean())
    ef_plot["per-patient fit"] = ind_fit["EF_percent"].numpy()
    pssl_s = report["methods"]["pssl"]["inference_seconds_per_patient"]
    report["speedup_fit_over_pssl_inference"] = float(np.mean(seconds) / max(pssl_s, 1e-12))
    log.info("per-patient fit: EF MAE %.2f points, %.1f s/patient (P-SSL inference %.2e s/patient: x%.0f)",
             report["methods"]["per_patient_fit"]["EF_mae"], np.mean(seconds), pssl_s,
             report["speedup_fit_over_pssl_inference"])
    write_json(out_dir / "metrics.json", report)
    ef_recovery_figure(true["EF_percent"], ef_plot, out_dir / "ef_recovery.png")
    table = pd.DataFrame({
        "FileName": [f"synthetic_{int(i):05d}" for i in te],
        "EF": meas["EF_percent"].numpy().round(2), "ESV": meas["ESV_mL"].numpy().round(2),
        "EDV": meas["EDV_mL"].numpy().round(2), "HR": meas["HR_bpm"].numpy().round(1),
        "Split": "TEST", "true_EF": true["EF_percent"].round(2),
    })
    with atomic_path(out_dir / "cohort_FileList.csv") as tmp:
        table.to_csv(tmp, index=False)
    return report
