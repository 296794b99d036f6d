"""Inverse networks: non-invasive measurements -> the seven circulation parameters.

Two networks with the same input and architecture, trained on the campaign's train split:

- **P-SSL** (Med-Real2Sim's physics-guided self-supervision): the network's parameters go
  through the *frozen* emulator, and the loss compares the emulated measurements with the
  network's input. No parameter label is used:

  .. math::

      L = \\sum_{m \\in \\{EDV, ESV, EF, HR\\}} \\big((\\hat m(\\theta) - m)/s_m\\big)^2
          \\;[+\\; \\overline{(\\hat v(\\theta) - v)^2}/s_V^2 \\text{ with a volume curve}],
      \\quad \\theta = g_\\phi(m), \\; HR = 60 / T_c .

- **Supervised** baseline: the same network trained with MSE on the parameter labels
  (scaled to [0, 1]).

Measurements carry fresh Gaussian noise in every minibatch (relative on EDV and ESV,
absolute on HR and on the volume curve; EF is recomputed from the noisy volumes, as echo
reports it). The supervised network's R^2 per parameter on the noisy test split is the
identifiability measure: it estimates how much of a parameter's prior variance the
measurements explain at all.
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
from pipeline.hemo.emulator import Emulator
from pipeline.io import write_json

log = logging.getLogger(__name__)

#: Scales s_m of the scalar measurements (mL, mL, %, bpm).
SCALES = {"EDV_mL": 100.0, "ESV_mL": 100.0, "EF_percent": 100.0, "HR_bpm": 100.0}
SCALE_CURVE_ML = 100.0


def add_noise(edv: torch.Tensor, esv: torch.Tensor, hr: torch.Tensor, curve: torch.Tensor | None,
              icfg: Mapping[str, Any], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Noisy measurements as echo would give them.

    Parameters
    ----------
    edv, esv, hr
        Noise-free EDV, ESV (mL) and heart rate (bpm), (B,).
    curve
        Noise-free volume curve (B, K) or None.
    icfg
        ``hemo.inverse`` config (noise levels).

    Returns
    -------
    dict
        ``EDV_mL``, ``ESV_mL`` (ESV kept below EDV), ``EF_percent`` (from the noisy volumes),
        ``HR_bpm`` and, with a curve, ``volume_mL``.
    """
    rel = icfg["noise_volume_rel"]
    n = torch.randn((4,) + tuple(edv.shape), generator=gen, dtype=edv.dtype)
    edv_n = edv * (1.0 + rel * n[0])
    esv_n = torch.minimum(esv * (1.0 + rel * n[1]), edv_n - 1.0)
    out = {"EDV_mL": edv_n, "ESV_mL": esv_n, "EF_percent": 100.0 * (edv_n - esv_n) / edv_n,
           "HR_bpm": hr + icfg["noise_hr_bpm"] * n[2]}
    if curve is not None:
        out["volume_mL"] = curve + icfg["noise_curve_mL"] * torch.randn(curve.shape, generator=gen, dtype=curve.dtype)
    return out


def features(meas: Mapping[str, torch.Tensor], use_curve: bool) -> torch.Tensor:
    """Network input (B, 4 [+ K]) from measurements, scaled by :data:`SCALES`."""
    cols = [meas[k] / s for k, s in SCALES.items()]
    x = torch.stack(cols, -1)
    if use_curve:
        x = torch.cat([x, meas["volume_mL"] / SCALE_CURVE_ML], -1)
    return x.to(torch.float32)


def pssl_loss(theta_unit: torch.Tensor, meas: Mapping[str, torch.Tensor], emulator: Emulator,
              use_curve: bool) -> torch.Tensor:
    """Physics-guided loss: emulated measurements of ``theta_unit`` (B, 7) vs ``meas``."""
    em = emulator(theta_unit)
    tc = P.from_unit(theta_unit.to(torch.float64))[:, 0]
    pred = {"EDV_mL": em["EDV_mL"], "ESV_mL": em["ESV_mL"], "EF_percent": em["EF_percent"],
            "HR_bpm": (60.0 / tc).to(torch.float32)}
    loss = sum((((pred[k] - meas[k].float()) / s) ** 2).mean() for k, s in SCALES.items())
    if use_curve:
        loss = loss + (((em["volume_mL"] - meas["volume_mL"].float()) / SCALE_CURVE_ML) ** 2).mean()
    return loss


