"""Import the authors' dataset (Landajuela et al. 2022, UCSD library bb29449106).

Layout: a folder tree whose sub-folders hold pairs ``pECGData_<key>.npy`` (float64
``(500, 10)``: electrode potentials RA, LA, LL, RL, V1..V6 every 1 ms) and
``VmData_<key>.npy`` (float64 ``(500, 75)``: Vm at the 75 points every 1 ms), paired by
folder and ``<key>``. The import writes the dataset file of DESIGN.md section 6:

* ``electrodes`` = pECG transposed; ``ecg`` = the 12 leads by DESIGN.md section 5
  (:func:`pipeline.signals.leads.leads_from_electrodes`, Wilson's terminal from RA, LA, LL);
* ``vm`` = Vm transposed; ``activation_ms`` (interpolated 0 mV upward crossing),
  ``activation_label_ms`` (the paper's first 1-ms sample above 0 mV) and ``apd90_ms`` by
  :mod:`pipeline.signals.activation`, exactly as for simulated shards;
* ``params/sim_id`` (index in sorted order), ``params/anatomy`` (the sub-folder, relative
  to the root; ``.`` for files at the root) and ``params/file`` (the pECG file, relative);
* splits as a campaign's (``--settings`` key ``campaigns.llnl.split`` if given, else the
  defaults: 5 % validation, 5 % test, by sample).

Pairing and shapes are checked from the ``.npy`` headers before any conversion; NaN or inf
found during the conversion aborts it and discards the partial output. Errors name the file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.campaign.dataset import DatasetWriter, check_dataset
from pipeline.campaign.splits import make_splits
from pipeline.errors import InputError
from pipeline.io import atomic_path
from pipeline.signals.activation import activation_labels, activation_times, apd90
from pipeline.signals.leads import ELECTRODE_NAMES, leads_from_electrodes

log = logging.getLogger(__name__)

ECG_PREFIX, VM_PREFIX = "pECGData_", "VmData_"
_NAME = re.compile(r"^(pECGData|VmData)_(?P<key>.+)\.npy$")
N_SAMPLES, N_POINTS = 500, 75
DT_MS = 1.0


def point_names() -> list[str]:
    """The 75 recording point names of DESIGN.md section 4, in order."""
    names = [f"AHA{i:02d}" for i in range(1, 18)] + [f"RV{i:02d}" for i in range(1, 14)]
    epi = [f"AHA{i:02d}" for i in (1, 4, 5, 6, 7, 10, 11, 12, 13, 15, 16, 17)]
    epi += [f"RV{i:02d}" for i in (1, 2, 3, 6, 7, 8, 11, 12)]
    names += [f"EPI_{p}" for p in epi] + [f"MID_{p}" for p in epi]
    names += ["SEPTM_AHA02_RV05", "SEPTM_AHA03_RV04", "SEPTM_AHA08_RV10",
              "SEPTM_AHA09_RV09", "SEPTM_AHA14_RV13"]
    return names


@dataclass(frozen=True)
class Pair:
    """One simulation of the authors' dataset: its two files and its sub-folder."""

    ecg: Path
    vm: Path
    folder: str


def _check_array(path: Path, columns: int, n_samples: int) -> None:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable .npy array ({exc})") from exc
    if arr.shape != (n_samples, columns):
        raise InputError(f"{path}: shape {arr.shape}, expected ({n_samples}, {columns})")


