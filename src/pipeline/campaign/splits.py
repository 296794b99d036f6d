"""Train / validation / test splits of a dataset, by sample or by anatomy.

Both splits are reproducible from the config seed and stable when a campaign grows:

* **by sample** (the paper's random 95/5): every sample gets a uniform key
  ``u(sim_id)`` from ``SeedSequence([seed, campaign, sim_id])``; the ``n_test`` smallest
  keys form the test split, the next ``n_val`` the validation split. A sample's key never
  depends on the other samples, so growing the campaign moves few samples between splits.
* **by anatomy** (held-out hearts): hearts are ordered by the same kind of key on their
  name; the first ``round(test_fraction * H)`` hearts (at least one if the fraction is
  positive) are the test hearts, the next ones the validation hearts.
* **by heart and sample** (seen and unseen hearts in one test split): held-out test hearts
  as by anatomy, plus a by-sample split of the other hearts' samples.

``n = round(fraction * N)`` samples, raised to 1 when the fraction is positive and there
are at least three samples, so that a tiny CI dataset still has a validation sample; by
anatomy, a positive fraction always holds out at least one heart (an error if none is left
for training).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.errors import InputError

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
_TAG_SAMPLE, _TAG_ANATOMY = 11, 12


def _count(fraction: float, total: int) -> int:
    n = int(round(fraction * total))
    if fraction > 0 and n == 0 and total >= 3:
        n = 1
    return n


def held_out_counts(n_items: int, val_fraction: float, test_fraction: float,
                    by: str = "sample") -> tuple[int, int]:
    """(validation, test) counts of samples (``by="sample"``) or hearts (``"anatomy"``).

    The split keeps a training set only if their sum is below ``n_items``; the config
    check (:mod:`pipeline.relations`) uses this before any simulation runs.
    """
    if by == "anatomy":
        return tuple(max(int(f > 0), int(round(f * n_items)))  # type: ignore[return-value]
                     for f in (val_fraction, test_fraction))
    return _count(val_fraction, n_items), _count(test_fraction, n_items)


def _key(seed: int, campaign: str, tag: int, item: int) -> float:
    ss = np.random.SeedSequence([seed, zlib.crc32(campaign.encode()), tag, item])
    return float(ss.generate_state(2, dtype=np.uint32) @ np.array([2.0**-32, 2.0**-64]))


def split_by_sample(sim_ids: Sequence[int] | np.ndarray, val_fraction: float,
                    test_fraction: float, seed: int, campaign: str) -> dict[str, np.ndarray]:
    """Random split of samples.

    Parameters
    ----------
    sim_ids
        ``(N,)`` campaign index of each sample (row order of the dataset).
    val_fraction, test_fraction
        Fractions of the N samples.
    seed, campaign
        Config seed and campaign name (the random key of each sample).

    Returns
    -------
    dict
        ``train``, ``val``, ``test`` -> sorted int64 row indices, disjoint, covering 0..N-1.
    """
    ids = np.asarray(sim_ids, dtype=np.int64)
    n = ids.size
    n_val, n_test = held_out_counts(n, val_fraction, test_fraction, "sample")
    if n_test + n_val >= n and n > 0:
        raise InputError(f"split: {n_val} validation + {n_test} test samples leave no "
                         f"training sample out of {n}; lower the fractions")
    keys = np.array([_key(seed, campaign, _TAG_SAMPLE, int(i)) for i in ids])
    order = np.argsort(keys, kind="stable")
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def split_by_anatomy(anatomy: Sequence[str] | np.ndarray, val_fraction: float,
                     test_fraction: float, seed: int, campaign: str) -> dict[str, np.ndarray]:
    """Split with whole hearts held out for validation and test.

    Parameters
    ----------
    anatomy
        ``(N,)`` heart name of each sample.

    Returns
    -------
    dict
        As :func:`split_by_sample`; every heart's samples fall in one split.

    Raises
    ------
    InputError
        If there are too few hearts to leave one for training.
    """
    names = np.asarray([str(a) for a in anatomy], dtype=object)
    hearts = sorted(set(names.tolist()))
    n_val, n_test = held_out_counts(len(hearts), val_fraction, test_fraction, "anatomy")
    if n_test + n_val >= len(hearts):
        raise InputError(f"split by anatomy: {len(hearts)} heart(s) {hearts} cannot give "
                         f"{n_val} validation and {n_test} test heart(s) and keep one for "
                         "training; add hearts or use split.by: sample")
    keys = [_key(seed, campaign, _TAG_ANATOMY, zlib.crc32(h.encode())) for h in hearts]
    ordered = [hearts[i] for i in np.argsort(keys, kind="stable")]
    groups = {"test": ordered[:n_test], "val": ordered[n_test:n_test + n_val],
              "train": ordered[n_test + n_val:]}
    log.info("held-out hearts: val %s, test %s", groups["val"], groups["test"])
    return {name: np.flatnonzero(np.isin(names, members)).astype(np.int64)
            for name, members in groups.items()}


def split_by_heart_and_sample(anatomy: Sequence[str] | np.ndarray,
                              sim_ids: Sequence[int] | np.ndarray, val_fraction: float,
                              test_fraction: float, seed: int,
                              campaign: str) -> dict[str, np.ndarray]:
    """Held-out hearts and held-out samples of the other hearts, both in the test split.

    The first ``round(test_fraction * H)`` hearts (at least one; ordered as in
    :func:`split_by_anatomy`) go to the test split whole (unseen hearts); the samples of
    the remaining hearts are split by sample (:func:`split_by_sample` keys) with
    ``val_fraction`` and ``test_fraction`` of them for validation and test (seen hearts).
    Evaluation then reports the test MAE on seen and unseen hearts side by side.

    Parameters
    ----------
    anatomy
        ``(N,)`` heart name of each sample.
    sim_ids
        ``(N,)`` campaign index of each sample.

    Returns
    -------
    dict
        As :func:`split_by_sample`.

    Raises
    ------
    InputError
        With fewer than two hearts.
    """
    names = np.asarray([str(a) for a in anatomy], dtype=object)
    hearts = sorted(set(names.tolist()))
    n_test = max(1, int(round(test_fraction * len(hearts))))
    if n_test >= len(hearts):
        raise InputError(f"split heart_and_sample: {len(hearts)} heart(s) {hearts} cannot hold "
                         f"out {n_test} test heart(s) and keep one for training")
    keys = [_key(seed, campaign, _TAG_ANATOMY, zlib.crc32(h.encode())) for h in hearts]
    held = [hearts[i] for i in np.argsort(keys, kind="stable")[:n_test]]
    unseen = np.flatnonzero(np.isin(names, held))
    rest = np.flatnonzero(~np.isin(names, held))
    ids = np.asarray(sim_ids, dtype=np.int64)
    inner = split_by_sample(ids[rest], val_fraction, test_fraction, seed, campaign)
    log.info("held-out test hearts %s (%d samples); seen hearts split by sample", held,
             unseen.size)
    return {"train": np.sort(rest[inner["train"]]), "val": np.sort(rest[inner["val"]]),
            "test": np.sort(np.concatenate([rest[inner["test"]], unseen]))}


def make_splits(split_cfg: Mapping[str, Any], sim_ids: np.ndarray, anatomy: np.ndarray,
                seed: int, campaign: str) -> dict[str, np.ndarray]:
    """Splits from a campaign's ``split`` settings (``by``, ``val_fraction``, ``test_fraction``)."""
    val, test = float(split_cfg["val_fraction"]), float(split_cfg["test_fraction"])
    if split_cfg["by"] == "anatomy":
        return split_by_anatomy(anatomy, val, test, seed, campaign)
    if split_cfg["by"] == "heart_and_sample":
        return split_by_heart_and_sample(anatomy, sim_ids, val, test, seed, campaign)
    return split_by_sample(sim_ids, val, test, seed, campaign)
