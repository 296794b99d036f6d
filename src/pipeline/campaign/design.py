"""Sweep design of a campaign: which simulations run, with which parameters, in which shard.

A campaign (config key ``campaigns.<name>``) is a table of ``n_simulations`` rows, one per
simulation, with the columns of :data:`COLUMNS`. The table is a pure function of the
config, so the workflow computes the shard list at DAG-parse time and every row can be
recomputed alone. The design is *prefix-stable*: raising ``n_simulations`` keeps every
existing row unchanged and only appends rows, so only new (or topped-up) shards rerun.

How rows are made (``A`` anatomies, simulation ``i``):

* anatomy ``a = i mod A`` (round-robin), local index ``j = i // A`` within that anatomy;
* continuous parameters (``sigma_l``, ``sigma_t``, ``sigma_fast_endo``,
  ``site_delay_max_ms``) are point ``j`` of a scrambled Sobol sequence of dimension 4 owned
  by anatomy ``a`` (so each anatomy alone is space-filling; a strided subsequence of one
  global Sobol sequence would not be), mapped linearly onto the configured ranges;
* the categorical triple (``pattern``, ``gkr_scale``, ``bcl_ms``) is stratified: the
  combinations are visited in blocks of consecutive local indices, each block in its own
  shuffled order, so every complete block holds every combination exactly once and every
  run of ``len(patterns)`` aligned rows holds every pattern once (:func:`_strata`);
* ``seed`` is a per-simulation 32-bit integer from ``SeedSequence([seed, campaign, i])``;
* with ``heart_pose`` ranges, the pose columns (:data:`~pipeline.params.POSE_COLUMNS`)
  are point ``j`` of a second scrambled Sobol sequence of the anatomy, of dimension 7,
  with its own stream: every other column is that of the same design without a pose;
* shard ``k`` of anatomy ``a`` holds local indices ``k * shard_size ... (k + 1) *
  shard_size - 1`` and is named ``{heart}-{k:03d}``.

Every random stream is a ``numpy.random.SeedSequence`` keyed by the config seed, a CRC32 of
the campaign name, the anatomy index and a purpose tag, so the same config gives the same
table on every machine with the same NumPy and SciPy.
"""

from __future__ import annotations

import itertools
import logging
import warnings
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import resolve
from pipeline.errors import InputError
from pipeline.naming import parametric_heart, parametric_index, shard_name
from pipeline.params import COLUMNS, DTYPES, POSE_COLUMNS, read_params, write_params

log = logging.getLogger(__name__)

#: Continuous parameters, in the order of the Sobol dimensions.
CONTINUOUS: tuple[str, ...] = ("sigma_l", "sigma_t", "sigma_fast_endo", "site_delay_max_ms")
# Purpose tags of the random streams (never change: they fix existing designs).
_TAG_CONTINUOUS, _TAG_STRATA, _TAG_SEED, _TAG_POSE = 1, 2, 3, 4


def _campaign_key(campaign: str) -> int:
    """A stable integer for the campaign name (CRC32 of its UTF-8 bytes)."""
    return zlib.crc32(campaign.encode("utf-8"))


