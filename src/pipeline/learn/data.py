"""Reading the dataset file (DESIGN.md section 6) and the paper's scalings and labels.

- ECG: every lead of every sample is divided by its own range, so that max - min = 1
  (the authors' ``normalized_unit``; no offset is removed).
- Vm: ``(Vm - vm_min) / (vm_max - vm_min)`` with the training split's extremes, so the
  training Vm lies in [0, 1].
- Activation label of the paper: the time of the first 1-ms sample with Vm > 0 mV
  (``argmax(Vm > 0)`` in the authors' code); NaN here where Vm never exceeds 0.
- Augmentation (Network I): the ECG is delayed by s ~ U{0..shift_max} samples, zeros fill the
  first s samples, and the activation labels move by s ms.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from pipeline.errors import InputError
from pipeline.signals import activation
from pipeline.signals.leads import LEAD_NAMES

log = logging.getLogger(__name__)

N_POINTS = 75
SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass
class LearnData:
    """The arrays of a dataset file that learning uses.

    Attributes
    ----------
    ecg
        float32 (N, 12, T), mV.
    vm
        float32 (N, 75, T), mV.
    activation_ms
        float32 (N, 75), interpolated upward 0-mV crossing (NaN if never).
    splits
        ``train``, ``val``, ``test`` -> int64 sample indices.
    point_names
        The 75 recording point names.
    dt_ms
        Sampling interval (1.0).
    path
        The file read.
    anatomy
        Heart name per sample (``params/anatomy``), when present.
    """

    ecg: np.ndarray
    vm: np.ndarray
    activation_ms: np.ndarray
    splits: dict[str, np.ndarray]
    point_names: list[str]
    dt_ms: float
    path: str
    anatomy: list[str] | None = None

    @property
    def n_samples(self) -> int:
        """T, samples per record."""
        return int(self.ecg.shape[-1])


def _names(attr: Any) -> list[str]:
    return [a.decode() if isinstance(a, bytes) else str(a) for a in np.atleast_1d(attr)]


def read_dataset(path: str | Path) -> LearnData:
    """Read and check a dataset file.

    Raises
    ------
    InputError
        When the file is missing, a field is absent or mis-shaped, the leads are not
        ``I, II, III, aVR, aVL, aVF, V1..V6``, or the splits overlap or leave the range.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"dataset file {path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"cannot open dataset {path} as HDF5: {exc}") from exc
    with f:
        for name in ("ecg", "vm", "activation_ms"):
            if name not in f:
                raise InputError(f"dataset {path}: field '{name}' is missing (DESIGN.md section 6)")
        ecg = np.asarray(f["ecg"][...], dtype=np.float32)
        vm = np.asarray(f["vm"][...], dtype=np.float32)
        act = np.asarray(f["activation_ms"][...], dtype=np.float32)
        leads = _names(f.attrs.get("lead_names", LEAD_NAMES))
        points = _names(f.attrs.get("point_names", [f"P{i:02d}" for i in range(N_POINTS)]))
        dt = float(f.attrs.get("dt_ms", 1.0))
        anatomy = _names(f["params/anatomy"][...]) if "params/anatomy" in f else None
        splits = {}
        for s in SPLITS:
            key = f"split/{s}"
            if key not in f:
                raise InputError(f"dataset {path}: field '{key}' is missing (DESIGN.md section 6)")
            splits[s] = np.asarray(f[key][...], dtype=np.int64)
    n = ecg.shape[0]
    if ecg.ndim != 3 or ecg.shape[1] != 12:
        raise InputError(f"dataset {path}: 'ecg' has shape {ecg.shape}, expected (N, 12, T)")
    if vm.shape != (n, N_POINTS, ecg.shape[2]):
        raise InputError(f"dataset {path}: 'vm' has shape {vm.shape}, "
                         f"expected {(n, N_POINTS, ecg.shape[2])}")
    if act.shape != (n, N_POINTS):
        raise InputError(f"dataset {path}: 'activation_ms' has shape {act.shape}, "
                         f"expected {(n, N_POINTS)}")
    if tuple(leads) != LEAD_NAMES:
        raise InputError(f"dataset {path}: lead_names {leads}, expected {list(LEAD_NAMES)}")
    if abs(dt - 1.0) > 1e-9:
        raise InputError(f"dataset {path}: dt_ms = {dt}, expected 1.0")
    seen: set[int] = set()
    for s, idx in splits.items():
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise InputError(f"dataset {path}: split/{s} has indices outside 0..{n - 1}")
        if seen & set(idx.tolist()):
            raise InputError(f"dataset {path}: split/{s} overlaps another split")
        seen |= set(idx.tolist())
    if splits["train"].size == 0 or splits["val"].size == 0:
        raise InputError(f"dataset {path}: split/train and split/val must not be empty")
    if not np.isfinite(ecg).all():
        raise InputError(f"dataset {path}: 'ecg' holds NaN or inf")
    log.info("read %s: %d samples (train %d, val %d, test %d), T = %d", path, n,
             splits["train"].size, splits["val"].size, splits["test"].size, ecg.shape[2])
    return LearnData(ecg=ecg, vm=vm, activation_ms=act, splits=splits, point_names=points,
                     dt_ms=dt, path=str(path), anatomy=anatomy)


