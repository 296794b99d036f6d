"""Digital twins: simulate presets, infer patients' parameters, run in-silico LVAD trials.

A twin is the seven inferred parameters of a patient (the others at Simaan's values)
simulated to its periodic state. The LVAD trial connects the Simaan 2009 rotary pump at
each speed of ``hemo.lvad.speeds_rpm`` and compares EF and cardiac output with the
unassisted heart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.hemo import params as P
from pipeline.hemo.metrics import indices
from pipeline.hemo.solver import Trajectory, simulate

log = logging.getLogger(__name__)

#: Keys written by ``pipeline hemo simulate --json``.
SIMULATE_KEYS: tuple[str, ...] = ("EDV_mL", "ESV_mL", "EF_percent", "CO_L_per_min", "plv_min_mmHg",
                                  "plv_max_mmHg")


def simulate_one(preset: str, overrides: Mapping[str, float], solver: Mapping[str, Any],
                 speed_rpm: float | None = None) -> dict[str, Any]:
    """Simulate one parameter set to its periodic state.

    Parameters
    ----------
    preset
        Preset name (``simaan2009``).
    overrides
        Parameter name -> value replacing the preset's.
    solver
        ``hemo.solver`` config (n_cycles, steps_per_cycle, newton).
    speed_rpm
        LVAD speed, or ``None`` for no pump.

    Returns
    -------
    dict
        :data:`SIMULATE_KEYS` (floats) plus the other indices, the parameters used, the
        LVAD speed and the periodicity residual (mL).
    """
    values = P.preset(preset)
    values.update(overrides)
    p = P.full_batch({k: torch.tensor([v], dtype=torch.float64) for k, v in values.items()})
    with torch.no_grad():
        traj = simulate(p, speed_rpm=speed_rpm, **solver)
    out: dict[str, Any] = {k: float(v[0]) for k, v in indices(traj).items()}
    out["periodicity_mL"] = float(traj.periodicity[0])
    out["lvad_speed_rpm"] = speed_rpm
    out["preset"] = preset
    out["parameters"] = values
    return out


def simulate_batch(values: torch.Tensor, solver: Mapping[str, Any],
                   speed_rpm: torch.Tensor | float | None = None, chunk: int = 1024) -> tuple[dict[str, torch.Tensor], Trajectory | None]:
    """Simulate patients given their inferred parameters (B, 7) in chunks, without gradients.

    Returns the indices (name -> (B,)) and, when B <= ``chunk``, the trajectory.
    """
    out: dict[str, list[torch.Tensor]] = {}
    traj = None
    with torch.no_grad():
        for start in range(0, values.shape[0], chunk):
            v = values[start:start + chunk].to(torch.float64)
            sp = speed_rpm
            if isinstance(speed_rpm, torch.Tensor) and speed_rpm.ndim > 0:
                sp = speed_rpm[start:start + chunk]
            traj = simulate(P.full_batch(P.unstack(v)), speed_rpm=sp, **solver)
            for k, val in indices(traj).items():
                out.setdefault(k, []).append(val)
    result = {k: torch.cat(v) for k, v in out.items()}
    return result, (traj if values.shape[0] <= chunk else None)


def _trajectories(values: torch.Tensor, solver: Mapping[str, Any],
                  speed_rpm: torch.Tensor | float | None = None) -> Trajectory:
    with torch.no_grad():
        return simulate(P.full_batch(P.unstack(values.to(torch.float64))), speed_rpm=speed_rpm, **solver)


def infer(patients: Any, model_path: str | Path) -> torch.Tensor:
    """Parameters (n, 7) of each patient from the P-SSL network (physical units)."""
    from pipeline.hemo.inverse import load_inverse, predict

    model, ckpt = load_inverse(model_path)
    if ckpt["use_curve"]:
        raise ValueError(f"{model_path} expects a volume curve; patient CSVs carry EDV, ESV, EF and HR only")
    meas = {"EDV_mL": torch.from_numpy(patients.edv), "ESV_mL": torch.from_numpy(patients.esv),
            "EF_percent": torch.from_numpy(patients.ef), "HR_bpm": torch.from_numpy(patients.hr)}
    hr_lo, hr_hi = 60.0 / P.PARAMETERS["Tc"].high, 60.0 / P.PARAMETERS["Tc"].low
    outside = np.flatnonzero((patients.hr < hr_lo) | (patients.hr > hr_hi))
    if outside.size:
        log.warning("%d patients have a heart rate outside the trained %.0f-%.0f bpm (first: %s)",
                    outside.size, hr_lo, hr_hi, patients.ids[int(outside[0])])
    return predict(model, meas, use_curve=False)


def lvad_trial(values: torch.Tensor, speeds: list[float], solver: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Run every twin (n, 7) without a pump and at every speed.

    Returns
    -------
    dict
        ``base_EF``, ``base_CO`` (n,); ``EF``, ``CO``, ``EDV``, ``ESV``, ``MAP``, ``pump_CO`` (n, S);
        ``periodicity`` (n, S) mL.
    """
    n, s = values.shape[0], len(speeds)
    base, _ = simulate_batch(values, solver)
    rep = values.repeat_interleave(s, 0)
    sp = torch.tensor(speeds, dtype=torch.float64).repeat(n)
    ind, _ = simulate_batch(rep, solver, speed_rpm=sp)
    shaped = {k: v.reshape(n, s).numpy() for k, v in ind.items()}
    return {"base_EF": base["EF_percent"].numpy(), "base_CO": base["CO_L_per_min"].numpy(),
            "EF": shaped["EF_percent"], "CO": shaped["CO_L_per_min"], "EDV": shaped["EDV_mL"],
            "ESV": shaped["ESV_mL"], "MAP": shaped["MAP_mmHg"], "pump_CO": shaped["pump_flow_L_per_min"]}