def r2_per_parameter(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Coefficient of determination per parameter on unit-scaled values (N, 7)."""
    ss_res = ((pred - true) ** 2).sum(0)
    ss_tot = ((true - true.mean(0)) ** 2).sum(0)
    return {name: float(1.0 - ss_res[i] / ss_tot[i]) for i, name in enumerate(P.INFERRED)}


def load_inverse(path: str | Path) -> tuple[nets.MLP, dict[str, Any]]:
    """Load an inverse network; the dict holds ``use_curve`` and ``curve_points``."""
    return nets.load(path)


def predict(model: nets.MLP, meas: Mapping[str, torch.Tensor], use_curve: bool) -> torch.Tensor:
    """Parameters (B, 7) in physical units (float64) from measurements."""
    with torch.no_grad():
        return P.from_unit(model(features(meas, use_curve)).to(torch.float64))


def train_inverse(campaign: str | Path, emulator_path: str | Path, out_dir: str | Path,
                  cfg: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Train P-SSL and supervised inverse networks; write them and the identifiability report.

    Writes ``pssl.pt``, ``supervised.pt``, ``identifiability.json`` and
    ``identifiability.png`` into ``out_dir``.
    """
    from pipeline.hemo.figures import identifiability_figure

    icfg = cfg["inverse"]
    use_curve = bool(icfg["use_curve"])
    out_dir = Path(out_dir)
    camp = read_campaign(campaign)
    emulator = Emulator.load(emulator_path)
    theta = P.to_unit(torch.from_numpy(camp.params))
    edv = torch.from_numpy(camp.indices["EDV_mL"]).double()
    esv = torch.from_numpy(camp.indices["ESV_mL"]).double()
    hr = 60.0 / torch.from_numpy(camp.params[:, 0])
    curve = torch.from_numpy(camp.curves["volume_mL"]).double() if use_curve else None
    if use_curve and camp.curves["volume_mL"].shape[1] != emulator.curve_points:
        raise ValueError("campaign and emulator disagree on curve_points")
    tr, va, te = (torch.from_numpy(camp.split[s]) for s in ("train", "val", "test"))
    gen = torch.Generator().manual_seed(seed + 81)

    def noisy(idx: torch.Tensor, g: torch.Generator) -> dict[str, torch.Tensor]:
        return add_noise(edv[idx], esv[idx], hr[idx], None if curve is None else curve[idx], icfg, g)

    val_meas = noisy(va, torch.Generator().manual_seed(seed + 82))
    test_meas = noisy(te, torch.Generator().manual_seed(seed + 83))
    n_in = len(SCALES) + (emulator.curve_points if use_curve else 0)
    arch = nets.MLPConfig(n_in=n_in, n_out=len(P.INFERRED), hidden=icfg["hidden"], layers=icfg["layers"],
                          sigmoid_out=True)
    report: dict[str, Any] = {"campaign": str(campaign), "use_curve": use_curve, "noise": {
        k: icfg[k] for k in ("noise_volume_rel", "noise_hr_bpm", "noise_curve_mL")}, "networks": {}}
    preds: dict[str, np.ndarray] = {}
    for name in ("pssl", "supervised"):
        torch.manual_seed(seed + (84 if name == "pssl" else 85))
        model = nets.MLP(arch)
        train_idx = tr

        def loss_fn(b: torch.Tensor, model: nets.MLP = model, name: str = name) -> torch.Tensor:
            idx = train_idx[b]
            meas = noisy(idx, gen)
            out = model(features(meas, use_curve))
            if name == "pssl":
                return pssl_loss(out, meas, emulator, use_curve)
            return ((out - theta[idx].float()) ** 2).mean()

        def val_fn(model: nets.MLP = model, name: str = name) -> float:
            out = model(features(val_meas, use_curve))
            if name == "pssl":
                return float(pssl_loss(out, val_meas, emulator, use_curve))
            return float(((out - theta[va].float()) ** 2).mean())

        t0 = time.perf_counter()
        info = nets.fit(model, len(tr), loss_fn, val_fn, icfg["epochs"], icfg["batch"], icfg["lr"], gen, name)
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            pred = model(features(test_meas, use_curve)).double()
            em = emulator(pred)
        preds[name] = pred.numpy()
        r2 = r2_per_parameter(pred.numpy(), theta[te].numpy())
        report["networks"][name] = {
            "train_seconds": seconds, "best_epoch": info["best_epoch"],
            "test_r2": r2,
            "test_mae_physical": {n: float(v) for n, v in zip(P.INFERRED, (
                P.from_unit(pred) - torch.from_numpy(camp.params[te.numpy()])).abs().mean(0).tolist())},
            "test_emulated_EF_mae_points": float((em["EF_percent"].double() - torch.from_numpy(
                camp.indices["EF_percent"][te.numpy()]).double()).abs().mean()),
        }
        nets.save(out_dir / f"{name}.pt", model, use_curve=use_curve, curve_points=emulator.curve_points,
                  param_names=list(P.INFERRED), config=dict(cfg), seed=seed, kind=name)
        log.info("%s: test R^2 %s", name, ", ".join(f"{k} {v:.2f}" for k, v in r2.items()))
    sup = report["networks"]["supervised"]["test_r2"]
    thr = icfg["identifiable_r2"]
    report["identifiable"] = {k: bool(v >= thr) for k, v in sup.items()}
    report["identifiable_r2_threshold"] = thr
    write_json(out_dir / "identifiability.json", report)
    identifiability_figure(theta[te].numpy(), preds, report, out_dir / "identifiability.png")
    return report
