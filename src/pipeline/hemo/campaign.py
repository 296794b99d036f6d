"""Synthetic campaign: a uniform sweep of the seven inferred parameters, simulated in batches.

HDF5 layout (the project's dataset conventions, DESIGN.md section 6, adapted to the
circulation):

=========================  ================  ===========================================
name                       dtype, shape      meaning
=========================  ================  ===========================================
``params/{name}``          float64 (N,)      the seven inferred parameters (units attr)
``indices/{key}``          float32 (N,)      EDV_mL, ESV_mL, EF_percent, CO_L_per_min, ...
``curves/volume_mL``       float32 (N, K)    LV volume over the last beat, K uniform phases
``curves/plv_mmHg``        float32 (N, K)    LV pressure over the last beat
``curves/pla_mmHg``        float32 (N, K)    left-atrial pressure
``curves/pao_mmHg``        float32 (N, K)    aortic pressure
``periodicity_mL``         float32 (N,)      change of LV volume over the last beat
``split/{train,val,test}`` int64             disjoint sample indices
=========================  ================  ===========================================

Attributes: ``param_names``, ``curve_points``, ``solver`` (JSON), provenance.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from tqdm import tqdm

from pipeline.errors import InputError
from pipeline.hemo import params as P
from pipeline.hemo.metrics import indices, resample
from pipeline.hemo.solver import simulate
from pipeline.io import atomic_path, write_provenance

log = logging.getLogger(__name__)

#: Stored curves: HDF5 name -> state index (None: LV pressure).
CURVES: dict[str, int | None] = {"volume_mL": 0, "plv_mmHg": None, "pla_mmHg": 1, "pao_mmHg": 3}


@dataclass(frozen=True)
class Campaign:
    """A campaign read back from HDF5 (numpy arrays).

    Attributes
    ----------
    params
        (N, 7) inferred parameters in :data:`pipeline.hemo.params.INFERRED` order.
    indices
        Name -> (N,).
    curves
        Name -> (N, K).
    split
        ``train``/``val``/``test`` -> int64 indices.
    """

    params: np.ndarray
    indices: dict[str, np.ndarray]
    curves: dict[str, np.ndarray]
    split: dict[str, np.ndarray]


def sample_parameters(n: int, seed: int) -> torch.Tensor:
    """Uniform samples of the inferred parameters over their ranges, (n, 7) float64."""
    rng = np.random.default_rng([seed, 8])          # 8: this stream
    unit = torch.from_numpy(rng.random((n, len(P.INFERRED))))
    return P.from_unit(unit)


def make_split(n: int, val: float, test: float, seed: int) -> dict[str, np.ndarray]:
    """Random disjoint train/val/test indices (sorted int64)."""
    rng = np.random.default_rng([seed, 8, 1])
    order = rng.permutation(n)
    n_test, n_val = int(round(test * n)), int(round(val * n))
    return {"test": np.sort(order[:n_test]), "val": np.sort(order[n_test:n_test + n_val]),
            "train": np.sort(order[n_test + n_val:])}


def run_campaign(out: str | Path, cfg: Mapping[str, Any], seed: int) -> Path:
    """Simulate the campaign of ``cfg`` (the ``hemo`` config section) and write it to ``out``."""
    cc, solver = cfg["campaign"], cfg["solver"]
    n, k = cc["n_simulations"], cc["curve_points"]
    values = sample_parameters(n, seed)
    idx: dict[str, list[np.ndarray]] = {}
    curves: dict[str, list[np.ndarray]] = {name: [] for name in CURVES}
    periodic: list[np.ndarray] = []
    log.info("hemo campaign: %d patients, batches of %d, %d beats x %d steps", n, cc["batch"],
             solver["n_cycles"], solver["steps_per_cycle"])
    with torch.no_grad():
        for start in tqdm(range(0, n, cc["batch"]), desc="hemo campaign", unit="batch"):
            p = P.full_batch(P.unstack(values[start:start + cc["batch"]]))
            traj = simulate(p, check=False, **solver)
            for key, val in indices(traj).items():
                idx.setdefault(key, []).append(val.numpy())
            for name, col in CURVES.items():
                y = traj.plv if col is None else traj.x[..., col]
                curves[name].append(resample(y, k).numpy())
            periodic.append(traj.periodicity.numpy())
    ind = {key: np.concatenate(v) for key, v in idx.items()}
    cur = {key: np.concatenate(v) for key, v in curves.items()}
    per = np.concatenate(periodic)
    finite = np.isfinite(cur["volume_mL"]).all(1) & np.isfinite(cur["plv_mmHg"]).all(1)
    if not finite.all():
        log.warning("dropping %d of %d simulations that did not stay finite", int((~finite).sum()), n)
    keep = np.flatnonzero(finite)
    split = make_split(keep.size, cc["val_fraction"], cc["test_fraction"], seed)
    log.info("EF %.1f-%.1f %%, EDV %.0f-%.0f mL; worst periodicity %.3g mL", ind["EF_percent"][keep].min(),
             ind["EF_percent"][keep].max(), ind["EDV_mL"][keep].min(), ind["EDV_mL"][keep].max(), per[keep].max())
    out = Path(out)
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        for i, name in enumerate(P.INFERRED):
            d = f.create_dataset(f"params/{name}", data=values[keep, i].numpy())
            d.attrs["unit"] = P.PARAMETERS[name].unit
        for key, v in ind.items():
            f.create_dataset(f"indices/{key}", data=v[keep].astype(np.float32))
        for key, v in cur.items():
            f.create_dataset(f"curves/{key}", data=v[keep].astype(np.float32), compression="gzip")
        f.create_dataset("periodicity_mL", data=per[keep].astype(np.float32))
        for key, v in split.items():
            f.create_dataset(f"split/{key}", data=v.astype(np.int64))
        f.attrs["param_names"] = list(P.INFERRED)
        f.attrs["curve_points"] = k
        f.attrs["solver"] = json.dumps(dict(solver))
        write_provenance(f, {"seed": seed, "hemo": dict(cfg)})
    log.info("wrote %s (%d simulations)", out, keep.size)
    return out


def read_campaign(path: str | Path) -> Campaign:
    """Read a campaign HDF5 file.

    Raises
    ------
    InputError
        If the file is missing or lacks a field of the layout.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"campaign file {path} does not exist (run `pipeline hemo campaign`)")
    with h5py.File(path, "r") as f:
        try:
            params = np.stack([f[f"params/{n}"][()] for n in P.INFERRED], -1)
            ind = {k: f[f"indices/{k}"][()] for k in f["indices"]}
            cur = {k: f[f"curves/{k}"][()] for k in f["curves"]}
            split = {k: f[f"split/{k}"][()] for k in ("train", "val", "test")}
        except KeyError as exc:
            raise InputError(f"{path}: not a hemo campaign file ({exc})") from exc
    return Campaign(params=params, indices=ind, curves=cur, split=split)
