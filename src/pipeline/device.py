"""The compute device: one rule for ``"auto"``, ``"cpu"`` and ``"cuda"``."""

from __future__ import annotations

from typing import Any

from pipeline.errors import InputError

DEVICES = ("auto", "cpu", "cuda")


def pick_device(name: str = "auto") -> Any:
    """The ``torch.device`` for a configured name.

    ``auto`` is CUDA when a CUDA device is available, else the CPU; ``cuda`` without one
    is an :class:`~pipeline.errors.InputError` (asked for, not silently replaced).
    """
    import torch

    if str(name).split(":")[0] not in DEVICES:
        raise InputError(f"device {name!r}: expected one of {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} was asked for but no CUDA device is available")
    return torch.device(name)