def _resolved(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config validated with every default filled (idempotent)."""
    return resolve(dict(config))


def campaign_config(config: Mapping[str, Any], campaign: str) -> dict[str, Any]:
    """The resolved settings of one campaign.

    Raises
    ------
    InputError
        If the campaign is not configured, or its ranges are inconsistent.
    """
    return _cfg(_resolved(config), campaign)


def _cfg(full: Mapping[str, Any], campaign: str) -> dict[str, Any]:
    campaigns = full["campaigns"]
    if campaign not in campaigns:
        raise InputError(f"campaign '{campaign}' is not in config key 'campaigns' "
                         f"(configured: {sorted(campaigns) or 'none'})")
    cfg = campaigns[campaign]
    for name, (low, high) in cfg["conductivity"].items():
        if low > high:
            raise InputError(f"config key 'campaigns.{campaign}.conductivity.{name}': "
                             f"low {low} > high {high}")
    if cfg["conductivity"]["sigma_t"][1] > cfg["conductivity"]["sigma_l"][0]:
        raise InputError(f"config key 'campaigns.{campaign}.conductivity': sigma_t's high "
                         f"{cfg['conductivity']['sigma_t'][1]} exceeds sigma_l's low "
                         f"{cfg['conductivity']['sigma_l'][0]}; transverse must stay below "
                         "longitudinal")
    low, high = cfg["site_delay_ms"]
    if low > high:
        raise InputError(f"config key 'campaigns.{campaign}.site_delay_ms': low {low} > "
                         f"high {high}")
    _check_pose(full, campaign, cfg["heart_pose"])
    return cfg


def _check_pose(full: Mapping[str, Any], campaign: str, pose: Mapping[str, Any]) -> None:
    """The pose ranges: a torso scale range in order; a shift or torso scale only in a
    bounded torso (``simulate.ecg_medium: torso``), where they mean something."""
    key = f"config key 'campaigns.{campaign}.heart_pose"
    low, high = pose["torso_scale"]
    if low > high:
        raise InputError(f"{key}.torso_scale': low {low} > high {high}")
    medium = full.get("simulate", {}).get("ecg_medium", "infinite")
    moves = any(v != 0 for v in pose["shift_mm"]) or list(pose["torso_scale"]) != [1.0, 1.0]
    if moves and medium != "torso":
        raise InputError(f"{key}': shift_mm {list(pose['shift_mm'])} and torso_scale "
                         f"{list(pose['torso_scale'])} move the heart in a bounded torso, but "
                         f"simulate.ecg_medium is {medium!r}; set it to 'torso', or keep "
                         "shift_mm [0, 0, 0] and torso_scale [1, 1] (rotation_deg applies to "
                         "both media)")


def _pose_varies(cfg: Mapping[str, Any]) -> bool:
    pose = cfg["heart_pose"]
    return (any(v != 0 for v in pose["rotation_deg"]) or any(v != 0 for v in pose["shift_mm"])
            or list(pose["torso_scale"]) != [1.0, 1.0])


def campaign_anatomies(config: Mapping[str, Any], campaign: str) -> list[str]:
    """Heart names of a campaign, in round-robin order.

    An empty ``anatomies`` list means every configured heart: the parametric ones
    (``param000``...) then the meshes, in config order. Named hearts must be configured.
    """
    return _hearts(_resolved(config), campaign)


def _hearts(full: Mapping[str, Any], campaign: str) -> list[str]:
    cfg = _cfg(full, campaign)
    configured = [parametric_heart(i) for i in range(full["anatomy"]["parametric"]["count"])]
    configured += [m["name"] for m in full["anatomy"]["meshes"]]
    hearts = list(cfg["anatomies"]) or configured
    unknown = [h for h in hearts if h not in configured]
    if unknown:
        raise InputError(f"config key 'campaigns.{campaign}.anatomies': {unknown} are not "
                         f"configured hearts (configured: {configured})")
    if not hearts:
        raise InputError(f"campaign '{campaign}' has no anatomy: configure "
                         "anatomy.parametric.count or anatomy.meshes")
    return hearts


def _per_anatomy_counts(n: int, n_anatomies: int) -> list[int]:
    """Number of simulations of each anatomy under round-robin assignment."""
    return [n // n_anatomies + (a < n % n_anatomies) for a in range(n_anatomies)]


def _shard_layout(full: Mapping[str, Any], campaign: str) -> list[tuple[str, int, int, int]]:
    """(name, anatomy index, first local index, row count) of every shard, in order."""
    cfg = _cfg(full, campaign)
    hearts = _hearts(full, campaign)
    size = int(cfg["shard_size"])
    layout = []
    for a, count in enumerate(_per_anatomy_counts(int(cfg["n_simulations"]), len(hearts))):
        for k, start in enumerate(range(0, count, size)):
            layout.append((shard_name(hearts[a], k), a, start, min(size, count - start)))
    return layout


def shard_names(config: Mapping[str, Any], campaign: str) -> list[str]:
    """Names ``{heart}-{NNN}`` of the campaign's shards, computed from the config alone.

    Called by the workflow at DAG-parse time (``workflow/rules/common.smk``).
    """
    return [name for name, *_ in _shard_layout(_resolved(config), campaign)]


def shard_sim_ids(config: Mapping[str, Any], campaign: str, shard: str) -> np.ndarray:
    """Campaign indices (``sim_id``) of a shard's simulations, int64 (n_rows,)."""
    return _shard_ids(_resolved(config), campaign, shard)


def _shard_ids(full: Mapping[str, Any], campaign: str, shard: str) -> np.ndarray:
    n_anatomies = len(_hearts(full, campaign))
    layout = _shard_layout(full, campaign)
    for name, a, start, count in layout:
        if name == shard:
            return a + n_anatomies * np.arange(start, start + count, dtype=np.int64)
    raise InputError(f"shard '{shard}' is not in campaign '{campaign}' "
                     f"(shards: {', '.join(n for n, *_ in layout)})")


def _anatomy_subset(full: Mapping[str, Any], hearts: Sequence[str]) -> dict[str, Any]:
    """The least ``anatomy`` section under which ``hearts`` are all configured."""
    params = [i for i in map(parametric_index, hearts) if i is not None]
    meshes = [m for m in full["anatomy"]["meshes"] if m["name"] in hearts]
    return {"parametric": {"count": max(params) + 1 if params else 0},
            "meshes": [{"name": m["name"], "path": m["path"]} for m in meshes]}


def shard_settings(config: Mapping[str, Any], campaign: str, shard: str) -> dict[str, Any]:
    """The smallest ``--settings`` that reproduce one shard's table.

    Holds the seed, the campaign with its anatomies spelled out and ``n_simulations``
    cut to the shard's last ``sim_id`` + 1, without ``split``, and the least ``anatomy``
    section that configures those hearts (names; mesh paths). Growing the campaign leaves
    this mapping unchanged for every shard whose rows do not change, so Snakemake's
    params trigger reruns only new or topped-up shards.
    """
    full = _resolved(config)
    out = table_settings(full, campaign)
    out["campaigns"][campaign]["n_simulations"] = int(_shard_ids(full, campaign, shard)[-1]) + 1
    return out


def table_settings(config: Mapping[str, Any], campaign: str) -> dict[str, Any]:
    """The smallest ``--settings`` that reproduce the whole design table of a campaign.

    The seed and the campaign with its anatomies spelled out, without ``split`` (which
    does not change the design) and without the other campaigns. ``heart_pose`` only when
    it draws a pose (then with ``simulate.ecg_medium``, which decides whether a shift or a
    torso scale is allowed), so the settings of a design without one are those from
    before the pose existed, and Snakemake reruns nothing.
    """
    full = _resolved(config)
    cfg = {k: v for k, v in _cfg(full, campaign).items() if k != "split"}
    cfg["anatomies"] = _hearts(full, campaign)
    out = {"seed": int(full["seed"]), "anatomy": _anatomy_subset(full, cfg["anatomies"]),
           "campaigns": {campaign: cfg}}
    if _pose_varies(cfg):
        out["simulate"] = {"ecg_medium": full["simulate"]["ecg_medium"]}
    else:
        del cfg["heart_pose"]
    return out


def _unit_samples(cfg: Mapping[str, Any], seed: int, ckey: int, anatomy: int,
                  local: np.ndarray, tag: int = _TAG_CONTINUOUS,
                  dim: int = len(CONTINUOUS)) -> np.ndarray:
    """Points ``local`` of anatomy ``anatomy``'s sequence ``tag`` in [0, 1)^dim, float64
    (n, dim)."""
    if local.size == 0:
        return np.zeros((0, dim))
    n = int(local.max()) + 1
    ss = np.random.SeedSequence([seed, ckey, anatomy, tag])
    if cfg["sampling"] == "sobol":
        from scipy.stats import qmc

        sobol = qmc.Sobol(d=dim, scramble=True, rng=np.random.default_rng(ss))
        with warnings.catch_warnings():  # balance needs n = 2^m; prefixes are still fine
            warnings.simplefilter("ignore", UserWarning)
            points = sobol.random(n)
    else:
        points = np.random.default_rng(ss).random((n, dim))
    return points[local]


def _pose_samples(cfg: Mapping[str, Any], seed: int, ckey: int, anatomy: int,
                  local: np.ndarray) -> np.ndarray:
    """The :data:`~pipeline.params.POSE_COLUMNS` of the given local indices of one
    anatomy, float64 (n, 7): points of the anatomy's own 7-dimensional sequence (stream
    :data:`_TAG_POSE`, so the other columns are those of the same design without a pose)
    mapped onto ``[-r, r]`` per rotation and shift and onto the torso scale's range."""
    unit = _unit_samples(cfg, seed, ckey, anatomy, local, _TAG_POSE, len(POSE_COLUMNS))
    pose = cfg["heart_pose"]
    half = np.array(list(pose["rotation_deg"]) + list(pose["shift_mm"]), dtype=np.float64)
    low, high = (float(v) for v in pose["torso_scale"])
    return np.concatenate([(2.0 * unit[:, :6] - 1.0) * half + 0.0,   # no -0.0
                           low + (high - low) * unit[:, 6:]], axis=1)


def _strata(cfg: Mapping[str, Any], seed: int, ckey: int, anatomy: int,
            local: np.ndarray) -> list[tuple[str, float, float]]:
    """(pattern, gkr_scale, bcl_ms) of the given local indices of one anatomy.

    Local indices run in blocks of ``P * G`` (``P`` patterns, ``G`` (gkr_scale, bcl_ms)
    pairs). Inside a block, position ``p = r * P + q`` gets pattern ``perm_P[q]`` and pair
    ``perm_G[(r + q) mod G]``: every block holds every combination once, every run of
    ``P`` aligned positions holds every pattern once, and those ``P`` runs use distinct
    pairs when ``P <= G``, so even a short prefix is spread over all factors.
    """
    patterns = list(cfg["patterns"])
    pairs = list(itertools.product(cfg["gkr_scale"], cfg["bcl_ms"]))
    n_p, n_g = len(patterns), len(pairs)
    orders: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    out = []
    for j in local.tolist():
        block, pos = divmod(j, n_p * n_g)
        if block not in orders:
            rng = np.random.default_rng(np.random.SeedSequence(
                [seed, ckey, anatomy, _TAG_STRATA, block]))
            orders[block] = (rng.permutation(n_p), rng.permutation(n_g))
        perm_p, perm_g = orders[block]
        r, q = divmod(pos, n_p)
        gkr, bcl = pairs[perm_g[(r + q) % n_g]]
        out.append((patterns[perm_p[q]], gkr, bcl))
    return out


def _sim_seed(seed: int, ckey: int, sim_id: int) -> int:
    """Per-simulation integer seed in [0, 2^32)."""
    ss = np.random.SeedSequence([seed, ckey, _TAG_SEED, sim_id])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def design_rows(config: Mapping[str, Any], campaign: str,
                sim_ids: Sequence[int] | np.ndarray) -> pd.DataFrame:
    """Rows of the design for the given ``sim_id`` values (any subset, any order).

    Each row depends only on the config and its ``sim_id``, never on ``n_simulations``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`; conductivities in S/m, times in ms, jitter in mm.
    """
    full = _resolved(config)
    cfg = _cfg(full, campaign)
    hearts = _hearts(full, campaign)
    seed, ckey = int(full["seed"]), _campaign_key(campaign)
    ids = np.asarray(sim_ids, dtype=np.int64).reshape(-1)
    if ids.size and ids.min() < 0:
        raise InputError(f"sim_id must be >= 0, got {int(ids.min())}")
    ranges = [cfg["conductivity"]["sigma_l"], cfg["conductivity"]["sigma_t"],
              cfg["conductivity"]["sigma_fast_endo"], cfg["site_delay_ms"]]
    low = np.array([r[0] for r in ranges], dtype=np.float64)
    high = np.array([r[1] for r in ranges], dtype=np.float64)
    columns: dict[str, list[Any]] = {c: [None] * ids.size for c in COLUMNS}
    anatomy_of = ids % len(hearts)
    for a in np.unique(anatomy_of).tolist():
        rows = np.flatnonzero(anatomy_of == a)
        local = ids[rows] // len(hearts)
        values = low + (high - low) * _unit_samples(cfg, seed, ckey, a, local)
        strata = _strata(cfg, seed, ckey, a, local)
        for r, row in enumerate(rows.tolist()):
            sim_id = int(ids[row])
            pattern, gkr, bcl = strata[r]
            record = {"sim_id": sim_id, "anatomy": hearts[a], "pattern": pattern,
                      "gkr_scale": float(gkr), "bcl_ms": float(bcl),
                      "seed": _sim_seed(seed, ckey, sim_id),
                      "site_jitter_mm": float(cfg["site_jitter_mm"])}
            record.update({name: float(values[r, d]) for d, name in enumerate(CONTINUOUS)})
            for c in COLUMNS:
                columns[c][row] = record[c]
        if _pose_varies(cfg):
            pose = _pose_samples(cfg, seed, ckey, a, local)
            for d, c in enumerate(POSE_COLUMNS):
                column = columns.setdefault(c, [None] * ids.size)
                for r, row in enumerate(rows.tolist()):
                    column[row] = float(pose[r, d])
    names = list(COLUMNS) + [c for c in POSE_COLUMNS if c in columns]
    return pd.DataFrame(columns, columns=names).astype({c: DTYPES[c] for c in names})


def design_table(config: Mapping[str, Any], campaign: str) -> pd.DataFrame:
    """The whole design of a campaign, sorted by ``sim_id`` (n_simulations rows)."""
    full = _resolved(config)
    return design_rows(full, campaign, np.arange(int(_cfg(full, campaign)["n_simulations"])))


def shard_table(config: Mapping[str, Any], campaign: str, shard: str) -> pd.DataFrame:
    """The design rows of one shard, sorted by ``sim_id``."""
    full = _resolved(config)
    return design_rows(full, campaign, _shard_ids(full, campaign, shard))


def write_design(table: pd.DataFrame, path: str | Path) -> None:
    """Write a design table as CSV (full float precision), atomically."""
    write_params(table, path)


def read_design(path: str | Path) -> pd.DataFrame:
    """Read and check a design CSV written by :func:`write_design` (every anatomy).

    Raises
    ------
    InputError
        Naming the file and the missing columns or bad values.
    """
    return read_params(path, one_anatomy=False)
