"""Training as the paper: Adam (lr 1e-3), MSE, batch 32, best-on-validation checkpoint.

Outputs in ``out_dir``: ``{network}.pt`` (best validation loss; :mod:`checkpoint`),
``{network}.state.pt`` (everything needed to resume: model, optimiser, scheduler, random
generator, history), ``{network}.curves.csv`` and ``{network}.curves.png`` (loss per epoch).
Samples with a NaN label (a point that never activates) are left out of the loss.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from pipeline.device import pick_device
from pipeline.io import atomic_path, provenance
from pipeline.learn import checkpoint
from pipeline.learn.data import (
    LearnData,
    Normalisation,
    read_dataset,
    scale_ecg,
    shift_batch,
    targets,
)
from pipeline.learn.models import (
    ModelConfig,
    build_model,
    members_output,
    n_parameters,
    preset,
)

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {"epochs": 30, "batch_size": 32, "lr": 1e-3, "device": "auto",
                            "label": "paper", "shift_max_ms": None}


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the finite entries of ``target`` (pred may have a leading
    ensemble axis)."""
    target = target.expand_as(pred)
    ok = torch.isfinite(target)
    diff = torch.where(ok, pred - torch.nan_to_num(target), 0.0)
    return diff.pow(2).sum() / ok.sum().clamp(min=1)


def make_normalisation(data: LearnData, cfg: ModelConfig, label: str) -> Normalisation:
    """Normalisation from the training split (Vm extremes) and the model's label scale."""
    vm = data.vm[data.splits["train"]]
    return Normalisation(vm_min=float(vm.min()), vm_max=float(vm.max()),
                         label_scale_ms=cfg.label_scale_ms, label=label)


