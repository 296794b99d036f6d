"""Assemble a campaign's shard files into its dataset file, with splits.

Samples are ordered by ``sim_id`` (so the dataset does not depend on the order in which
shards are listed or finished). Every shard is checked before anything is written: the
layout of :mod:`pipeline.simulate.shard`, the same ``T``, ``dt_ms`` and names in every shard,
finite signals, leads consistent with the electrodes, no ``sim_id`` twice, and, when the
design table is given, exactly the designed simulations with the designed parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from pipeline.campaign.dataset import (ARRAYS, LEAD_TOLERANCE, N_POINTS, DatasetWriter,
                                       check_dataset)
from pipeline.campaign.splits import make_splits
from pipeline.errors import InputError
from pipeline.io import atomic_path
from pipeline.signals.leads import lead_matrix
from pipeline.simulate.shard import ShardData, check_layout, read_shard

log = logging.getLogger(__name__)

#: Relative tolerance when comparing a shard's parameters with the design table.
PARAM_RTOL = 1e-6


def _shard_meta(path: Path) -> dict[str, Any]:
    """Names, shapes and sim_ids of a shard without reading its bulk arrays."""
    if not path.is_file():
        raise InputError(f"shard file {path} does not exist")
    with h5py.File(path, "r") as h5:
        check_layout(path, h5)
        if "params" not in h5 or "sim_id" not in h5["params"]:
            raise InputError(f"shard file {path}: missing 'params/sim_id'")
        return {
            "shape": h5["ecg"].shape,
            "dt_ms": float(h5.attrs["dt_ms"]),
            "point_names": [p.decode() if isinstance(p, bytes) else str(p)
                            for p in h5.attrs["point_names"]],
            "params": sorted(h5["params"].keys()),
            "sim_id": np.asarray(h5["params/sim_id"][()], dtype=np.int64),
        }


def _check_shard(path: Path, data: ShardData) -> None:
    """Finite signals and consistent leads; raises InputError naming shard and sim_id."""
    try:
        data.check()
    except ValueError as exc:
        raise InputError(f"shard file {path}: {exc}") from exc
    sim_ids = np.asarray(data.params["sim_id"], dtype=np.int64)
    for name in ("ecg", "electrodes", "vm"):
        bad = ~np.isfinite(getattr(data, name)).all(axis=(1, 2))
        if bad.any():
            raise InputError(f"shard file {path}: '{name}' of sim_id "
                             f"{int(sim_ids[np.flatnonzero(bad)[0]])} has NaN/inf")
    leads = np.einsum("lc,nct->nlt", lead_matrix(), data.electrodes.astype(np.float64))
    err = np.abs(data.ecg.astype(np.float64) - leads).max(axis=(1, 2))
    scale = np.maximum(np.abs(data.ecg).max(axis=(1, 2)), 1e-6)
    bad = err > LEAD_TOLERANCE * scale + 1e-6
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise InputError(f"shard file {path}: leads of sim_id {int(sim_ids[k])} differ from "
                         f"its electrodes by {err[k]:.3g} mV (DESIGN.md section 5)")


def _compare_design(design: pd.DataFrame, params: Mapping[str, np.ndarray],
                    design_path: str) -> None:
    """Every designed simulation present once, with the designed parameter values."""
    got = np.asarray(params["sim_id"], dtype=np.int64)
    want = design["sim_id"].to_numpy(np.int64)
    missing = np.setdiff1d(want, got)
    extra = np.setdiff1d(got, want)
    if missing.size or extra.size:
        raise InputError(f"shards do not match the design {design_path}: missing sim_id "
                         f"{missing[:10].tolist()}{' ...' if missing.size > 10 else ''}, "
                         f"not designed {extra[:10].tolist()}")
    table = design.set_index("sim_id").loc[got]
    for column in table.columns:
        if column not in params:
            raise InputError(f"shards lack params/{column} of the design {design_path}")
        ours, theirs = table[column].to_numpy(), np.asarray(params[column])
        if ours.dtype.kind in "OUS" or theirs.dtype.kind in "OUS":
            same = np.array([str(a) == str(b) for a, b in zip(ours, theirs, strict=True)])
        else:
            same = np.isclose(theirs.astype(np.float64), ours.astype(np.float64),
                              rtol=PARAM_RTOL, atol=0.0)
        if not same.all():
            k = int(np.flatnonzero(~same)[0])
            raise InputError(f"params/{column} of sim_id {int(got[k])} is {theirs[k]!r} in its "
                             f"shard but {ours[k]!r} in the design {design_path}")


def assemble(shards: Sequence[str | Path], out: str | Path, *,
             split_cfg: Mapping[str, Any], seed: int, campaign: str,
             design: pd.DataFrame | None = None, design_path: str = "design",
             config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Assemble shard files into the dataset file ``out``.

    Parameters
    ----------
    shards
        Shard files (``results/sims/{campaign}/{shard}.h5``), any order.
    out
        Dataset file to write (atomically).
    split_cfg
        The campaign's ``split`` settings (``by``, ``val_fraction``, ``test_fraction``).
    seed, campaign
        Config seed and campaign name (keys of the random split).
    design
        Optional design table (:func:`pipeline.campaign.design.read_design`): the shards
        must hold exactly its simulations with its parameter values.
    config
        Resolved settings stored as provenance.

    Returns
    -------
    dict
        ``n`` samples, split sizes and NaN label counts.
    """
    if not shards:
        raise InputError("no shard files given")
    paths = [Path(p) for p in shards]
    metas = [_shard_meta(p) for p in paths]
    first = metas[0]
    unique = _check_metas(paths, metas)
    n, t = unique.size, int(first["shape"][-1])
    position = {int(s): k for k, s in enumerate(unique.tolist())}  # rank of each sim_id
    params: dict[str, list[Any]] = {key: [None] * n for key in first["params"]}

    from tqdm import tqdm

    with atomic_path(out) as tmp, h5py.File(tmp, "w") as h5:
        writer = DatasetWriter(h5, n, t, first["point_names"], first["dt_ms"])
        for path in tqdm(paths, desc="assemble", unit="shard", disable=None):
            _copy_shard(path, writer, position, params)
        columns = {k: np.asarray(v) for k, v in params.items()}
        if design is not None:
            _compare_design(design, columns, design_path)
        anatomy = columns.get("anatomy", np.full(n, "", dtype=object))
        splits = make_splits(split_cfg, columns["sim_id"], anatomy, seed, campaign)
        writer.write_params(columns)
        writer.write_splits(splits, str(split_cfg["by"]))
        writer.finish(config, source="campaign", campaign=campaign, n_shards=len(paths))
        h5.flush()
        h5.close()
        report = check_dataset(tmp)
    report["splits"] = {k: int(v.size) for k, v in splits.items()}
    log.info("wrote %s: %d samples from %d shards, splits %s", out, n, len(paths),
             report["splits"])
    return report


