"""Model checkpoints: state dict + model arguments + normalisation + config, never a pickled
module. Written atomically; read with ``torch.load(weights_only=True)``.

Layout of ``{network}.pt`` (a dict): ``format``, ``model_config`` (:class:`ModelConfig` as a
dict), ``state_dict``, ``normalisation`` (:class:`Normalisation` as a dict), ``train_config``
(the resolved ``learn`` config section), ``seed``, ``n_parameters``, ``epoch``,
``val_loss``, ``dataset`` (path), ``provenance``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.errors import InputError
from pipeline.io import atomic_path
from pipeline.learn.data import Normalisation
from pipeline.learn.models import ModelConfig, build_model

log = logging.getLogger(__name__)

FORMAT = "pipeline.learn.checkpoint/1"


def save(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (with ``format`` set) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)


def read(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint dict (tensors on CPU).

    Raises
    ------
    InputError
        When the file is missing, unreadable, or not a checkpoint of this package.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"model checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign files
        raise InputError(f"cannot read model checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise InputError(f"{path} is not a pipeline model checkpoint (format {FORMAT})")
    for key in ("model_config", "state_dict", "normalisation"):
        if key not in ckpt:
            raise InputError(f"model checkpoint {path}: key '{key}' is missing")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu"
               ) -> tuple[nn.Module, ModelConfig, Normalisation, dict[str, Any]]:
    """Rebuild the network of a checkpoint in eval mode.

    Returns
    -------
    tuple
        ``(model, model_config, normalisation, checkpoint_dict)``.
    """
    ckpt = read(path)
    cfg = ModelConfig.from_dict(dict(ckpt["model_config"]))
    model = build_model(cfg)
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()
    norm = Normalisation.from_dict(dict(ckpt["normalisation"]))
    return model, cfg, norm, ckpt
