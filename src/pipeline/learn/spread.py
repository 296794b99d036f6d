"""Recalibration of an ensemble's spread: one SD scale fitted on the validation split.

A deep ensemble (Lakshminarayanan et al., NeurIPS 2017) trained on a few hundred
simulations is over-confident: its members agree more closely than their mean agrees
with the truth. Following the post-hoc recalibration of regression uncertainty
(Kuleshov et al., ICML 2018; Levi et al., Sensors 2022, "std scaling"), the members' SD is
multiplied by one factor ``s`` fitted on held-out data:

    s = q_0.6827( |mean - true| / SD )   over the validation split's (sample, point) pairs,

so that on validation 68.3 % of errors fall within one scaled SD, the fraction of a
calibrated Gaussian. One scalar cannot over-fit a validation split of a few dozen
samples, keeps the ranking of the points' SDs, and is stored in the checkpoint under
``sd_scale`` (numbers only). :func:`pipeline.learn.metrics.calibration` measures the result
on the test split (``docs/learn.md``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.learn.metrics import GAUSSIAN_WITHIN, calibration

log = logging.getLogger(__name__)


def fit_sd_scale(pred_ms: np.ndarray, sd_ms: np.ndarray, true_ms: np.ndarray) -> dict[str, Any]:
    """The SD scale that gives 68.3 % one-SD coverage on these samples.

    Parameters
    ----------
    pred_ms, sd_ms, true_ms
        (N, 75) ensemble mean, members' SD and true activation (ms) of the validation
        split; NaN entries are skipped.

    Returns
    -------
    dict
        ``scale`` (dimensionless, > 0; 1 = already calibrated, > 1 over-confident),
        ``target`` (0.6827), ``n`` entries, and ``val_within_1sd_raw`` /
        ``val_within_1sd`` (coverage before and after scaling).

    Raises
    ------
    ValueError
        When no entry has a finite, positive SD (nothing to scale).
    """
    sd = np.asarray(sd_ms, np.float64)
    if not np.any(np.isfinite(sd) & (sd > 0)):
        raise ValueError("cannot fit an SD scale: no entry has a finite, positive SD")
    raw = calibration(pred_ms, sd_ms, true_ms)
    scale = raw["sd_scale_68"]
    if not raw["n"] or scale is None or not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"cannot fit an SD scale: {raw['n']} usable entries, quantile "
                         f"ratio {scale}")
    scaled = calibration(pred_ms, np.asarray(sd_ms) * scale, true_ms)
    return {"scale": float(scale), "target": GAUSSIAN_WITHIN["within_1sd"], "n": raw["n"],
            "val_within_1sd_raw": raw["within_1sd"], "val_within_1sd": scaled["within_1sd"]}


def sd_scale(ckpt: dict[str, Any]) -> float:
    """The checkpoint's fitted SD scale, or 1.0 when it has none (single networks, older
    checkpoints)."""
    d = ckpt.get("sd_scale")
    return float(d["scale"]) if d else 1.0


def attach_sd_scale_data(model_path: str | Path, data: Any) -> dict[str, Any] | None:
    """Fit the SD scale of an ensemble checkpoint on ``data``'s validation split and store
    it (the checkpoint is rewritten atomically under ``sd_scale``).

    Returns the fitted entry, or None for a single network, a Vm network or an empty
    validation split (nothing to calibrate).
    """
    from pipeline.learn import checkpoint
    from pipeline.learn.data import paper_activation, scale_ecg
    from pipeline.learn.models import member_units

    model, cfg, norm, ckpt = checkpoint.load_model(model_path)
    val = data.splits["val"]
    if cfg.members < 2 or cfg.task != "activation" or val.size == 0:
        return None
    members = member_units(model, scale_ecg(data.ecg[val])).reshape(cfg.members, len(val), -1)
    pred = members.mean(axis=0) * norm.label_scale_ms
    sd = members.std(axis=0) * norm.label_scale_ms
    entry = fit_sd_scale(pred, sd, paper_activation(data.vm[val], data.dt_ms))
    payload = {k: v for k, v in ckpt.items() if k != "format"}
    payload["sd_scale"] = entry
    checkpoint.save(model_path, payload)
    log.info("%s: ensemble SD scale %.3f (validation one-SD coverage %.2f -> %.2f, n = %d)",
             model_path, entry["scale"], entry["val_within_1sd_raw"], entry["val_within_1sd"],
             entry["n"])
    return entry
