"""Small fully connected networks and their checkpoints (state dict + arguments, never a pickled module)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.errors import InputError
from pipeline.io import atomic_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MLPConfig:
    """Architecture of an :class:`MLP`."""

    n_in: int
    n_out: int
    hidden: int = 128
    layers: int = 3
    sigmoid_out: bool = False


class MLP(nn.Module):
    """``layers`` hidden layers of width ``hidden`` with SiLU (smooth, for gradients through
    the network), a linear output, optionally squashed to (0, 1) by a sigmoid."""

    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        self.cfg = cfg
        mods: list[nn.Module] = []
        width = cfg.n_in
        for _ in range(cfg.layers):
            mods += [nn.Linear(width, cfg.hidden), nn.SiLU()]
            width = cfg.hidden
        mods.append(nn.Linear(width, cfg.n_out))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_in) -> (B, n_out)."""
        y = self.net(x)
        return torch.sigmoid(y) if self.cfg.sigmoid_out else y


def minibatches(n: int, batch: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Shuffled index batches covering range(n) once."""
    order = torch.randperm(n, generator=gen)
    for start in range(0, n, batch):
        yield order[start:start + batch]


def fit(model: nn.Module, n: int, loss_fn: Callable[[torch.Tensor], torch.Tensor],
        val_fn: Callable[[], float], epochs: int, batch: int, lr: float, gen: torch.Generator,
        desc: str) -> dict[str, Any]:
    """Adam with cosine decay; keeps the weights of the best validation epoch.

    Parameters
    ----------
    loss_fn
        Minibatch indices -> scalar training loss.
    val_fn
        () -> validation loss (evaluated under no_grad by the caller's function).

    Returns
    -------
    dict
        ``best_val``, ``best_epoch``, ``history`` (val loss every epoch).
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * math.ceil(n / batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    best, best_epoch, best_state = math.inf, -1, None
    history: list[float] = []
    for epoch in range(epochs):
        model.train()
        for idx in minibatches(n, batch, gen):
            opt.zero_grad()
            loss = loss_fn(idx)
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            val = float(val_fn())
        history.append(val)
        if val < best:
            best, best_epoch = val, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if epoch % max(1, epochs // 10) == 0 or epoch == epochs - 1:
            log.info("%s epoch %d/%d: val loss %.4g (best %.4g @ %d)", desc, epoch + 1, epochs, val, best, best_epoch + 1)
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"best_val": best, "best_epoch": best_epoch + 1, "history": history}


def save(path: str | Path, model: MLP, **extra: Any) -> None:
    """Save the state dict, the architecture and ``extra`` (normalisation, config) atomically."""
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(), "mlp": asdict(model.cfg), **extra}, tmp)


def load(path: str | Path) -> tuple[MLP, dict[str, Any]]:
    """Load a checkpoint written by :func:`save`; returns the model (eval mode) and the dict."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"checkpoint {path} does not exist")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = MLP(MLPConfig(**ckpt["mlp"]))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt
