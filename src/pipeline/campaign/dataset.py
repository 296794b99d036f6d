"""The dataset file (DESIGN.md section 6): streaming writer and integrity check.

=========================  ===================  ==========================================
name                       dtype, shape         meaning
=========================  ===================  ==========================================
``ecg``                    float32 (N, 12, T)   leads, mV
``electrodes``             float32 (N, 10, T)   electrode potentials, mV
``vm``                     float32 (N, 75, T)   Vm at the 75 points, mV
``activation_ms``          float32 (N, 75)      first upward 0 mV crossing, interpolated
``activation_label_ms``    float32 (N, 75)      the paper's label: first 1-ms sample > 0 mV
``apd90_ms``               float32 (N, 75)      APD90
``params/{name}``          (N,)                 every sampled parameter
``split/{train,val,test}`` int64                disjoint sample indices covering 0..N-1
=========================  ===================  ==========================================

Attributes: ``lead_names``, ``electrode_names``, ``point_names``, ``dt_ms``, ``units``
(JSON), ``source`` (``campaign`` or ``llnl``), ``campaign``, ``split_by``, provenance.
Bulk arrays are chunked one sample per chunk (gzip 4 + shuffle) so that a training loader
reads single samples cheaply.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.errors import InputError
from pipeline.io import write_provenance
from pipeline.signals.leads import ELECTRODE_NAMES, LEAD_NAMES, lead_matrix

log = logging.getLogger(__name__)

#: Bulk arrays: name -> (channel count or None for (N, P) arrays).
SIGNALS: tuple[str, ...] = ("ecg", "electrodes", "vm")
LABELS: tuple[str, ...] = ("activation_ms", "activation_label_ms", "apd90_ms")
ARRAYS: tuple[str, ...] = SIGNALS + LABELS
N_POINTS = 75
UNITS: dict[str, str] = {
    "ecg": "mV", "electrodes": "mV", "vm": "mV", "activation_ms": "ms",
    "activation_label_ms": "ms", "apd90_ms": "ms", "params/sigma_l": "S/m",
    "params/sigma_t": "S/m", "params/sigma_fast_endo": "S/m", "params/bcl_ms": "ms",
    "params/site_jitter_mm": "mm", "params/site_delay_max_ms": "ms", "params/gkr_scale": "1",
    "params/sim_id": "1", "params/seed": "1",
    **{f"params/heart_rot_{a}_deg": "deg" for a in "xyz"},
    **{f"params/heart_shift_{a}_mm": "mm" for a in "xyz"}, "params/torso_scale": "1",
}
#: Largest |ecg - leads(electrodes)| accepted, relative to the largest |ecg| (float32 data).
LEAD_TOLERANCE = 1e-4


def _strings(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]


class DatasetWriter:
    """Write a dataset file sample block by sample block (the file need not fit in memory).

    Parameters
    ----------
    h5
        A file open for writing (normally the temporary path of ``atomic_path``).
    n, n_samples
        Number of samples N and time samples T.
    point_names
        The 75 recording point names.
    dt_ms
        Sampling interval (ms).
    """

    def __init__(self, h5: h5py.File, n: int, n_samples: int, point_names: Sequence[str],
                 dt_ms: float) -> None:
        self.h5, self.n, self.t = h5, n, n_samples
        channels = {"ecg": len(LEAD_NAMES), "electrodes": len(ELECTRODE_NAMES),
                    "vm": len(point_names)}
        for name, c in channels.items():
            h5.create_dataset(name, shape=(n, c, n_samples), dtype=np.float32,
                              chunks=(1, c, n_samples) if n else None,
                              compression="gzip", compression_opts=4, shuffle=True)
        for name in LABELS:
            h5.create_dataset(name, shape=(n, len(point_names)), dtype=np.float32)
        h5.attrs["lead_names"] = np.asarray(LEAD_NAMES, dtype=object)
        h5.attrs["electrode_names"] = np.asarray(ELECTRODE_NAMES, dtype=object)
        h5.attrs["point_names"] = np.asarray([str(p) for p in point_names], dtype=object)
        h5.attrs["dt_ms"] = float(dt_ms)
        h5.attrs["units"] = json.dumps(UNITS, sort_keys=True)

    def write_rows(self, rows: np.ndarray, arrays: Mapping[str, np.ndarray]) -> None:
        """Store ``arrays[name][k]`` at sample ``rows[k]`` (rows strictly increasing)."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return
        if np.any(np.diff(rows) <= 0):
            raise ValueError("rows must be strictly increasing")
        contiguous = rows[-1] - rows[0] + 1 == rows.size
        where = slice(int(rows[0]), int(rows[-1]) + 1) if contiguous else rows
        for name in ARRAYS:
            self.h5[name][where] = np.asarray(arrays[name], dtype=np.float32)

    def write_params(self, params: Mapping[str, np.ndarray]) -> None:
        """Store ``params/{name}`` (N,) columns: strings as UTF-8, numbers as given."""
        group = self.h5.require_group("params")
        for key, values in params.items():
            arr = np.asarray(values)
            if len(arr) != self.n:
                raise ValueError(f"params/{key} has {len(arr)} values, expected {self.n}")
            if arr.dtype.kind in "OUS":
                group.create_dataset(key, data=np.asarray(_strings(arr), dtype=object),
                                     dtype=h5py.string_dtype("utf-8"))
            else:
                group.create_dataset(key, data=arr)

    def write_splits(self, splits: Mapping[str, np.ndarray], by: str) -> None:
        """Store ``split/{train,val,test}`` (int64) and the ``split_by`` attribute."""
        group = self.h5.require_group("split")
        for key, idx in splits.items():
            group.create_dataset(key, data=np.asarray(idx, dtype=np.int64))
        self.h5.attrs["split_by"] = by

    def finish(self, config: Mapping[str, Any] | None, **attrs: Any) -> None:
        """Set the remaining attributes and the provenance."""
        for key, value in attrs.items():
            self.h5.attrs[key] = value
        write_provenance(self.h5, config)