def make_twins(patients: Any, model_path: str | Path, out_dir: str | Path, cfg: Mapping[str, Any],
               seed: int) -> dict[str, Any]:
    """Patients -> parameters, PV loops and an in-silico LVAD trial.

    Writes into ``out_dir``: ``parameters.csv`` (measurements, inferred parameters, twin
    indices), ``pv_loops.png``, ``lvad_trial.csv``, ``lvad_trial.png`` and ``summary.json``.
    """
    import pandas as pd

    from pipeline.hemo.figures import lvad_trial_figure, pv_loops_figure
    from pipeline.io import atomic_path, write_json

    solver, lcfg, pcfg = cfg["solver"], cfg["lvad"], cfg["patients"]
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    theta = infer(patients, model_path)
    infer_s = time.perf_counter() - t0
    ind, _ = simulate_batch(theta, solver)
    table = pd.DataFrame({"id": patients.ids, "EDV_mL": patients.edv, "ESV_mL": patients.esv,
                          "EF_percent": patients.ef, "HR_bpm": patients.hr})
    for i, name in enumerate(P.INFERRED):
        table[name] = theta[:, i].numpy()
    for key in ("EDV_mL", "ESV_mL", "EF_percent", "CO_L_per_min", "MAP_mmHg", "plv_max_mmHg"):
        table[f"twin_{key}"] = ind[key].numpy()
    with atomic_path(out_dir / "parameters.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    # PV loops of patients spread over the EF range
    order = np.argsort(patients.ef)
    pick = order[np.unique(np.linspace(0, len(order) - 1, min(pcfg["n_pv_loops"], len(order))).round().astype(int))]
    tr = _trajectories(theta[torch.from_numpy(pick)], solver)
    labels = [f"{patients.ids[i]}: EF {float(ind['EF_percent'][i]):.0f} %" for i in pick]
    pv_loops_figure(tr.volume.numpy(), tr.plv.numpy(), labels, out_dir / "pv_loops.png")
    # in-silico LVAD trial
    m = min(lcfg["max_patients"], len(patients))
    speeds = [float(s) for s in lcfg["speeds_rpm"]]
    trial = lvad_trial(theta[:m], speeds, solver)
    rows = []
    for i in range(m):
        rows.append({"id": patients.ids[i], "speed_rpm": 0.0, "EF_percent": trial["base_EF"][i],
                     "CO_L_per_min": trial["base_CO"][i]})
        for j, s in enumerate(speeds):
            rows.append({"id": patients.ids[i], "speed_rpm": s, "EF_percent": trial["EF"][i, j],
                         "CO_L_per_min": trial["CO"][i, j], "EDV_mL": trial["EDV"][i, j],
                         "ESV_mL": trial["ESV"][i, j], "MAP_mmHg": trial["MAP"][i, j],
                         "pump_flow_L_per_min": trial["pump_CO"][i, j]})
    with atomic_path(out_dir / "lvad_trial.csv") as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.5g")
    low = trial["base_EF"] < lcfg["low_ef_percent"]
    summary: dict[str, Any] = {"n_patients": len(patients), "inference_seconds": infer_s,
                               "lvad": {"n_patients": m, "speeds_rpm": speeds, "n_low_ef": int(low.sum()),
                                        "low_ef_percent": lcfg["low_ef_percent"], "per_speed": []}}
    for j, s in enumerate(speeds):
        d_ef, d_co = trial["EF"][:, j] - trial["base_EF"], trial["CO"][:, j] - trial["base_CO"]
        summary["lvad"]["per_speed"].append({
            "speed_rpm": s,
            "low_ef_mean_EF_before": float(trial["base_EF"][low].mean()) if low.any() else None,
            "low_ef_mean_EF_after": float(trial["EF"][low, j].mean()) if low.any() else None,
            "low_ef_fraction_EF_raised": float((d_ef[low] > 0).mean()) if low.any() else None,
            "mean_CO_before": float(trial["base_CO"].mean()), "mean_CO_after": float(trial["CO"][:, j].mean()),
            "fraction_CO_raised": float((d_co > 0).mean()),
        })
    write_json(out_dir / "summary.json", summary)
    worst = int(np.argmin(trial["base_EF"]))
    tw0 = _trajectories(theta[worst:worst + 1], solver)
    twl = _trajectories(theta[worst:worst + 1].repeat(len(speeds), 1), solver,
                        torch.tensor(speeds, dtype=torch.float64))
    example = {"v0": tw0.volume[0].numpy(), "p0": tw0.plv[0].numpy(), "v": twl.volume.numpy(), "p": twl.plv.numpy()}
    lvad_trial_figure(np.asarray(speeds), trial["EF"], trial["CO"], trial["base_EF"], trial["base_CO"], example,
                      out_dir / "lvad_trial.png", lcfg["low_ef_percent"])
    for row in summary["lvad"]["per_speed"]:
        log.info("LVAD %5.0f rpm: low-EF twins EF %s -> %s %%, raised in %s; mean CO %.2f -> %.2f L/min",
                 row["speed_rpm"], _fmt(row["low_ef_mean_EF_before"]), _fmt(row["low_ef_mean_EF_after"]),
                 _fmt(row["low_ef_fraction_EF_raised"]), row["mean_CO_before"], row["mean_CO_after"])
    return summary


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"
