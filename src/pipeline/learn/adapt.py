"""Physics-informed self-supervised adaptation (P-SSL) of an activation network.

1. **Emulator** (the forward problem, learned): an MLP ``g`` from the 75 activation times
   (ms / :data:`EMU_SCALE_MS`; a point that never activates is set to the record's end) to
   the 12-lead ECG in the network's input layout (every lead scaled to range 1, (12, T)),
   trained with MSE on the training split, with the same 0..``shift_max_ms`` delay
   augmentation as the inverse network (ECG delayed, times moved alike).
2. **Adaptation**: the emulator is frozen; the inverse network ``f`` (the supervised
   checkpoint) is fine-tuned on ECGs *without labels* to minimise the reconstruction loss
   ``mean (g(f(x)) - x)^2`` plus ``anchor * sum (theta - theta_0)^2`` (L2-SP: stay near the
   supervised weights). ``f`` stays in eval mode (batch-norm statistics and dropout fixed),
   so only the weights move.
3. **Domain shift** standing in for the clinical gap (:func:`domain_shift`): simulated
   ECGs with white noise, a 50-Hz mains component, baseline wander (a slow sinusoid of
   random phase) and per-lead gains, all relative to each lead's range.

:func:`run_adaptation` adapts on shifted ECGs of the training and validation splits (their
labels unused) and measures the activation MAE on the shifted *test* split (other samples,
other noise) against the supervised network alone, and on the clean test split.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.errors import InputError
from pipeline.io import provenance, write_json
from pipeline.learn import checkpoint
from pipeline.learn.data import (
    LearnData,
    paper_activation,
    read_dataset,
    scale_ecg,
    shift_batch,
)
from pipeline.learn.metrics import activation_metrics
from pipeline.learn.models import member_units

log = logging.getLogger(__name__)

#: Activation times enter the emulator in units of this many ms.
EMU_SCALE_MS = 100.0
#: Default domain shift, relative to each lead's range (noise and mains SD, wander amplitude)
#: and the SD of the log per-lead gain.
SHIFT_DEFAULTS: dict[str, float] = {"noise": 0.05, "mains": 0.02, "wander": 0.3,
                                    "gain_sd": 0.3}


class Emulator(nn.Module):
    """Activation times (B, 75) in units of :data:`EMU_SCALE_MS` -> scaled ECG (B, 12, T).

    ``Linear(75, h)``, GELU, ``Linear(h, h)``, GELU, ``Linear(h, 12 T)``.
    """

    def __init__(self, n_points: int = 75, n_leads: int = 12, n_samples: int = 500,
                 hidden: int = 256) -> None:
        super().__init__()
        self.shape = (n_leads, n_samples)
        self.net = nn.Sequential(nn.Linear(n_points, hidden), nn.GELU(),
                                 nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, n_leads * n_samples))

    def forward(self, act: torch.Tensor) -> torch.Tensor:
        return self.net(act).reshape(act.shape[0], *self.shape)


def _labels(data: LearnData, idx: np.ndarray) -> np.ndarray:
    """Paper labels (ms) of ``idx``, NaN (never activates) set to the record's end."""
    act = paper_activation(data.vm[idx], data.dt_ms)
    return np.where(np.isfinite(act), act, data.n_samples * data.dt_ms).astype(np.float32)


