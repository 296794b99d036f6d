"""Patient measurements from a CSV file, checked before anything is simulated.

Columns (names case-insensitive; aliases in brackets):

==========  ========  =========  ============================================================
column      unit      required   meaning
==========  ========  =========  ============================================================
EDV         mL        yes        end-diastolic LV volume [EDV_mL]
ESV         mL        yes        end-systolic LV volume [ESV_mL]
EF          %         no         ejection fraction [EF_percent]; computed from EDV, ESV when absent
HR          bpm       no         heart rate [HR_bpm, heart_rate]; ``hemo.patients.default_hr_bpm`` when absent or empty
id          -         no         patient name [patient_id, FileName]; the row number when absent
==========  ========  =========  ============================================================

The EchoNet-Dynamic ``FileList.csv`` (FileName, EF, ESV, EDV, FrameHeight, FrameWidth, FPS,
NumberOfFrames, Split) is read as is; it has no heart rate. Every error names the file, the
row (1 = first data row; the file line is row + 1) and the column.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import InputError

log = logging.getLogger(__name__)

ALIASES: dict[str, tuple[str, ...]] = {
    "EDV": ("edv", "edv_ml"),
    "ESV": ("esv", "esv_ml"),
    "EF": ("ef", "ef_percent"),
    "HR": ("hr", "hr_bpm", "heart_rate"),
    "id": ("id", "patient_id", "filename"),
}
REQUIRED = ("EDV", "ESV")
#: EF given in the file may differ from 100 (EDV - ESV) / EDV by this much before a warning.
EF_TOLERANCE_POINTS = 5.0


@dataclass(frozen=True)
class Patients:
    """Checked measurements of n patients (float64 arrays (n,))."""

    ids: list[str]
    edv: np.ndarray
    esv: np.ndarray
    ef: np.ndarray
    hr: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def _column(df: pd.DataFrame, key: str) -> str | None:
    lower = {c.strip().lower(): c for c in df.columns}
    for alias in ALIASES[key]:
        if alias in lower:
            return lower[alias]
    return None


def _numbers(df: pd.DataFrame, col: str, path: Path, required: bool) -> np.ndarray:
    values = np.full(len(df), np.nan)
    for i, raw in enumerate(df[col].tolist()):
        text = "" if raw is None else str(raw).strip()
        if text == "" or text.lower() == "nan":
            if required:
                raise InputError(f"{path}: row {i + 1} (line {i + 2}), column {col!r}: empty; a number is required")
            continue
        try:
            values[i] = float(text)
        except ValueError as exc:
            raise InputError(f"{path}: row {i + 1} (line {i + 2}), column {col!r}: {text!r} is not a number") from exc
        if not np.isfinite(values[i]):
            raise InputError(f"{path}: row {i + 1} (line {i + 2}), column {col!r}: {text!r} is not finite")
    return values


def read_patients(path: str | Path, default_hr_bpm: float = 75.0, max_patients: int | None = None) -> Patients:
    """Read and check a patient CSV.

    Raises
    ------
    InputError
        Missing file or column (naming the columns found), a value that is not a number,
        a negative volume, ESV > EDV, EF outside 0-100, a heart rate outside (0, 300] bpm;
        each naming the row and column.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"patient CSV {path} does not exist")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})") from exc
    cols = {key: _column(df, key) for key in ALIASES}
    for key in REQUIRED:
        if cols[key] is None:
            raise InputError(f"{path}: missing column {key!r} (or {', '.join(ALIASES[key][1:])}); "
                             f"found columns {list(df.columns)}")
    if len(df) == 0:
        raise InputError(f"{path}: no data rows")
    if max_patients is not None and len(df) > max_patients:
        log.warning("%s: reading the first %d of %d rows", path, max_patients, len(df))
        df = df.iloc[:max_patients]
    edv = _numbers(df, cols["EDV"], path, True)
    esv = _numbers(df, cols["ESV"], path, True)
    for name, arr in ((cols["EDV"], edv), (cols["ESV"], esv)):
        bad = np.flatnonzero(arr <= 0)
        if bad.size:
            i = int(bad[0])
            raise InputError(f"{path}: row {i + 1} (line {i + 2}), column {name!r}: volume {arr[i]:g} mL "
                             "must be positive")
    bad = np.flatnonzero(esv > edv)
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{path}: row {i + 1} (line {i + 2}), column {cols['ESV']!r}: ESV {esv[i]:g} mL is "
                         f"larger than EDV {edv[i]:g} mL (column {cols['EDV']!r})")
    ef_calc = 100.0 * (edv - esv) / edv
    if cols["EF"] is not None:
        ef = _numbers(df, cols["EF"], path, False)
        bad = np.flatnonzero((ef < 0) | (ef > 100))
        if bad.size:
            i = int(bad[0])
            raise InputError(f"{path}: row {i + 1} (line {i + 2}), column {cols['EF']!r}: EF {ef[i]:g} % is "
                             "outside 0-100")
        off = np.abs(ef - ef_calc) > EF_TOLERANCE_POINTS
        if off.any():
            log.warning("%s: %d rows have EF differing from 100 (EDV - ESV) / EDV by more than %g points "
                        "(first: row %d); the volumes are used", path, int(off.sum()), EF_TOLERANCE_POINTS,
                        int(np.flatnonzero(off)[0]) + 1)
        ef = np.where(np.isnan(ef), ef_calc, ef)
    else:
        ef = ef_calc
    if cols["HR"] is not None:
        hr = _numbers(df, cols["HR"], path, False)
        bad = np.flatnonzero((hr <= 0) | (hr > 300))
        if bad.size:
            i = int(bad[0])
            raise InputError(f"{path}: row {i + 1} (line {i + 2}), column {cols['HR']!r}: heart rate {hr[i]:g} "
                             "bpm is outside (0, 300]")
        hr = np.where(np.isnan(hr), default_hr_bpm, hr)
    else:
        log.info("%s: no heart-rate column; using %g bpm for every patient", path, default_hr_bpm)
        hr = np.full(len(df), float(default_hr_bpm))
    ids = (df[cols["id"]].astype(str).tolist() if cols["id"] is not None
           else [f"row{i + 1}" for i in range(len(df))])
    log.info("read %d patients from %s", len(ids), path)
    return Patients(ids=ids, edv=edv, esv=esv, ef=ef, hr=hr)