def scale_ecg(ecg: np.ndarray) -> np.ndarray:
    """Divide every lead of every sample by its range (max - min over time).

    Parameters
    ----------
    ecg
        (..., 12, T) in mV.

    Returns
    -------
    numpy.ndarray
        float32, same shape, each lead with max - min = 1 (a flat lead stays as it is).
    """
    ecg = np.asarray(ecg, dtype=np.float32)
    rng = ecg.max(axis=-1, keepdims=True) - ecg.min(axis=-1, keepdims=True)
    return ecg / np.where(rng > 0, rng, 1.0).astype(np.float32)


def paper_activation(vm: np.ndarray, dt_ms: float = 1.0) -> np.ndarray:
    """The paper's label: time (ms) of the first sample with Vm > 0 mV; NaN if never.

    The same definition as the simulator's measurements
    (:func:`pipeline.signals.activation.activation_labels`).

    Parameters
    ----------
    vm
        (..., T) voltages in mV.
    """
    return activation.activation_labels(np.asarray(vm), dt_ms).astype(np.float32)


def crossing_activation(vm: np.ndarray, dt_ms: float = 1.0, level: float = 0.0) -> np.ndarray:
    """First upward crossing of ``level`` (ms), linearly interpolated; NaN if never.

    :func:`pipeline.signals.activation.activation_times`, as stored in the dataset.

    Parameters
    ----------
    vm
        (..., T) voltages in mV.
    """
    return activation.activation_times(np.asarray(vm), dt_ms,
                                       threshold_mV=level).astype(np.float32)


def sustained_activation(vm: np.ndarray, dt_ms: float = 1.0,
                         interpolate: bool = False) -> np.ndarray:
    """First 0-mV crossing (ms) that Vm holds above -40 mV for 50 ms; NaN if none.

    :func:`pipeline.signals.activation.sustained_activation`: a predicted Vm's brief bump
    above 0 mV before its upstroke does not count. ``interpolate`` False gives the first
    sample above 0 mV (the paper's way), True the interpolated crossing.

    Parameters
    ----------
    vm
        (..., T) voltages in mV.
    """
    return activation.sustained_activation(np.asarray(vm), dt_ms,
                                           interpolate=interpolate).astype(np.float32)


def apd90(vm: np.ndarray, dt_ms: float = 1.0) -> np.ndarray:
    """Action potential duration at 90 % repolarisation (ms); NaN where undefined.

    :func:`pipeline.signals.activation.apd90`, the definition of the dataset's
    ``apd90_ms``, so that predicted and stored APDs are measured alike.

    Parameters
    ----------
    vm
        (..., T) voltages in mV.
    """
    return activation.apd90(np.asarray(vm), dt_ms)


@dataclass
class Normalisation:
    """Constants that turn data into network units and back (stored in checkpoints).

    Attributes
    ----------
    ecg
        ECG scaling, ``lead_range`` (per sample and lead, max - min = 1).
    vm_min, vm_max
        mV; Vm_unit = (Vm - vm_min) / (vm_max - vm_min).
    label_scale_ms
        Activation targets are t / label_scale_ms.
    label
        ``paper`` (first sample with Vm > 0) or ``interpolated`` (``activation_ms``).
    """

    ecg: str = "lead_range"
    vm_min: float = -85.5
    vm_max: float = 50.0
    label_scale_ms: float = 1.0
    label: str = "paper"

    def vm_to_unit(self, vm: np.ndarray) -> np.ndarray:
        return ((vm - self.vm_min) / (self.vm_max - self.vm_min)).astype(np.float32)

    def vm_from_unit(self, u: np.ndarray) -> np.ndarray:
        return (u * (self.vm_max - self.vm_min) + self.vm_min).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Normalisation:
        return cls(**value)


def activation_labels(data: LearnData, label: str) -> np.ndarray:
    """Activation labels (N, 75) in ms: ``paper`` from vm, or ``interpolated``."""
    if label == "paper":
        return paper_activation(data.vm, data.dt_ms)
    if label == "interpolated":
        return data.activation_ms.astype(np.float32)
    raise ValueError(f"unknown label {label!r}; expected 'paper' or 'interpolated'")


def targets(data: LearnData, task: str, norm: Normalisation) -> np.ndarray:
    """Network targets in network units: (N, 75) activation / label_scale or (N, 75, T) Vm."""
    if task == "activation":
        return activation_labels(data, norm.label) / np.float32(norm.label_scale_ms)
    return norm.vm_to_unit(data.vm)


def shift_batch(x: torch.Tensor, y: torch.Tensor, shifts: torch.Tensor, task: str,
                label_scale_ms: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Delay each ECG by ``shifts`` samples (zeros in front) and move its labels alike.

    Parameters
    ----------
    x
        (B, 12, T) scaled ECG.
    y
        (B, 75) activation targets (in units of ``label_scale_ms``) or (B, 75, T) Vm
        (delayed too, the first value repeated in front).
    shifts
        (B,) integer delays in samples (1 ms each).
    """
    t = torch.arange(x.shape[-1], device=x.device)
    src = t[None, :] - shifts[:, None]                          # (B, T)
    valid = (src >= 0)[:, None, :]
    idx = src.clamp(min=0)[:, None, :]
    xs = torch.where(valid, torch.gather(x, 2, idx.expand(-1, x.shape[1], -1)), 0.0)
    if task == "activation":
        ys = y + shifts[:, None].to(y.dtype) / label_scale_ms
    else:
        ys = torch.gather(y, 2, idx.expand(-1, y.shape[1], -1))
    return xs, ys