@torch.no_grad()
def predict_units(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 64,
                  device: torch.device | None = None) -> torch.Tensor:
    """Network outputs (network units) for scaled ECGs ``x`` (N, 12, T), in eval mode."""
    device = device or torch.device("cpu")
    model.eval()
    outs = [model(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0)


def _write_curves(out_dir: Path, network: str, history: list[dict[str, float]]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    csv_path = out_dir / f"{network}.curves.csv"
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    epochs = [h["epoch"] for h in history]
    ax.semilogy(epochs, [h["train_loss"] for h in history], "o-", label="training")
    ax.semilogy(epochs, [h["val_loss"] for h in history], "s-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (network units)")
    ax.set_title(f"Network {network}")
    ax.legend()
    fig.tight_layout()
    with atomic_path(out_dir / f"{network}.curves.png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def train(dataset: str | Path, network: str, out_dir: str | Path, *,
          settings: dict[str, Any] | None = None, seed: int = 0, resume: bool = False,
          overrides: dict[str, Any] | None = None, progress: bool = True,
          stop_after: int | None = None, train_fraction: float = 1.0,
          fit_ood: bool = True) -> Path:
    """Train preset ``network`` on ``dataset``; return the best checkpoint's path.

    Parameters
    ----------
    dataset
        Dataset file (DESIGN.md section 6).
    network
        A key of :data:`pipeline.learn.models.PRESETS`.
    out_dir
        Folder for ``{network}.pt`` and its companions.
    settings
        The ``learn`` config section (keys of :data:`DEFAULTS`; missing keys take those).
    seed
        Seeds initialisation, batch order and augmentation.
    resume
        Continue from ``{network}.state.pt`` when it exists (same result as an
        uninterrupted run).
    overrides
        ModelConfig fields to replace (e.g. a smaller ``width`` for tests).
    stop_after
        Stop after this many epochs in this call (a time-limited job; continue it later
        with ``resume=True``).
    train_fraction
        Train on this fraction (0, 1] of the training split (the learning curve): the first
        ``round(f N)`` of a permutation fixed by ``seed``, so smaller sets are subsets of
        larger ones. Validation is unchanged.
    fit_ood
        After training, fit the out-of-distribution score (:mod:`pipeline.learn.ood`) on
        the training and validation splits and, for an ensemble, the SD scale
        (:mod:`pipeline.learn.spread`) on the validation split; store both in the
        checkpoint.
    """
    cfg_train = {**DEFAULTS, **(settings or {})}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data, mcfg, norm, (x_tr, y_tr, x_va, y_va) = _prepare(
        dataset, network, cfg_train, overrides, train_fraction, seed)
    device = pick_device(cfg_train["device"])

    torch.manual_seed(seed)
    model = build_model(mcfg).to(device)
    n_par = n_parameters(model)
    epochs = int(cfg_train["epochs"])
    opt, sched = _optimiser(model, mcfg, cfg_train["lr"], epochs)
    gen = torch.Generator().manual_seed(seed + 1)
    state_path = out_dir / f"{network}.state.pt"
    best_path = out_dir / f"{network}.pt"
    fingerprint = _fingerprint(dataset, cfg_train, seed, mcfg, train_fraction)
    history, best, start = _resume(state_path if resume else None, fingerprint, model, opt,
                                   sched, gen, network)
    log.info("training network %s (%d parameters) on %s: %d train, %d val, device %s",
             network, n_par, dataset, len(x_tr), len(x_va), device)
    bs = int(cfg_train["batch_size"])
    end = epochs if stop_after is None else min(epochs, start + stop_after)
    for epoch in range(start, end):
        desc = f"{network} epoch {epoch + 1}/{epochs}"
        train_loss = _one_epoch(model, x_tr, y_tr, mcfg, bs, gen, opt, device, desc, progress)
        sched.step()
        row = _validate(model, x_va, y_va, mcfg, device, epoch + 1, train_loss,
                        opt.param_groups[0]["lr"])
        history.append(row)
        log.info("%s epoch %d: train %.4g val %.4g%s", network, epoch + 1, row["train_loss"],
                 row["val_loss"],
                 f" (val MAE {row['val_mae_ms']:.3f} ms)" if "val_mae_ms" in row else "")
        val_loss = row["val_loss"]
        if val_loss < best or not best_path.exists():
            best = min(best, val_loss)
            _save_best(best_path, model, mcfg, norm, cfg_train, seed, n_par, epoch + 1,
                       val_loss, dataset, data.point_names)
        _save_state(state_path, model, opt, sched, gen, history, best, epoch + 1, fingerprint)
        _write_curves(out_dir, network, history)
    log.info("best validation loss of %s: %.4g -> %s", network, best, best_path)
    if fit_ood and end == epochs:
        _fit_trust(best_path, data)
    return best_path


def _optimiser(model: torch.nn.Module, mcfg: ModelConfig, lr: float, epochs: int
               ) -> tuple[torch.optim.Optimizer, Any]:
    """Adam at ``lr`` and the preset's schedule (cosine to 0 over ``epochs``, or constant)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
             if mcfg.schedule == "cosine" else
             torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0))
    return opt, sched


def _fit_trust(best_path: Path, data: LearnData) -> None:
    """Store the OOD score and, for an ensemble, the SD scale in the best checkpoint."""
    from pipeline.learn.ood import attach_ood_data
    from pipeline.learn.spread import attach_sd_scale_data

    attach_ood_data(best_path, data)
    attach_sd_scale_data(best_path, data)


def _prepare(dataset: str | Path, network: str, cfg_train: dict[str, Any],
             overrides: dict[str, Any] | None, train_fraction: float, seed: int
             ) -> tuple[LearnData, ModelConfig, Normalisation, tuple[torch.Tensor, ...]]:
    """Dataset, model config, normalisation and (x_tr, y_tr, x_va, y_va) in network units.

    With ``train_fraction < 1`` the returned data's ``split/train`` is the subset.
    """
    data = read_dataset(dataset)
    model_over = dict(overrides or {})
    if cfg_train.get("shift_max_ms") is not None:
        model_over.setdefault("shift_max_ms", int(cfg_train["shift_max_ms"]))
    mcfg = preset(network, n_samples=data.n_samples, **model_over)
    norm = make_normalisation(data, mcfg, cfg_train["label"])
    x_all = torch.from_numpy(scale_ecg(data.ecg))
    y_all = torch.from_numpy(targets(data, mcfg.task, norm))
    tr_idx = subset(data.splits["train"], train_fraction, seed)
    if train_fraction != 1.0:
        data.splits["train"] = tr_idx               # the OOD score sees the same subset
    tr, va = torch.from_numpy(tr_idx), torch.from_numpy(data.splits["val"])
    return data, mcfg, norm, (x_all[tr], y_all[tr], x_all[va], y_all[va])


def _validate(model: torch.nn.Module, x_va: torch.Tensor, y_va: torch.Tensor,
              mcfg: ModelConfig, device: torch.device, epoch: int, train_loss: float,
              lr: float) -> dict[str, float]:
    """The epoch's history row: losses, learning rate and (activation) validation MAE (ms)."""
    pred = predict_units(model, x_va, device=device)
    row = {"epoch": epoch, "train_loss": train_loss, "val_loss": float(masked_mse(pred, y_va)),
           "lr": lr}
    if mcfg.task == "activation":
        err = (pred - y_va).abs() * mcfg.label_scale_ms
        row["val_mae_ms"] = float(err[torch.isfinite(err)].mean())
    return row


def _save_best(path: Path, model: torch.nn.Module, mcfg: ModelConfig, norm: Normalisation,
               cfg_train: dict[str, Any], seed: int, n_par: int, epoch: int, val_loss: float,
               dataset: str | Path, point_names: list[str]) -> None:
    """Write the best-so-far checkpoint (layout: :mod:`pipeline.learn.checkpoint`)."""
    checkpoint.save(path, {
        "model_config": mcfg.to_dict(),
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "normalisation": norm.to_dict(), "train_config": cfg_train, "seed": seed,
        "n_parameters": n_par, "epoch": epoch, "val_loss": val_loss,
        "dataset": str(dataset), "point_names": list(point_names),
        "provenance": provenance(cfg_train)})


def _fingerprint(dataset: str | Path, cfg_train: dict[str, Any], seed: int, mcfg: ModelConfig,
                 train_fraction: float) -> dict[str, Any]:
    """What a resume state must match: dataset file, settings, seed, model (and fraction)."""
    stat = Path(dataset).stat()
    fingerprint = {"dataset": str(Path(dataset).resolve()), "size": stat.st_size,
                   "mtime_ns": stat.st_mtime_ns, "settings": cfg_train, "seed": seed,
                   "model": mcfg.to_dict()}
    if train_fraction != 1.0:
        fingerprint["train_fraction"] = train_fraction
    return fingerprint


def _save_state(path: Path, model: torch.nn.Module, opt: Any, sched: Any,
                gen: torch.Generator, history: list[dict[str, float]], best: float,
                epoch: int, fingerprint: dict[str, Any]) -> None:
    """Everything a resumed run needs, written atomically."""
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(), "history": history,
                    "best": best, "epoch": epoch, "fingerprint": fingerprint}, tmp)


