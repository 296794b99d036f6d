"""Pretext emulator: parameters -> EDV, ESV and the LV volume curve of the periodic beat.

Med-Real2Sim's first step: a network learns the physics model's map from parameters to
what can be measured, on synthetic simulations, so that the inverse network can later be
trained *through* it with gradients. Input: the seven inferred parameters mapped to [0, 1]
by their ranges; output: EDV, ESV and K samples of the volume curve, all in units of
:data:`SCALE_ML` mL. Trained with MSE; errors are reported in mL on the campaign's test
split.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.hemo import nets
from pipeline.hemo import params as P
from pipeline.hemo.campaign import read_campaign
from pipeline.io import write_json

log = logging.getLogger(__name__)

#: Output scale: the network predicts volumes in units of 100 mL.
SCALE_ML = 100.0


class Emulator:
    """A trained emulator, frozen.

    Parameters
    ----------
    model
        The MLP (7 -> 2 + K).
    curve_points
        K.
    """

    def __init__(self, model: nets.MLP, curve_points: int) -> None:
        self.model = model
        self.curve_points = curve_points
        for par in model.parameters():
            par.requires_grad_(False)

    @classmethod
    def load(cls, path: str | Path) -> "Emulator":
        """Load a checkpoint written by :func:`train_emulator`."""
        model, ckpt = nets.load(path)
        return cls(model, int(ckpt["curve_points"]))

    def __call__(self, unit_params: torch.Tensor) -> dict[str, torch.Tensor]:
        """Emulate.

        Parameters
        ----------
        unit_params
            (B, 7) parameters scaled to [0, 1] (:func:`pipeline.hemo.params.to_unit`).

        Returns
        -------
        dict
            ``EDV_mL`` (B,), ``ESV_mL`` (B,), ``EF_percent`` (B,), ``volume_mL`` (B, K).
        """
        y = self.model(unit_params.to(torch.float32)) * SCALE_ML
        edv, esv = y[:, 0], y[:, 1]
        return {"EDV_mL": edv, "ESV_mL": esv, "EF_percent": 100.0 * (edv - esv) / edv.clamp_min(1.0),
                "volume_mL": y[:, 2:]}


def targets(ind: Mapping[str, np.ndarray], curves: Mapping[str, np.ndarray]) -> np.ndarray:
    """Emulator targets (N, 2 + K) in units of :data:`SCALE_ML` mL."""
    return np.concatenate([ind["EDV_mL"][:, None], ind["ESV_mL"][:, None], curves["volume_mL"]], 1) / SCALE_ML


def errors_ml(pred: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """Held-out errors of emulator outputs (N, 2 + K), both in mL (EF in points)."""
    ef_p = 100 * (pred[:, 0] - pred[:, 1]) / pred[:, 0]
    ef_t = 100 * (true[:, 0] - true[:, 1]) / true[:, 0]
    return {
        "EDV_mae_mL": float((pred[:, 0] - true[:, 0]).abs().mean()),
        "ESV_mae_mL": float((pred[:, 1] - true[:, 1]).abs().mean()),
        "EDV_p95_mL": float((pred[:, 0] - true[:, 0]).abs().quantile(0.95)),
        "ESV_p95_mL": float((pred[:, 1] - true[:, 1]).abs().quantile(0.95)),
        "curve_rmse_mL": float(((pred[:, 2:] - true[:, 2:]) ** 2).mean().sqrt()),
        "curve_mae_mL": float((pred[:, 2:] - true[:, 2:]).abs().mean()),
        "EF_mae_points": float((ef_p - ef_t).abs().mean()),
    }


def train_emulator(campaign: str | Path, out: str | Path, metrics: str | Path,
                   cfg: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Train the emulator on a campaign's train split (val for model selection).

    Writes the checkpoint ``out`` and ``metrics`` (JSON with the test-split errors in mL).
    """
    ec = cfg["emulator"]
    camp = read_campaign(campaign)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 80)
    x = P.to_unit(torch.from_numpy(camp.params)).float()
    y = torch.from_numpy(targets(camp.indices, camp.curves)).float()
    tr, va, te = (torch.from_numpy(camp.split[s]) for s in ("train", "val", "test"))
    k = camp.curves["volume_mL"].shape[1]
    model = nets.MLP(nets.MLPConfig(n_in=len(P.INFERRED), n_out=2 + k, hidden=ec["hidden"], layers=ec["layers"]))
    xt, yt = x[tr], y[tr]
    weight = torch.ones(2 + k)
    weight[:2] = k / 4.0                        # EDV and ESV count like a quarter of the curve each

    def loss_fn(idx: torch.Tensor) -> torch.Tensor:
        return ((model(xt[idx]) - yt[idx]) ** 2 * weight).mean()

    def val_fn() -> float:
        return float(((model(x[va]) - y[va]) ** 2 * weight).mean())

    t0 = time.perf_counter()
    info = nets.fit(model, len(tr), loss_fn, val_fn, ec["epochs"], ec["batch"], ec["lr"], gen, "emulator")
    train_s = time.perf_counter() - t0
    with torch.no_grad():
        result = {split: errors_ml(model(x[idx]) * SCALE_ML, y[idx] * SCALE_ML)
                  for split, idx in (("val", va), ("test", te))}
    report = {"campaign": str(campaign), "n_train": int(len(tr)), "curve_points": k,
              "train_seconds": train_s, "best_epoch": info["best_epoch"], "splits": result,
              "n_parameters": sum(p.numel() for p in model.parameters())}
    nets.save(out, model, curve_points=k, param_names=list(P.INFERRED), scale_mL=SCALE_ML,
              config=dict(cfg), seed=seed)
    write_json(metrics, report)
    log.info("emulator test errors: EDV %.2f mL, ESV %.2f mL, curve RMSE %.2f mL, EF %.2f points",
             result["test"]["EDV_mae_mL"], result["test"]["ESV_mae_mL"], result["test"]["curve_rmse_mL"],
             result["test"]["EF_mae_points"])
    return report