def find_pairs(root: str | Path, n_samples: int = N_SAMPLES) -> list[Pair]:
    """Find and check every pECG/Vm pair under ``root``, sorted by folder and key.

    Raises
    ------
    InputError
        If ``root`` is not a folder, holds no pair, a file lacks its partner (the error
        names the file and the partner expected), or an array has the wrong shape.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder")
    found: dict[tuple[str, str], dict[str, Path]] = {}
    for path in sorted(root.rglob("*.npy")):
        match = _NAME.match(path.name)
        if match is None:
            log.debug("ignoring %s", path)
            continue
        folder = str(path.parent.relative_to(root))
        found.setdefault((folder, match["key"]), {})[match.group(1)] = path
    pairs = []
    for (folder, key), files in sorted(found.items()):
        if len(files) == 1:
            (kind, path), = files.items()
            partner = VM_PREFIX if kind == "pECGData" else ECG_PREFIX
            raise InputError(f"{path}: no partner file {path.parent / (partner + key + '.npy')}")
        pairs.append(Pair(ecg=files["pECGData"], vm=files["VmData"], folder=folder))
    if not pairs:
        raise InputError(f"{root}: no {ECG_PREFIX}*.npy / {VM_PREFIX}*.npy pairs found")
    for pair in pairs:
        _check_array(pair.ecg, len(ELECTRODE_NAMES), n_samples)
        _check_array(pair.vm, N_POINTS, n_samples)
    log.info("found %d pairs in %d folder(s) under %s", len(pairs),
             len({p.folder for p in pairs}), root)
    return pairs


def import_llnl(root: str | Path, out: str | Path, *, split_cfg: Mapping[str, Any],
                seed: int, n_samples: int = N_SAMPLES, block: int = 256,
                config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Convert the authors' ``.npy`` folder tree into a dataset file.

    Parameters
    ----------
    root
        Top folder of the authors' dataset.
    out
        Dataset file to write (atomically).
    split_cfg
        ``split`` settings (``by``, ``val_fraction``, ``test_fraction``).
    seed
        Config seed (key of the random split).
    n_samples
        Expected time samples per file (500 in the authors' data).
    block
        Pairs converted per block (bounds memory: ``block * 85 * T`` float64 values).
    config
        Resolved settings stored as provenance.

    Returns
    -------
    dict
        The integrity check's report plus split sizes.
    """
    root = Path(root)
    pairs = find_pairs(root, n_samples)
    n = len(pairs)

    from tqdm import tqdm

    with atomic_path(out) as tmp, h5py.File(tmp, "w") as h5:
        writer = DatasetWriter(h5, n, n_samples, point_names(), DT_MS)
        for start in tqdm(range(0, n, block), desc="import-llnl", unit="block", disable=None):
            chunk = pairs[start:start + block]
            electrodes = np.stack([np.load(p.ecg).T for p in chunk])  # (b, 10, T) float64
            vm = np.stack([np.load(p.vm).T for p in chunk])  # (b, 75, T)
            for p, e, v in zip(chunk, electrodes, vm, strict=True):
                if not (np.isfinite(e).all() and np.isfinite(v).all()):
                    bad = p.ecg if not np.isfinite(e).all() else p.vm
                    raise InputError(f"{bad}: contains NaN or inf")
            writer.write_rows(np.arange(start, start + len(chunk)), {
                "electrodes": electrodes,
                "ecg": leads_from_electrodes(electrodes, axis=-2),
                "vm": vm,
                "activation_ms": activation_times(vm, DT_MS),
                "activation_label_ms": activation_labels(vm, DT_MS),
                "apd90_ms": apd90(vm, DT_MS),
            })
        anatomy = np.asarray([p.folder for p in pairs], dtype=object)
        params = {"sim_id": np.arange(n, dtype=np.int64), "anatomy": anatomy,
                  "file": np.asarray([str(p.ecg.relative_to(root)) for p in pairs], dtype=object)}
        splits = make_splits(split_cfg, params["sim_id"], anatomy, seed, "llnl")
        writer.write_params(params)
        writer.write_splits(splits, str(split_cfg["by"]))
        writer.finish(config, source="llnl", campaign="llnl", source_root=str(root))
        h5.close()
        report = check_dataset(tmp)
    report["splits"] = {k: int(v.size) for k, v in splits.items()}
    log.info("wrote %s: %d samples, splits %s", out, n, report["splits"])
    return report