def _resume(state_path: Path | None, fingerprint: dict[str, Any], model: torch.nn.Module,
            opt: Any, sched: Any, gen: torch.Generator, network: str
            ) -> tuple[list[dict[str, float]], float, int]:
    """Load a resume state written for the same ``fingerprint``: (history, best, epoch)."""
    state = (torch.load(state_path, map_location="cpu", weights_only=True)
             if state_path is not None and state_path.exists() else None)
    if state is not None and state.get("fingerprint") != fingerprint:
        log.warning("%s was written for another dataset, config or seed: starting afresh",
                    state_path)
        state = None
    if state is None:
        return [], math.inf, 0
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    gen.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    history, best, start = list(state["history"]), float(state["best"]), int(state["epoch"])
    log.info("resuming %s from epoch %d (best val loss %.4g)", network, start, best)
    return history, best, start


def _one_epoch(model: torch.nn.Module, x_tr: torch.Tensor, y_tr: torch.Tensor,
               mcfg: ModelConfig, bs: int, gen: torch.Generator, opt: Any,
               device: torch.device, desc: str, progress: bool) -> float:
    """One pass over the training set in batches of ``bs``; the mean training loss."""
    model.train()
    perm = torch.randperm(len(x_tr), generator=gen)
    total, count = 0.0, 0
    bar = tqdm(range(0, len(perm), bs), desc=desc, disable=not progress, leave=False)
    for i in bar:
        idx = perm[i:i + bs]
        xb, yb = x_tr[idx], y_tr[idx]
        if mcfg.shift_max_ms > 0:
            shifts = torch.randint(0, mcfg.shift_max_ms + 1, (len(idx),), generator=gen)
            xb, yb = shift_batch(xb, yb, shifts, mcfg.task, mcfg.label_scale_ms)
        loss = masked_mse(members_output(model, xb.to(device)), yb.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(idx)
        count += len(idx)
        bar.set_postfix(loss=f"{float(loss.detach()):.4g}")
    return total / max(count, 1)


def subset(train_idx: Any, fraction: float, seed: int) -> Any:
    """The first ``round(fraction N)`` (at least 1) of a seeded permutation of ``train_idx``,
    sorted; nested across fractions for one seed.

    Raises
    ------
    ValueError
        For a fraction outside (0, 1].
    """
    import numpy as np

    if not 0 < fraction <= 1:
        raise ValueError(f"train_fraction {fraction} outside (0, 1]")
    if fraction == 1.0:
        return train_idx
    perm = np.random.default_rng(seed + 12345).permutation(len(train_idx))
    keep = perm[:max(1, int(round(fraction * len(train_idx))))]
    return np.sort(np.asarray(train_idx)[keep])