def train_emulator(data: LearnData, *, epochs: int = 200, hidden: int = 256, lr: float = 1e-3,
                   batch_size: int = 32, shift_max_ms: int = 40, seed: int = 0
                   ) -> tuple[Emulator, dict[str, float]]:
    """Fit the emulator on the training split; report its validation error.

    Returns
    -------
    tuple
        ``(emulator, report)``: report ``val_mse`` (scaled units^2), ``val_mse_mean_ecg``
        (the MSE of predicting the training mean ECG) and their ratio ``val_relative_mse``
        (0 perfect, 1 no better than the mean), ``train_mse``, ``epochs``.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    tr, va = data.splits["train"], data.splits["val"]
    x_tr, x_va = (torch.from_numpy(scale_ecg(data.ecg[i])) for i in (tr, va))
    a_tr = torch.from_numpy(_labels(data, tr) / EMU_SCALE_MS)
    a_va = torch.from_numpy(_labels(data, va) / EMU_SCALE_MS)
    emu = Emulator(a_tr.shape[1], x_tr.shape[1], x_tr.shape[2], hidden)
    opt = torch.optim.Adam(emu.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    train_mse = float("nan")
    for _ in range(epochs):
        emu.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        total = 0.0
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            xb, ab = x_tr[idx], a_tr[idx]
            if shift_max_ms > 0:
                s = torch.randint(0, shift_max_ms + 1, (len(idx),), generator=gen)
                xb, ab = shift_batch(xb, ab, s, "activation", EMU_SCALE_MS)
            loss = torch.mean((emu(ab) - xb) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        train_mse = total / len(perm)
    emu.eval()
    with torch.no_grad():
        val = float(torch.mean((emu(a_va) - x_va) ** 2))
        base = float(torch.mean((x_tr.mean(0, keepdim=True) - x_va) ** 2))
    report = {"val_mse": val, "val_mse_mean_ecg": base, "val_relative_mse": val / base,
              "train_mse": train_mse, "epochs": float(epochs)}
    log.info("emulator: val MSE %.4g (mean ECG %.4g, relative %.3f)", val, base, val / base)
    return emu, report


def domain_shift(ecg_mV: np.ndarray, rng: np.random.Generator, *, noise: float = 0.05,
                 mains: float = 0.02, wander: float = 0.3, gain_sd: float = 0.3,
                 dt_ms: float = 1.0) -> np.ndarray:
    """A simulated ECG made to look recorded: noise, mains, baseline wander, lead gains.

    Parameters
    ----------
    ecg_mV
        (N, 12, T) mV.
    rng
        Random generator.
    noise, mains, wander
        White-noise SD, 50-Hz amplitude and wander amplitude (a sinusoid of 0.15-0.5 Hz,
        random phase), each relative to the lead's range (max - min).
    gain_sd
        SD of the log of a per-lead gain.

    Returns
    -------
    numpy.ndarray
        float32 (N, 12, T) mV.
    """
    x = np.asarray(ecg_mV, np.float64)
    n, leads, t_len = x.shape
    rng_l = np.ptp(x, axis=-1, keepdims=True)
    t = np.arange(t_len) * dt_ms / 1000.0                                     # s
    f = rng.uniform(0.15, 0.5, (n, leads, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, leads, 1))
    base = wander * np.sin(2 * np.pi * f * t + phase)
    hum = mains * np.sin(2 * np.pi * 50.0 * t + rng.uniform(0, 2 * np.pi, (n, 1, 1)))
    white = noise * rng.standard_normal(x.shape)
    gain = np.exp(gain_sd * rng.standard_normal((n, leads, 1)))
    return (gain * (x + rng_l * (base + hum + white))).astype(np.float32)


def _activation_units(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x)


def adapt_network(model: nn.Module, emulator: Emulator, x_target: np.ndarray,
                  label_scale_ms: float, *, steps: int = 200, lr: float = 1e-4,
                  anchor: float = 1e-2, batch_size: int = 32, seed: int = 0
                  ) -> tuple[nn.Module, list[float]]:
    """Fine-tune a copy of ``model`` on unlabelled scaled ECGs through the frozen emulator.

    Parameters
    ----------
    model
        Supervised activation network (outputs in units of ``label_scale_ms``).
    emulator
        Trained :class:`Emulator` (frozen here).
    x_target
        (N, 12, T) scaled ECGs of the target domain (no labels).
    steps, lr, anchor, batch_size, seed
        Adam steps and rate, the L2-SP weight and the batch.

    Returns
    -------
    tuple
        ``(adapted_model, losses)``: the reconstruction loss per step.
    """
    net = copy.deepcopy(model).eval()
    emulator.eval()
    for p in emulator.parameters():
        p.requires_grad_(False)
    theta0 = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(x_target, np.float32))
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(x), (min(batch_size, len(x)),), generator=gen)
        xb = x[idx]
        act = _activation_units(net, xb) * (label_scale_ms / EMU_SCALE_MS)
        rec = torch.mean((emulator(act) - xb) ** 2)
        reg = sum(((p - p0) ** 2).sum() for p, p0 in zip(net.parameters(), theta0))
        loss = rec + anchor * reg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(rec.detach()))
    return net.eval(), losses


def _mae(model: nn.Module, x: np.ndarray, label_ms: np.ndarray, scale: float,
         record_ms: float) -> float:
    pred = member_units(model, x).mean(axis=0) * scale
    return float(activation_metrics(pred, label_ms, record_ms)["activation_mae_ms"])


@torch.no_grad()
def _recon(model: nn.Module, emulator: Emulator, x: np.ndarray, scale: float) -> float:
    xt = torch.from_numpy(x)
    return float(torch.mean((emulator(model(xt) * (scale / EMU_SCALE_MS)) - xt) ** 2))


def run_adaptation(model_path: str | Path, dataset: str | Path, out_dir: str | Path, *,
                   shift: dict[str, float] | None = None, emulator_epochs: int = 200,
                   steps: int = 200, lr: float = 1e-4, anchor: float = 1e-2,
                   seed: int = 0, emulator_kw: dict[str, Any] | None = None) -> dict[str, Any]:
    """Emulator, domain-shifted ECGs, adaptation and the comparison; write ``adapt.json``.

    Writes ``emulator.pt``, ``{network}.adapted.pt`` (a checkpoint like the supervised one,
    with ``adaptation`` settings) and ``adapt.json`` into ``out_dir``. ``emulator_kw``
    passes ``hidden``, ``lr`` and ``batch_size`` to :func:`train_emulator`.

    Returns
    -------
    dict
        ``emulator`` (fit report), ``shift``, ``settings``, and activation MAE (ms, paper
        label) of the ``supervised`` and ``adapted`` networks on the ``clean_test`` and
        ``shifted_test`` ECGs, the reconstruction loss before/after on the shifted test ECGs,
        and ``gain_ms`` (supervised - adapted on the shifted test; > 0: adaptation helps).
    """
    model, cfg, norm, ckpt = checkpoint.load_model(model_path)
    if cfg.task != "activation":
        raise InputError(f"{model_path}: adaptation needs an activation network, got "
                         f"task {cfg.task!r}")
    data = read_dataset(dataset)
    if data.splits["test"].size == 0:
        raise InputError(f"dataset {dataset}: the test split is empty")
    t_start = time.perf_counter()
    shift = {**SHIFT_DEFAULTS, **(shift or {})}
    emu, emu_report = train_emulator(data, epochs=emulator_epochs, seed=seed,
                                     shift_max_ms=cfg.shift_max_ms, **(emulator_kw or {}))
    rng = np.random.default_rng(seed + 7)
    pool = np.concatenate([data.splits["train"], data.splits["val"]])
    te = data.splits["test"]
    x_adapt = scale_ecg(domain_shift(data.ecg[pool], rng, **shift))
    x_shift = scale_ecg(domain_shift(data.ecg[te], rng, **shift))
    x_clean = scale_ecg(data.ecg[te])
    label, rec_ms = paper_activation(data.vm[te], data.dt_ms), data.n_samples * data.dt_ms
    adapted, losses = adapt_network(model, emu, x_adapt, norm.label_scale_ms, steps=steps,
                                    lr=lr, anchor=anchor, seed=seed)
    s = norm.label_scale_ms
    res: dict[str, Any] = {
        "model": str(model_path), "dataset": str(dataset), "emulator": emu_report,
        "shift": shift, "settings": {"steps": steps, "lr": lr, "anchor": anchor,
                                     "emulator_epochs": emulator_epochs, "seed": seed,
                                     "adapt_samples": len(pool), "test_samples": len(te)},
        "supervised": {"clean_test_mae_ms": _mae(model, x_clean, label, s, rec_ms),
                       "shifted_test_mae_ms": _mae(model, x_shift, label, s, rec_ms),
                       "shifted_test_recon_mse": _recon(model, emu, x_shift, s)},
        "adapted": {"clean_test_mae_ms": _mae(adapted, x_clean, label, s, rec_ms),
                    "shifted_test_mae_ms": _mae(adapted, x_shift, label, s, rec_ms),
                    "shifted_test_recon_mse": _recon(adapted, emu, x_shift, s)},
        "adapt_loss_first_last": [losses[0], losses[-1]] if losses else None,
    }
    res["settings"]["emulator"] = dict(emulator_kw or {})
    res["gain_ms"] = (res["supervised"]["shifted_test_mae_ms"]
                      - res["adapted"]["shifted_test_mae_ms"])
    res["seconds"] = time.perf_counter() - t_start
    _save(out_dir, cfg.name, emu, adapted, ckpt, res)
    log.info("P-SSL on %s: shifted test MAE %.3f -> %.3f ms (clean %.3f -> %.3f)",
             dataset, res["supervised"]["shifted_test_mae_ms"],
             res["adapted"]["shifted_test_mae_ms"], res["supervised"]["clean_test_mae_ms"],
             res["adapted"]["clean_test_mae_ms"])
    return res


def _save(out_dir: str | Path, name: str, emu: Emulator, adapted: nn.Module,
          ckpt: dict[str, Any], res: dict[str, Any]) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": emu.state_dict(), "shape": list(emu.shape),
                "hidden": emu.net[0].out_features, "scale_ms": EMU_SCALE_MS,
                "report": res["emulator"]}, out_dir / "emulator.pt")
    payload = {k: v for k, v in ckpt.items() if k not in ("format", "ood")}
    payload.update({"state_dict": {k: v.cpu() for k, v in adapted.state_dict().items()},
                    "adaptation": {**res["settings"], "shift": res["shift"]},
                    "provenance": provenance({})})
    checkpoint.save(out_dir / f"{name}.adapted.pt", payload)
    write_json(out_dir / "adapt.json", res)
