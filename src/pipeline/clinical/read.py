"""Reading a real 12-lead ECG recording into the canonical lead order, in mV.

Formats (chosen by the file name):

- WFDB: a ``.hea`` header with its ``.dat`` signal file, or with a MATLAB v4 ``.mat``
  file as the PhysioNet/CinC challenges ship them; the path may be given with or
  without an extension (``rec``, ``rec.hea``, ``rec.dat``, ``rec.mat``). Read with
  :func:`wfdb.rdrecord`; the sampling rate and the units come from the header.
- CSV: a header row of lead names, one column per lead; the sampling rate is ``fs`` or
  comes from a time column (``t_ms``/``time_ms`` in ms, ``time``/``t_s``/``time_s`` in s).
- NumPy ``.npy``: ``(12, T)`` or ``(T, 12)`` in the canonical lead order; ``fs`` required.

Lead names are matched case-insensitively, ignoring spaces, ``_``, ``-`` and a leading
``lead`` (``AVR``, ``aVR``, ``avr``, ``Lead II``, ``v1`` ...). Only the twelve standard
leads are accepted (an unknown name such as ``MLII`` is an error). Leads I, II (or any two
of I, II, III) and V1..V6 must be present; the other limb leads are derived when missing
(Einthoven: III = II - I; Goldberger: aVR = -(I + II) / 2, aVL = I - II / 2,
aVF = II - I / 2), and the derivation is logged and recorded in :attr:`Recording.derived`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import InputError
from pipeline.signals.leads import LEAD_NAMES

log = logging.getLogger(__name__)

#: Units accepted for the ``unit`` argument and in WFDB headers -> factor to mV.
UNIT_TO_MV: dict[str, float] = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}
#: Largest plausible |amplitude| of an ECG in mV (above it the unit is probably wrong).
MAX_PLAUSIBLE_MV = 30.0
#: CSV time columns -> factor to seconds.
TIME_COLUMNS: dict[str, float] = {"t_ms": 1e-3, "time_ms": 1e-3, "time": 1.0, "t_s": 1.0,
                                  "time_s": 1.0}
_CANONICAL = {name.lower(): name for name in LEAD_NAMES}
_INDEPENDENT = ("V1", "V2", "V3", "V4", "V5", "V6")


@dataclass(frozen=True, eq=False)
class Recording:
    """A 12-lead recording in the canonical lead order.

    Attributes
    ----------
    signals
        float64 ``(12, T)`` in mV, rows in :data:`pipeline.signals.leads.LEAD_NAMES` order
        (``I, II, III, aVR, aVL, aVF, V1..V6``); sample ``n`` at time ``n / fs`` s.
    fs
        Sampling rate (Hz).
    source
        The file read (or a description).
    original_names
        The signal names as they appear in the file, in the file's order.
    derived
        The leads that were not in the file and were computed from I and II.
    """

    signals: np.ndarray
    fs: float
    source: str
    original_names: tuple[str, ...]
    derived: tuple[str, ...] = ()

    @property
    def n_samples(self) -> int:
        """T, samples per lead."""
        return int(self.signals.shape[1])

    @property
    def duration_s(self) -> float:
        """Length of the recording (s)."""
        return self.n_samples / self.fs


def canonical_lead(name: str) -> str | None:
    """The canonical spelling of a lead name (``'AVR'`` -> ``'aVR'``), or None if unknown."""
    key = name.strip().lower().replace(" ", "").replace("_", "").replace("-", "")
    if key.startswith("lead") and len(key) > 4:
        key = key[4:]
    return _CANONICAL.get(key)


def unit_factor(unit: str, source: str) -> float:
    """Factor that converts ``unit`` (``'mV'``, ``'uV'``, ``'V'``) to mV."""
    factor = UNIT_TO_MV.get(unit.strip().lower())
    if factor is None:
        raise InputError(f"{source}: unknown unit {unit!r}; expected one of 'mV', 'uV', 'V'")
    return factor


def assemble_leads(columns: np.ndarray, names: Sequence[str], fs: float, source: str,
                   factor: float = 1.0) -> Recording:
    """Build a :class:`Recording` from named signals in any order.

    Parameters
    ----------
    columns
        ``(n_signals, T)`` in the file's units.
    names
        The ``n_signals`` names as in the file.
    fs
        Sampling rate (Hz).
    source
        File name for messages.
    factor
        Multiplies the values to give mV.

    Raises
    ------
    InputError
        Unknown or duplicated lead names, missing independent leads, non-finite values,
        implausible amplitudes (wrong unit), an invalid sampling rate.
    """
    columns = np.asarray(columns, dtype=np.float64)
    names = [str(n) for n in names]
    if columns.ndim != 2 or columns.shape[0] != len(names):
        raise InputError(f"{source}: {len(names)} lead names for signals of shape {columns.shape}")
    if not np.isfinite(fs) or fs <= 0:
        raise InputError(f"{source}: invalid sampling rate {fs} Hz")
    canon = [canonical_lead(n) for n in names]
    unknown = [n for n, c in zip(names, canon) if c is None]
    if unknown:
        raise InputError(f"{source}: unknown lead name(s) {unknown}; expected the 12 standard "
                         f"leads {', '.join(LEAD_NAMES)} (any case)")
    dup = sorted({c for c in canon if canon.count(c) > 1})
    if dup:
        raise InputError(f"{source}: lead(s) {dup} appear more than once in {names}")
    have = {c: columns[i] * factor for i, c in enumerate(canon)}
    missing_v = [v for v in _INDEPENDENT if v not in have]
    limb = [lead for lead in ("I", "II", "III") if lead in have]
    if missing_v or len(limb) < 2:
        need = missing_v + ([] if len(limb) >= 2 else
                            [f"two of I, II, III (found {limb or 'none'})"])
        raise InputError(f"{source}: missing leads {need}; the 8 independent leads I, II, V1..V6 "
                         f"are needed (III, aVR, aVL, aVF can be derived); file has {names}")
    derived = []
    if "I" not in have:
        have["I"] = have["II"] - have["III"]
        derived.append("I")
    if "II" not in have:
        have["II"] = have["I"] + have["III"]
        derived.append("II")
    lead_i, lead_ii = have["I"], have["II"]
    formulas = {"III": lead_ii - lead_i, "aVR": -(lead_i + lead_ii) / 2,
                "aVL": lead_i - lead_ii / 2, "aVF": lead_ii - lead_i / 2}
    for lead, value in formulas.items():
        if lead not in have:
            have[lead] = value
            derived.append(lead)
    if derived:
        log.info("%s: derived lead(s) %s from I and II (Einthoven/Goldberger)", source,
                 ", ".join(derived))
    signals = np.stack([have[lead] for lead in LEAD_NAMES])
    if not np.isfinite(signals).all():
        lead, sample = np.argwhere(~np.isfinite(signals))[0]
        raise InputError(f"{source}: NaN or inf in lead {LEAD_NAMES[lead]} at sample {sample}")
    peak = float(np.percentile(np.abs(signals - np.median(signals, axis=1, keepdims=True)),
                               99.9)) if signals.size else 0.0
    if peak > MAX_PLAUSIBLE_MV:
        raise InputError(f"{source}: amplitudes up to {peak:.4g} mV are implausible for an ECG; "
                         "is the unit wrong (pass unit='uV')?")
    _check_einthoven(have, names, canon, source)
    return Recording(signals=signals, fs=float(fs), source=source, original_names=tuple(names),
                     derived=tuple(derived))


def _check_einthoven(have: dict[str, np.ndarray], names: list[str], canon: list[str | None],
                     source: str) -> None:
    """Log a warning when the file's own I, II, III disagree with I + III = II."""
    if not {"I", "II", "III"} <= set(canon):
        return
    err = np.abs(have["I"] + have["III"] - have["II"])
    scale = max(float(np.ptp(have["II"])), 1e-9)
    if err.max() > 0.05 * scale:
        log.warning("%s: leads I + III differ from II by up to %.3g mV (%.0f %% of the range "
                    "of II): electrodes swapped or leads recorded separately?", source,
                    err.max(), 100 * err.max() / scale)


