"""The shard file: one HDF5 per group of simulations of one anatomy.

Layout (DESIGN.md section 6, without ``split/``), N simulations, T samples:

=====================  ===================  ==========================================
name                   dtype, shape         meaning
=====================  ===================  ==========================================
``ecg``                float32 (N, 12, T)   leads, mV
``electrodes``         float32 (N, 10, T)   electrode potentials, mV
``vm``                 float32 (N, 75, T)   Vm at the 75 points, mV
``activation_ms``      float32 (N, 75)      first upward 0 mV crossing, interpolated
``activation_label_ms`` float32 (N, 75)     the paper's label: first 1-ms sample > 0 mV
``apd90_ms``           float32 (N, 75)      APD90
``params/{name}``      (N,)                 every column of the parameter table
``activation_map_ms``  float32 (N, n_tis)   optional: every tissue voxel (C order)
=====================  ===================  ==========================================

Attributes: ``lead_names``, ``electrode_names``, ``point_names``, ``dt_ms``, ``units``
(JSON mapping dataset -> unit), ``anatomy``, plus provenance. The file is written under
a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.errors import InputError
from pipeline.io import atomic_path, write_provenance
from pipeline.signals.leads import ELECTRODE_NAMES, LEAD_NAMES

log = logging.getLogger(__name__)

UNITS: dict[str, str] = {
    "ecg": "mV", "electrodes": "mV", "vm": "mV", "activation_ms": "ms",
    "activation_label_ms": "ms", "apd90_ms": "ms", "activation_map_ms": "ms",
    "params/sigma_l": "S/m", "params/sigma_t": "S/m", "params/sigma_fast_endo": "S/m",
    "params/bcl_ms": "ms", "params/site_jitter_mm": "mm", "params/site_delay_max_ms": "ms",
    "params/gkr_scale": "1", "params/sim_id": "1", "params/seed": "1",
}
ARRAYS: tuple[str, ...] = ("ecg", "electrodes", "vm", "activation_ms", "activation_label_ms",
                           "apd90_ms")


@dataclass
class ShardData:
    """Everything a shard file holds, in memory.

    Attributes
    ----------
    ecg, electrodes, vm
        ``(N, 12, T)``, ``(N, 10, T)``, ``(N, n_points, T)`` mV.
    activation_ms, activation_label_ms, apd90_ms
        ``(N, n_points)`` ms, NaN where undefined.
    params
        Column name -> ``(N,)`` values (numbers or strings).
    point_names
        ``(n_points,)`` names of the recording points.
    dt_ms
        Sampling interval (ms).
    anatomy
        Heart name.
    activation_map_ms
        Optional ``(N, n_tissue)`` ms.
    extra_attrs
        More attributes to store (solver settings, calibration ...).
    """

    ecg: np.ndarray
    electrodes: np.ndarray
    vm: np.ndarray
    activation_ms: np.ndarray
    activation_label_ms: np.ndarray
    apd90_ms: np.ndarray
    params: dict[str, np.ndarray]
    point_names: Sequence[str]
    dt_ms: float
    anatomy: str = ""
    activation_map_ms: np.ndarray | None = None
    extra_attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of simulations."""
        return int(self.ecg.shape[0])

    def check(self) -> None:
        """Raise ``ValueError`` if shapes disagree with each other or with the layout."""
        n, t = self.ecg.shape[0], self.ecg.shape[-1]
        n_pts = len(self.point_names)
        expected = {"ecg": (n, len(LEAD_NAMES), t), "electrodes": (n, len(ELECTRODE_NAMES), t),
                    "vm": (n, n_pts, t), "activation_ms": (n, n_pts),
                    "activation_label_ms": (n, n_pts), "apd90_ms": (n, n_pts)}
        for name, shape in expected.items():
            got = np.shape(getattr(self, name))
            if got != shape:
                raise ValueError(f"shard array {name} has shape {got}, expected {shape}")
        for key, values in self.params.items():
            if len(values) != n:
                raise ValueError(f"params/{key} has {len(values)} values, expected {n}")
        if self.activation_map_ms is not None and self.activation_map_ms.shape[0] != n:
            raise ValueError("activation_map_ms must have one row per simulation")


def _param_array(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "OUS":
        return np.asarray([str(v) for v in arr], dtype=object)
    return arr


def write_shard(path: str | Path, data: ShardData, config: Mapping[str, Any] | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (temporary name, then rename).

    Parameters
    ----------
    path
        Output ``.h5``.
    data
        The shard's arrays.
    config
        Resolved config section stored as provenance.
    """
    data.check()
    out = Path(path)
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as h5:
            for name in ARRAYS:
                h5.create_dataset(name, data=np.asarray(getattr(data, name), dtype=np.float32),
                                  compression="gzip", compression_opts=4, shuffle=True)
            if data.activation_map_ms is not None:
                h5.create_dataset("activation_map_ms",
                                  data=np.asarray(data.activation_map_ms, dtype=np.float32),
                                  compression="gzip", compression_opts=4, shuffle=True)
            group = h5.create_group("params")
            for key, values in data.params.items():
                arr = _param_array(values)
                if arr.dtype == object:
                    group.create_dataset(key, data=arr, dtype=h5py.string_dtype("utf-8"))
                else:
                    group.create_dataset(key, data=arr)
            h5.attrs["lead_names"] = np.asarray(LEAD_NAMES, dtype=object)
            h5.attrs["electrode_names"] = np.asarray(ELECTRODE_NAMES, dtype=object)
            h5.attrs["point_names"] = np.asarray([str(p) for p in data.point_names], dtype=object)
            h5.attrs["dt_ms"] = float(data.dt_ms)
            h5.attrs["units"] = json.dumps(UNITS, sort_keys=True)
            h5.attrs["anatomy"] = data.anatomy
            for key, value in data.extra_attrs.items():
                h5.attrs[key] = value if not isinstance(value, (dict, list)) else json.dumps(value)
            write_provenance(h5, config)
    log.info("wrote %s (%d simulations, %d samples)", out, data.n, data.ecg.shape[-1])
    return out


def _strings(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def check_layout(path: Path, h5: h5py.File) -> None:
    """Raise :class:`InputError` naming ``path`` and the first missing dataset or attribute
    of an open shard file (without reading its arrays)."""
    for name in ARRAYS:
        if name not in h5:
            raise InputError(f"shard file {path}: missing dataset '{name}'")
    for attr in ("point_names", "dt_ms"):
        if attr not in h5.attrs:
            raise InputError(f"shard file {path}: missing attribute '{attr}'")


def read_shard(path: str | Path) -> ShardData:
    """Read a shard file written by :func:`write_shard`.

    Raises
    ------
    InputError
        Naming the file and the missing field.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"shard file {path} does not exist")
    with h5py.File(path, "r") as h5:
        check_layout(path, h5)
        arrays = {name: h5[name][()] for name in ARRAYS}
        params: dict[str, np.ndarray] = {}
        for key, dset in h5.get("params", {}).items():
            raw = dset[()]
            params[key] = (np.asarray(_strings(raw), dtype=object)
                           if dset.dtype.kind in "OS" else np.asarray(raw))
        amap = h5["activation_map_ms"][()] if "activation_map_ms" in h5 else None
        return ShardData(**arrays, params=params,
                         point_names=_strings(h5.attrs["point_names"]),
                         dt_ms=float(h5.attrs["dt_ms"]),
                         anatomy=str(h5.attrs.get("anatomy", "")), activation_map_ms=amap)