def _check_metas(paths: Sequence[Path], metas: Sequence[dict[str, Any]]) -> np.ndarray:
    """Shards agree on dt, points, parameters and trace shape, and hold each sim_id once;
    returns the sorted sim_ids."""
    first = metas[0]
    for path, meta in zip(paths, metas, strict=True):
        for key in ("dt_ms", "point_names", "params"):
            if meta[key] != first[key]:
                raise InputError(f"shard file {path}: {key} {meta[key]!r} differs from "
                                 f"{first[key]!r} in {paths[0]}")
        if meta["shape"][1:] != first["shape"][1:]:
            raise InputError(f"shard file {path}: ecg shape {meta['shape']} differs from "
                             f"{first['shape']} in {paths[0]}")
    if len(first["point_names"]) != N_POINTS:
        raise InputError(f"shard file {paths[0]}: {len(first['point_names'])} recording "
                         f"points, expected {N_POINTS}")
    all_ids = np.concatenate([m["sim_id"] for m in metas])
    unique, counts = np.unique(all_ids, return_counts=True)
    if (counts > 1).any():
        dup = int(unique[counts > 1][0])
        holders = [str(p) for p, m in zip(paths, metas, strict=True) if dup in m["sim_id"]]
        raise InputError(f"sim_id {dup} appears in more than one place: {holders}")
    return unique


def _copy_shard(path: Path, writer: DatasetWriter, position: dict[int, int],
                params: dict[str, list[Any]]) -> None:
    """Copy one shard's arrays into their rows (by sim_id rank) and collect its parameters."""
    data = read_shard(path)
    _check_shard(path, data)
    ids = np.asarray(data.params["sim_id"], dtype=np.int64)
    silent = np.isnan(data.activation_ms).all(axis=1)
    if silent.any():
        log.warning("shard %s: sim_id %s activated none of the %d points", path,
                    ids[silent].tolist(), data.activation_ms.shape[1])
    partial = np.isnan(data.activation_ms).any(axis=1) & ~silent
    if partial.any():
        log.info("shard %s: sim_id %s leave %s points unactivated", path,
                 ids[partial].tolist(),
                 np.isnan(data.activation_ms[partial]).sum(axis=1).tolist())
    order = np.argsort(ids)
    rows = np.array([position[int(s)] for s in ids[order]], dtype=np.int64)
    writer.write_rows(rows, {name: getattr(data, name)[order] for name in ARRAYS})
    for key in params:
        values = np.asarray(data.params[key])[order]
        for r, v in zip(rows.tolist(), values.tolist(), strict=True):
            params[key][r] = v
    log.info("shard %s: %d simulations", path, len(ids))
