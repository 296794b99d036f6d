"""Relations between config keys that the schema cannot express, checked before any job.

The schema checks each key alone; :func:`check_relations` checks the keys against each
other, with the rules the stages rely on, so that a config which would fail inside a job
(a campaign asking for a cycle length the cells stage never paced fails 47 s into a
simulate job) fails at workflow start instead. ``workflow/rules/common.smk`` calls it
right after ``validate``. Every problem names the dotted key path(s); all are reported at
once as one :class:`~pipeline.errors.InputError`.

Relations checked:

* ``cells.bcl_ms`` whole numbers of ``cells.dt_ms`` steps; ``cells.max_beats >= min_beats``;
* ``cells.celltypes`` hold every cell type the anatomy layers make
  (``anatomy.celltype.*_fraction``), when a campaign simulates;
* ``simulate.record_every_ms`` a multiple of ``simulate.dt_ms``, ``simulate.duration_ms``
  a multiple (at least 2) of ``record_every_ms``;
* mesh names unique and not a parametric heart's name; mesh files exist;
* per campaign: ``anatomies`` are configured hearts (and there is one); ``bcl_ms`` and
  ``gkr_scale`` values are in ``cells.bcl_ms`` / ``cells.gkr_scale`` (the cells stage
  makes their initial states); conductivity and site-delay ranges ordered, ``sigma_t``'s
  high not above ``sigma_l``'s low; the split leaves a training set;
* ``learn.campaign`` names a campaign;
* ``hemo.patients.csv`` exists when set (and hemo is enabled);
* ``patients.network`` and, when enabled, ``patients.adapt.network`` are trained
  (in ``learn.networks``); each ``patients.recordings`` entry is a file, or a WFDB record
  whose ``.hea`` header exists; the names are usable as folder names.

Not checked, because nothing relies on it: shard sizes against ``simulate.batch_size`` (a
shard runs in ``ceil(shard_size / batch_size)`` batches, the last one smaller); network
names (``learn.networks``: the presets live with the torch code, which this module does not
import; ``pipeline train`` rejects an unknown one at once).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline.config import resolve
from pipeline.errors import InputError
from pipeline.naming import parametric_heart


def _multiple(value: float, step: float, rel: float = 1e-6) -> int | None:
    """``value / step`` if it is a whole number >= 1 (within ``rel``), else None."""
    n = round(value / step)
    return n if n >= 1 and abs(n * step - value) <= rel * max(value, 1.0) else None


def _in(values: Any, pool: Any) -> list[float]:
    """Values with no close match in ``pool`` (as the simulate stage matches them)."""
    return [v for v in values if not any(math.isclose(v, p, rel_tol=1e-9, abs_tol=1e-9)
                                         for p in pool)]


def _cells(full: Mapping[str, Any]) -> Iterator[str]:
    cells = full["cells"]
    for bcl in cells["bcl_ms"]:
        if _multiple(bcl, cells["dt_ms"]) is None:
            yield (f"config key 'cells.bcl_ms': {bcl} ms is not a whole number of "
                   f"'cells.dt_ms' = {cells['dt_ms']} ms steps")
    if cells["max_beats"] < cells["min_beats"]:
        yield (f"config key 'cells.max_beats' ({cells['max_beats']}) must be >= "
               f"'cells.min_beats' ({cells['min_beats']})")
    if not full["campaigns"]:
        return
    layers = full["anatomy"]["celltype"]
    endo, mid = layers["endo_fraction"], layers["mid_fraction"]
    needed = [name for name, used in (("endo", endo > 0), ("M", mid > 0),
                                      ("epi", endo + mid < 1)) if used]
    missing = [c for c in needed if c not in cells["celltypes"]]
    if missing:
        yield (f"config key 'cells.celltypes': lacks {missing}, which the anatomy's layers "
               f"('anatomy.celltype.endo_fraction' {endo}, 'mid_fraction' {mid}) contain")


def _simulate(full: Mapping[str, Any]) -> Iterator[str]:
    sim = full["simulate"]
    dt, rec, dur = sim["dt_ms"], sim["record_every_ms"], sim["duration_ms"]
    if _multiple(rec, dt, 1e-9) is None:
        yield (f"config key 'simulate.record_every_ms' ({rec}) must be a multiple of "
               f"'simulate.dt_ms' ({dt})")
    n = _multiple(dur, rec, 1e-9)
    if n is None or n < 2:
        yield (f"config key 'simulate.duration_ms' ({dur}) must be a multiple (>= 2) of "
               f"'simulate.record_every_ms' ({rec})")


def _meshes(full: Mapping[str, Any], base: Path) -> Iterator[str]:
    anatomy = full["anatomy"]
    params = {parametric_heart(i) for i in range(anatomy["parametric"]["count"])}
    seen: set[str] = set()
    for i, mesh in enumerate(anatomy["meshes"]):
        key = f"anatomy.meshes.{i}"
        if mesh["name"] in seen or mesh["name"] in params:
            yield (f"config key '{key}.name': heart name {mesh['name']!r} is already used "
                   "(mesh names must be unique and differ from param000, param001, ...)")
        seen.add(mesh["name"])
        if not (base / mesh["path"]).is_file():
            yield f"config key '{key}.path': mesh file {mesh['path']} not found"


def _hearts(full: Mapping[str, Any]) -> list[str]:
    anatomy = full["anatomy"]
    return ([parametric_heart(i) for i in range(anatomy["parametric"]["count"])]
            + [m["name"] for m in anatomy["meshes"]])


def _campaign(full: Mapping[str, Any], name: str, cfg: Mapping[str, Any]) -> Iterator[str]:
    key, cells, configured = f"campaigns.{name}", full["cells"], _hearts(full)
    unknown = [h for h in cfg["anatomies"] if h not in configured]
    if unknown:
        yield (f"config key '{key}.anatomies': {unknown} are not configured hearts "
               f"('anatomy.parametric.count', 'anatomy.meshes': {configured})")
    hearts = list(cfg["anatomies"]) or configured
    if not hearts:
        yield (f"config key '{key}': no anatomy to simulate; set 'anatomy.parametric.count' "
               "or 'anatomy.meshes'")
    for what in ("bcl_ms", "gkr_scale"):
        missing = _in(cfg[what], cells[what])
        if missing:
            yield (f"config key '{key}.{what}': {missing} not in 'cells.{what}' "
                   f"{list(cells[what])}, so the cells stage makes no initial state for them")
    yield from _ranges(key, cfg)
    yield from _split(key, cfg, len(hearts))


def _ranges(key: str, cfg: Mapping[str, Any]) -> Iterator[str]:
    for name, (low, high) in cfg["conductivity"].items():
        if low > high:
            yield f"config key '{key}.conductivity.{name}': low {low} > high {high}"
    sigma_t_high, sigma_l_low = cfg["conductivity"]["sigma_t"][1], cfg["conductivity"]["sigma_l"][0]
    if sigma_t_high > sigma_l_low:
        yield (f"config key '{key}.conductivity.sigma_t': high {sigma_t_high} exceeds "
               f"'{key}.conductivity.sigma_l' low {sigma_l_low}")
    low, high = cfg["site_delay_ms"]
    if low > high:
        yield f"config key '{key}.site_delay_ms': low {low} > high {high}"


def _split(key: str, cfg: Mapping[str, Any], n_hearts: int) -> Iterator[str]:
    from pipeline.campaign.splits import held_out_counts

    split = cfg["split"]
    if split["by"] == "heart_and_sample":
        n_test_hearts = max(1, int(round(split["test_fraction"] * n_hearts)))
        if n_test_hearts >= n_hearts:
            yield (f"config key '{key}.split.by': heart_and_sample holds out {n_test_hearts} "
                   f"test heart(s) of the campaign's {n_hearts} and keeps none for training "
                   "(add hearts or use by: sample)")
            return
    n = n_hearts if split["by"] == "anatomy" else int(cfg["n_simulations"])
    if n == 0:
        return
    n_val, n_test = held_out_counts(n, split["val_fraction"], split["test_fraction"],
                                    split["by"])
    if n_val + n_test >= n:
        unit = "heart(s)" if split["by"] == "anatomy" else "simulation(s)"
        yield (f"config key '{key}.split': {n_val} validation + {n_test} test of {n} {unit} "
               f"leave none for training (lower the fractions"
               + (", add hearts or use by: sample)" if split["by"] == "anatomy" else ")"))


def _learn_hemo(full: Mapping[str, Any], base: Path) -> Iterator[str]:
    name = full["learn"]["campaign"]
    if name is not None and name not in full["campaigns"]:
        yield (f"config key 'learn.campaign': {name!r} is not a campaign "
               f"('campaigns': {sorted(full['campaigns']) or 'none'})")
    csv = full["hemo"]["patients"]["csv"]
    if full["hemo"]["enabled"] and csv and not (base / csv).is_file():
        yield f"config key 'hemo.patients.csv': file {csv} not found"


def recording_input(path: str) -> str:
    """The file a recording path stands for: the path itself, or for a WFDB record
    written without extension (``.../00001_hr``) its header ``.hea``."""
    return path if Path(path).suffix.lower() in RECORDING_SUFFIXES else path + ".hea"


#: File suffixes a ``patients.recordings`` path may carry (else it is a WFDB record name).
RECORDING_SUFFIXES = (".hea", ".mat", ".dat", ".csv", ".npy", ".txt")


def _patients(full: Mapping[str, Any], base: Path) -> Iterator[str]:
    pat, trained = full["patients"], list(full["learn"]["networks"])
    if pat["recordings"] or pat["network"] is not None:
        net = pat["network"] if pat["network"] is not None else (trained or [None])[-1]
        if net not in trained:
            yield (f"config key 'patients.network': {net!r} is not trained "
                   f"('learn.networks': {trained})")
    if pat["adapt"]["enabled"] and pat["adapt"]["network"] not in trained:
        yield (f"config key 'patients.adapt.network': {pat['adapt']['network']!r} is not "
               f"trained ('learn.networks': {trained})")
    for name, path in pat["recordings"].items():
        key = f"patients.recordings.{name}"
        if not name.replace("_", "").replace("-", "").isalnum():
            yield (f"config key '{key}': name {name!r} must be letters, digits, '_' or '-' "
                   "(it names the output folder)")
        if not (base / recording_input(path)).is_file():
            yield (f"config key '{key}': recording {path} not found (expected a file, or a "
                   f"WFDB record with {recording_input(path)})")


def problems(config: Mapping[str, Any] | None, base: str | Path | None = None) -> list[str]:
    """Every broken relation of ``config`` (validated and defaults filled first), as text."""
    full = resolve(dict(config or {}))
    where = Path(base) if base is not None else Path.cwd()
    found = [*_cells(full), *_simulate(full), *_meshes(full, where), *_learn_hemo(full, where),
             *_patients(full, where)]
    for name, cfg in full["campaigns"].items():
        found += _campaign(full, name, cfg)
    return found


def check_relations(config: Mapping[str, Any] | None, base: str | Path | None = None) -> None:
    """Raise :class:`InputError` listing every broken cross-key relation of ``config``.

    Parameters
    ----------
    config
        A (partial) workflow config; it is validated and completed with the defaults.
    base
        Folder that relative file paths (meshes, patient CSV) are relative to (default:
        the current folder, the workflow's working directory).
    """
    found = problems(config, base)
    if found:
        raise InputError("inconsistent configuration:\n  " + "\n  ".join(found))