def check_dataset(path: str | Path, *, block: int = 256) -> dict[str, Any]:
    """Integrity check of a dataset file; returns counts of the NaN labels.

    Checks names and shapes of every array, that ``ecg``, ``electrodes`` and ``vm`` are
    finite, that the 12 leads equal DESIGN.md section 5 applied to the electrodes (within
    :data:`LEAD_TOLERANCE` of the largest lead value), that every ``params`` column has N
    values, and that the splits are disjoint and cover every sample.

    Raises
    ------
    InputError
        Naming the file, the array and the first offending sample.
    """
    path = Path(path)
    with h5py.File(path, "r") as h5:
        for name in ARRAYS:
            if name not in h5:
                raise InputError(f"dataset {path}: missing '{name}'")
        n, c, t = h5["ecg"].shape
        expected = {"ecg": (n, len(LEAD_NAMES), t), "electrodes": (n, len(ELECTRODE_NAMES), t),
                    "vm": (n, N_POINTS, t), **{k: (n, N_POINTS) for k in LABELS}}
        for name, shape in expected.items():
            if h5[name].shape != shape:
                raise InputError(f"dataset {path}: '{name}' has shape {h5[name].shape}, "
                                 f"expected {shape}")
        for attr, want in (("lead_names", LEAD_NAMES), ("electrode_names", ELECTRODE_NAMES)):
            if _strings(h5.attrs.get(attr, [])) != list(want):
                raise InputError(f"dataset {path}: attribute {attr} is "
                                 f"{_strings(h5.attrs.get(attr, []))}, expected {list(want)}")
        points = _strings(h5.attrs.get("point_names", []))
        if len(points) != N_POINTS or len(set(points)) != N_POINTS:
            raise InputError(f"dataset {path}: point_names must be {N_POINTS} distinct names")
        matrix = lead_matrix().astype(np.float64)
        for start in range(0, n, block):
            stop = min(n, start + block)
            for name in SIGNALS:
                bad = ~np.isfinite(h5[name][start:stop]).all(axis=(1, 2))
                if bad.any():
                    raise InputError(f"dataset {path}: '{name}' has NaN/inf in sample "
                                     f"{start + int(np.flatnonzero(bad)[0])}")
            ecg = h5["ecg"][start:stop].astype(np.float64)
            leads = np.einsum("lc,nct->nlt", matrix, h5["electrodes"][start:stop].astype(np.float64))
            err = np.abs(ecg - leads).max(axis=(1, 2))
            scale = np.maximum(np.abs(ecg).max(axis=(1, 2)), 1e-6)
            bad = err > LEAD_TOLERANCE * scale + 1e-6
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise InputError(f"dataset {path}: leads of sample {start + k} differ from the "
                                 f"electrodes by {err[k]:.3g} mV (DESIGN.md section 5)")
        for key, dset in h5.get("params", {}).items():
            if dset.shape != (n,):
                raise InputError(f"dataset {path}: params/{key} has shape {dset.shape}, "
                                 f"expected ({n},)")
        if "split" in h5:
            seen = np.concatenate([h5["split"][k][()] for k in ("train", "val", "test")
                                   if k in h5["split"]])
            if seen.size != n or not np.array_equal(np.sort(seen), np.arange(n)):
                raise InputError(f"dataset {path}: splits are not a partition of the {n} samples")
        nan = {k: int(np.isnan(h5[k][()]).sum()) for k in LABELS}
    log.info("dataset %s passed the integrity check (%d samples, T=%d); NaN labels: %s",
             path, n, t, nan)
    return {"n": n, "n_samples": t, "nan_labels": nan}
