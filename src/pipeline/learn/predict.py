"""``pipeline predict``: a patient's 12-lead ECG -> activation times at the 75 points.

Inputs: a NumPy ``.npy`` array or a ``.csv`` table (12 leads in the order ``I, II, III, aVR,
aVL, aVF, V1..V6``, as rows or columns; a CSV may carry the lead names as its header), or a
WFDB record (``.hea`` + signal file, read with ``wfdb``; leads matched by name, in any order,
extra signals ignored). The record is resampled to 1 kHz (polyphase, ``scipy``) and cut to
its first beat: T samples (the model's length, 500) starting ``pre_ms`` before the QRS
onset, the first time the summed absolute slope of the leads exceeds 20 % of its maximum.
A NumPy/CSV record with exactly T samples is taken as one beat at 1 kHz, as the dataset's
records are; any other length needs ``--fs``.

Outputs: ``activation.csv`` (point, activation_ms[, sd_ms]), ``activation.json`` and
``bullseye.png``; an ensemble adds the members' standard deviation per point.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.errors import InputError
from pipeline.io import atomic_path, write_json
from pipeline.learn import figures
from pipeline.learn.checkpoint import load_model
from pipeline.learn.data import LEAD_NAMES, scale_ecg
from pipeline.learn.evaluate import outputs_to_predictions
from pipeline.learn.models import members_output

log = logging.getLogger(__name__)

FS_HZ = 1000.0
ONSET_FRACTION = 0.2


def _check_names(names: list[str], source: Path) -> list[int]:
    """Indices of the 12 leads within ``names`` (case-insensitive)."""
    lower = [n.strip().lower() for n in names]
    missing = [lead for lead in LEAD_NAMES if lead.lower() not in lower]
    if missing:
        raise InputError(f"{source}: leads {missing} not found among {names}; expected the "
                         f"12 leads {', '.join(LEAD_NAMES)}")
    return [lower.index(lead.lower()) for lead in LEAD_NAMES]


def read_ecg(path: str | Path, fs: float | None = None,
             n_samples: int = 500) -> tuple[np.ndarray, float | None]:
    """Read a record as (12, n) in the standard lead order and its sampling rate (Hz).

    The rate is None for a NumPy/CSV record without ``fs`` (decided in :func:`prepare`).

    Raises
    ------
    InputError
        Missing file, unknown format, wrong lead count or names or order.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in ("", ".hea", ".dat") or (path.with_suffix(".hea").exists()
                                          and suffix not in (".npy", ".csv")):
        return _read_wfdb(path, fs)
    if not path.exists():
        raise InputError(f"ECG file {path} does not exist")
    if suffix == ".npy":
        arr = np.load(path, allow_pickle=False)
        names = None
    elif suffix == ".csv":
        arr, names = _read_csv(path)
    else:
        raise InputError(f"{path}: unknown ECG format {suffix!r}; expected .npy, .csv or a "
                         "WFDB record (.hea)")
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2 or 12 not in arr.shape:
        raise InputError(f"{path}: ECG of shape {arr.shape}; expected 12 leads "
                         f"({', '.join(LEAD_NAMES)}) x samples")
    if names is None and arr.shape[0] != 12:
        arr = arr.T                                  # samples x leads -> leads x samples
    if names is not None:
        if len(names) != 12:
            raise InputError(f"{path}: {len(names)} named columns {names}; expected 12 leads")
        order = _check_names(names, path)
        if order != list(range(12)):
            raise InputError(f"{path}: leads in the order {names}; expected "
                             f"{', '.join(LEAD_NAMES)}")
    return arr, fs


def _read_csv(path: Path) -> tuple[np.ndarray, list[str] | None]:
    first = path.read_text().splitlines()[0] if path.stat().st_size else ""
    cells = [c.strip() for c in first.split(",")]
    try:
        [float(c) for c in cells]
        header = None
    except ValueError:
        header = cells
    arr = np.genfromtxt(path, delimiter=",", skip_header=1 if header else 0, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :] if header is None else arr[:, None]
    if header is not None:
        return arr.T, header   # columns are leads
    return arr, None


def _read_wfdb(path: Path, fs: float | None) -> tuple[np.ndarray, float | None]:
    import wfdb

    base = path.with_suffix("") if path.suffix.lower() in (".hea", ".dat") else path
    if not base.with_suffix(".hea").exists():
        raise InputError(f"WFDB header {base.with_suffix('.hea')} does not exist")
    try:
        rec = wfdb.rdrecord(str(base))
    except Exception as exc:  # wfdb raises many types for broken records
        raise InputError(f"cannot read WFDB record {base}: {exc}") from exc
    if rec.p_signal is None:
        raise InputError(f"WFDB record {base} has no physical signal")
    names = list(rec.sig_name)
    if len(names) < 12:
        raise InputError(f"WFDB record {base}: {len(names)} signals {names}; expected 12 leads "
                         f"{', '.join(LEAD_NAMES)}")
    order = _check_names(names, base)
    rate = fs if fs is not None else rec.fs
    if rate is None or not np.isfinite(rate) or rate <= 0:
        raise InputError(f"WFDB record {base}: sampling rate unknown ({rec.fs!r}); pass --fs")
    return np.asarray(rec.p_signal, dtype=np.float64).T[order], float(rate)