def read_ecg(path: str | Path, unit: str | None = None, fs: float | None = None) -> Recording:
    """Read a 12-lead recording (WFDB, CSV or NumPy) into a :class:`Recording` in mV.

    Parameters
    ----------
    path
        A WFDB record (``.hea`` with ``.dat`` or ``.mat``; with or without the extension),
        a ``.csv`` table with a header row of lead names, or a ``.npy`` array of shape
        ``(12, T)`` or ``(T, 12)`` in the order ``I, II, III, aVR, aVL, aVF, V1..V6``.
    unit
        ``'mV'``, ``'uV'`` or ``'V'``. For WFDB the header's units are used and ``unit``,
        when given, must agree; for CSV and NumPy the default is mV (logged).
    fs
        Sampling rate (Hz). Required for NumPy; for CSV unless a time column is present;
        for WFDB taken from the header (a different ``fs`` is an error).

    Returns
    -------
    Recording
        ``signals`` ``(12, T)`` float64 mV in canonical order, ``fs`` in Hz.

    Raises
    ------
    InputError
        Missing file, unknown format, unreadable record, unknown/missing/duplicated leads,
        a wrong shape, an unknown or conflicting sampling rate or unit, NaN/inf values.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _read_npy(path, unit, fs)
    if suffix == ".csv":
        return _read_csv(path, unit, fs)
    if suffix in ("", ".hea", ".dat", ".mat") or path.with_suffix(".hea").exists():
        return _read_wfdb(path, unit, fs)
    raise InputError(f"{path}: unknown ECG format {suffix!r}; expected a WFDB record "
                     "(.hea + .dat/.mat), .csv or .npy")


def _plain_unit(unit: str | None, source: Path) -> float:
    if unit is None:
        log.info("%s: no unit given; assuming mV", source)
        return 1.0
    return unit_factor(unit, str(source))


def _read_npy(path: Path, unit: str | None, fs: float | None) -> Recording:
    if not path.exists():
        raise InputError(f"ECG file {path} does not exist")
    if fs is None:
        raise InputError(f"{path}: a NumPy array carries no sampling rate; pass fs")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path} as a NumPy array: {exc}") from exc
    if arr.ndim != 2 or 12 not in arr.shape or arr.shape == (12, 12):
        raise InputError(f"{path}: array of shape {arr.shape}; expected (12, T) or (T, 12) "
                         f"with leads {', '.join(LEAD_NAMES)}")
    if arr.shape[0] != 12:
        arr = arr.T
    log.info("%s: NumPy array taken in the lead order %s", path, ", ".join(LEAD_NAMES))
    return assemble_leads(arr, LEAD_NAMES, float(fs), str(path), _plain_unit(unit, path))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv(path: Path, unit: str | None, fs: float | None) -> Recording:
    if not path.exists():
        raise InputError(f"ECG file {path} does not exist")
    lines = path.read_text().splitlines()
    if not lines:
        raise InputError(f"{path}: empty CSV file")
    header = [c.strip().strip('"').strip("'") for c in lines[0].split(",")]
    if all(_is_number(c) for c in header):
        raise InputError(f"{path}: the first row holds numbers; a header row of lead names "
                         f"({', '.join(LEAD_NAMES)}) is required")
    try:
        arr = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise InputError(f"{path}: cannot read the CSV values: {exc}") from exc
    if arr.shape[1] != len(header):
        raise InputError(f"{path}: {len(header)} header columns but {arr.shape[1]} values a row")
    time_cols = [i for i, h in enumerate(header) if h.lower() in TIME_COLUMNS]
    if len(time_cols) > 1:
        raise InputError(f"{path}: more than one time column {[header[i] for i in time_cols]}")
    if time_cols:
        i = time_cols[0]
        t = arr[:, i] * TIME_COLUMNS[header[i].lower()]
        dt = np.diff(t)
        if dt.size == 0 or (dt <= 0).any() or np.ptp(dt) > 0.01 * np.median(dt):
            raise InputError(f"{path}: time column {header[i]!r} is not uniformly increasing")
        fs_t = 1.0 / float(np.median(dt))
        if fs is not None and abs(fs_t - fs) > 0.01 * fs:
            raise InputError(f"{path}: fs = {fs} Hz given but column {header[i]!r} says "
                             f"{fs_t:.6g} Hz")
        fs = fs_t if fs is None else fs
        arr = np.delete(arr, i, axis=1)
        header = header[:i] + header[i + 1:]
    if fs is None:
        raise InputError(f"{path}: sampling rate unknown; pass fs or add a 't_ms' column")
    return assemble_leads(arr.T, header, float(fs), str(path), _plain_unit(unit, path))


def _read_wfdb(path: Path, unit: str | None, fs: float | None) -> Recording:
    import wfdb

    base = path.with_suffix("") if path.suffix.lower() in (".hea", ".dat", ".mat") else path
    header = base.with_name(base.name + ".hea")
    if not header.exists():
        raise InputError(f"WFDB header {header} does not exist")
    try:
        rec = wfdb.rdrecord(str(base))
    except Exception as exc:  # wfdb raises many exception types for broken records
        raise InputError(f"cannot read WFDB record {base}: {type(exc).__name__}: {exc}") from exc
    if rec.p_signal is None:
        raise InputError(f"WFDB record {base} has no physical signal")
    source = str(header)
    if rec.fs is None or not np.isfinite(rec.fs) or rec.fs <= 0:
        raise InputError(f"{source}: sampling rate missing or invalid ({rec.fs!r})")
    if fs is not None and abs(float(fs) - float(rec.fs)) > 1e-6 * float(rec.fs):
        raise InputError(f"{source}: fs = {fs} Hz given but the header says {rec.fs} Hz")
    units = [u or "mV" for u in (rec.units or ["mV"] * rec.n_sig)]
    factors = np.array([unit_factor(u, source) for u in units])
    if unit is not None:
        want = unit_factor(unit, source)
        if not np.allclose(factors, want):
            raise InputError(f"{source}: unit={unit!r} given but the header says {units}")
    values = np.asarray(rec.p_signal, dtype=np.float64).T * factors[:, None]
    return assemble_leads(values, list(rec.sig_name), float(rec.fs), source)