def qrs_onset(ecg: np.ndarray) -> int:
    """Sample index of the first QRS onset of (12, n) at 1 kHz."""
    slope = np.abs(np.diff(ecg, axis=1)).sum(axis=0)
    return int(np.argmax(slope > ONSET_FRACTION * slope.max()))


def prepare(ecg: np.ndarray, fs: float | None, n_samples: int = 500, pre_ms: float = 10.0,
            source: str = "ECG") -> np.ndarray:
    """Check, resample to 1 kHz and cut one beat of ``n_samples``: returns (12, n_samples).

    Raises
    ------
    InputError
        NaN/inf values, unknown sampling rate, or a record shorter than one window.
    """
    if not np.isfinite(ecg).all():
        bad = np.argwhere(~np.isfinite(ecg))[0]
        raise InputError(f"{source}: NaN or inf in lead {LEAD_NAMES[bad[0]]} at sample {bad[1]}")
    if fs is None:
        if ecg.shape[1] == n_samples:
            return ecg.astype(np.float32)
        raise InputError(f"{source}: sampling rate unknown for a record of {ecg.shape[1]} "
                         f"samples; pass --fs (or give exactly {n_samples} samples at 1 kHz)")
    if not np.isfinite(fs) or fs <= 0:
        raise InputError(f"{source}: invalid sampling rate {fs} Hz")
    if fs != FS_HZ:
        from scipy.signal import resample_poly
        frac = Fraction(FS_HZ / fs).limit_denominator(1000)
        ecg = resample_poly(ecg, frac.numerator, frac.denominator, axis=1)
        log.info("resampled %s from %g Hz to 1 kHz (x %s)", source, fs, frac)
    if ecg.shape[1] < n_samples:
        raise InputError(f"{source}: {ecg.shape[1]} ms at 1 kHz is too short; the network "
                         f"needs {n_samples} ms")
    if ecg.shape[1] == n_samples:
        return ecg.astype(np.float32)
    start = max(0, qrs_onset(ecg) - int(round(pre_ms)))
    start = min(start, ecg.shape[1] - n_samples)
    log.info("%s: beat window %d..%d ms", source, start, start + n_samples)
    return ecg[:, start:start + n_samples].astype(np.float32)


def predict_file(model_path: str | Path, ecg_path: str | Path, out_dir: str | Path, *,
                 fs: float | None = None, pre_ms: float = 10.0) -> dict[str, Any]:
    """Predict activation times for one ECG file and write CSV, JSON and a bull's-eye PNG.

    Returns
    -------
    dict
        ``point_names``, ``activation_ms`` (75), ``sd_ms`` (75, ensembles) and inputs.
    """
    model, cfg, norm, ckpt = load_model(model_path)
    ecg, rate = read_ecg(ecg_path, fs, cfg.n_samples)
    beat = prepare(ecg, rate, cfg.n_samples, pre_ms, str(ecg_path))
    x = torch.from_numpy(scale_ecg(beat)[None])
    with torch.no_grad():
        members = members_output(model, x).numpy()          # (K, 1, ...)
    preds = [outputs_to_predictions(m, cfg.task, norm)["act_paper_ms"][0] for m in members]
    act = np.mean(preds, axis=0)
    names = _point_names(ckpt)
    result: dict[str, Any] = {"model": str(model_path), "network": cfg.name,
                              "ecg": str(ecg_path), "point_names": names,
                              "activation_ms": [_num(v) for v in act]}
    sd = np.std(preds, axis=0) if len(preds) > 1 else None
    if sd is not None:
        result["sd_ms"] = [_num(v) for v in sd]
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "activation.csv") as tmp, open(tmp, "w") as fh:
        fh.write("point,activation_ms" + (",sd_ms" if sd is not None else "") + "\n")
        for i, n in enumerate(names):
            extra = f",{sd[i]:.3f}" if sd is not None else ""
            fh.write(f"{n},{act[i]:.3f}{extra}\n")
    write_json(out_dir / "activation.json", result)
    figures.plot_bullseyes({f"Network {cfg.name}": act}, out_dir / "bullseye.png")
    log.info("predicted activation for %s: %.1f..%.1f ms -> %s", ecg_path, np.nanmin(act),
             np.nanmax(act), out_dir)
    return result


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _point_names(ckpt: dict[str, Any]) -> list[str]:
    names = ckpt.get("point_names")
    return list(names) if names else [f"P{i:02d}" for i in range(75)]
