"""The CV calibration of a heart's monodomain shards, found once and kept in a file.

On a coarse grid the monodomain conducts too slowly, so the simulate stage scales the
sampled conductivities (:mod:`pipeline.monodomain.cv`): with ``simulate.
target_cv_mm_per_ms`` one factor for every conductivity (mode ``target_cv``); else, with
``simulate.calibrate_directions``, one factor each for sigma_l and sigma_t, restoring the
0.1 mm planar-wave CV of a cable, and one for sigma_fast_endo, restoring the 0.1 mm front
speed in the fast layer on its myocardium (:mod:`pipeline.monodomain.layer`; mode
``directions``; since version 2 of the file: sigma_l's factor made the layer 3 / 12 / 35 %
too fast at 0.5 / 1 / 2 mm). With ``simulate.cv_relation: continuum`` the targets are the
converged monodomain's instead (:func:`pipeline.monodomain.cv_relation.cv_from_sigma`; the
layer's: its relation CV times its load, as the reaction-eikonal mode sets it). The
reaction-eikonal model needs none.

A calibration is a pure function of its *inputs* (:func:`calibration_inputs`: the mode,
the grid's dx, dt, chi, Cm, the target CV, the cable's cell model and state) and of the
reference conductivities it is found at. The workflow finds it once per campaign and heart
(``pipeline calibrate`` -> ``results/calibration/{campaign}/{heart}.json``) at the middle of
the campaign's conductivity ranges, and every shard of that heart reads it
(``pipeline simulate --calibration FILE``), refusing with :class:`~pipeline.errors.
CalibrationMismatch` a file made for other inputs or for ranges its rows fall outside.
Without a file a shard finds it itself at its rows' median conductivities (standalone use).

Every cable result (a target-CV or per-direction calibration, a propagation check) is a
pure function of its float64 inputs, so it is also kept within the process (a study, a
test session, a notebook: the same cable is not run twice). Per-direction calibrations are
kept between processes too where the environment variable ``PIPELINE_CALIBRATION_CACHE``
names a JSON file (:func:`direction_calibration`; the resolution study uses it).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import CalibrationMismatch, InputError

log = logging.getLogger(__name__)

#: The format tag and version of a calibration file (2: the fast layer's own scale).
FORMAT, VERSION = "pipeline calibration", 2
#: The cable's cell model and state: TP06 endocardial cells from TP06's own initial state
#: (:func:`pipeline.cell.tp06.initial_state`), not the cells stage's steady states.
CELL_MODEL, CELLTYPE, CELL_STATE = "tp06", "endo", "tp06.initial_state"
#: The grid whose planar-wave CVs the per-direction mode restores (mm, ms).
REFERENCE_DX_MM, REFERENCE_DT_MS = 0.1, 0.005
#: Conductivities (S/m) of a shard without rows to take a median of (sigma_l, sigma_t,
#: sigma_fast_endo): the middle of the schema's default ranges.
DEFAULT_REFERENCE = (0.15, 0.04, 0.75)
#: The conductivities whose ranges a calibration file records and a shard's rows must obey.
RANGE_KEYS = ("sigma_l", "sigma_t", "sigma_fast_endo")
#: Below this cable CV (mm/ms) a conductivity counts as blocking on the grid.
MIN_CV_MM_PER_MS = 0.02
#: Fields of :class:`ShardCalibration` a calibration file may omit (older files).
OPTIONAL_FIELDS = ("ranges", "wall_s", "propagation")

#: Cable results found in this process (calibrations and propagation checks), by their
#: inputs (JSON key); the values are JSON-like records, copied out on every use.
_CALIBRATIONS: dict[str, Any] = {}
#: A JSON file that keeps calibrations between processes (the environment variable
#: ``PIPELINE_CALIBRATION_CACHE``; unset: none). The calibration is a pure function of its
#: key (sigma_l, sigma_t, dx, dt, chi, Cm), so reusing it changes nothing but the time.
CALIBRATION_CACHE = os.environ.get("PIPELINE_CALIBRATION_CACHE")


def _read_cache(path: str | None, key: str) -> dict[str, Any] | None:
    if not path or not Path(path).is_file():
        return None
    try:
        return json.loads(Path(path).read_text()).get(key)
    except (OSError, ValueError):
        log.warning("calibration cache %s is unreadable; ignored", path)
        return None


def _write_cache(path: str | None, key: str, value: dict[str, Any]) -> None:
    if not path:
        return
    from pipeline.io import atomic_path

    table = {}
    if Path(path).is_file():
        try:
            table = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            table = {}
    table[key] = value
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(table, indent=1))


def direction_calibration(sigma_l: float, sigma_t: float, dx: float, dt: float,
                          chi_per_mm: float = 140.0, cm_uF_per_cm2: float = 1.0,
                          cv_relation: str = "continuum") -> dict[str, Any]:
    """:func:`pipeline.monodomain.cv.calibrate_directions` as ``{"l": ..., "t": ...}``
    records, reused within the process and from :data:`CALIBRATION_CACHE` when set.

    ``cv_relation`` "cable_0.1mm": the targets are the CVs of cables at
    :data:`REFERENCE_DX_MM`; "continuum": the converged relation's
    (:func:`pipeline.monodomain.cv_relation.cv_from_sigma`).
    """
    from pipeline.monodomain.cv import calibrate_directions
    from pipeline.monodomain.cv_relation import cv_from_sigma

    key = [round(sigma_l, 12), round(sigma_t, 12), dx, dt, chi_per_mm, cm_uF_per_cm2]
    targets = None
    if cv_relation != "cable_0.1mm":          # the older keys stay valid for the cables
        targets = tuple(cv_from_sigma(s, cv_relation, chi_per_mm=chi_per_mm,
                                      cm_uF_per_cm2=cm_uF_per_cm2) for s in (sigma_l, sigma_t))
        key.append(cv_relation)
    key = json.dumps(key)
    found = _CALIBRATIONS.get(key) or _read_cache(CALIBRATION_CACHE, key)
    if found is None:
        log.info("per-direction calibration cables (not found in this process)")
        cal_l, cal_t = calibrate_directions(
            sigma_l, sigma_t, dx, dt, reference_dx=REFERENCE_DX_MM,
            reference_dt=REFERENCE_DT_MS, celltype=CELLTYPE, chi_per_mm=chi_per_mm,
            cm_uF_per_cm2=cm_uF_per_cm2, targets=targets)
        found = {"l": cal_l.as_dict(), "t": cal_t.as_dict()}
        _write_cache(CALIBRATION_CACHE, key, found)
    _CALIBRATIONS[key] = found
    return json.loads(json.dumps(found))


def fast_layer_calibration(sigma_fast: float, dx: float, dt: float, *, depth_mm: float,
                           sigma_l: float, sigma_t: float, scale_l: float, scale_t: float,
                           chi_per_mm: float = 140.0, cm_uF_per_cm2: float = 1.0,
                           cv_relation: str = "continuum") -> dict[str, Any]:
    """:func:`pipeline.monodomain.layer.calibrate_fast_layer` (layered slabs) as its record,
    reused within the process and from :data:`CALIBRATION_CACHE` when set.

    ``cv_relation`` "cable_0.1mm": the target is the layer's front speed on a 0.1 mm slab;
    "continuum": the reaction-eikonal mode's layer speed, the relation's CV of
    sigma_fast times :func:`pipeline.monodomain.layer.layer_load`.
    """
    from pipeline.monodomain.layer import calibrate_fast_layer, loaded_layer_cv

    key = ["fast_layer_slab", round(sigma_fast, 12), float(depth_mm), round(sigma_l, 12),
           round(sigma_t, 12), round(scale_l, 12), round(scale_t, 12), dx, dt, chi_per_mm,
           cm_uF_per_cm2]
    target = None
    if cv_relation != "cable_0.1mm":
        target = loaded_layer_cv(sigma_fast, sigma_l, sigma_t, depth_mm, cv_relation,
                                 chi_per_mm=chi_per_mm, cm_uF_per_cm2=cm_uF_per_cm2)
        key.append(cv_relation)
    key = json.dumps(key)
    found = _CALIBRATIONS.get(key) or _read_cache(CALIBRATION_CACHE, key)
    if found is None:
        log.info("fast-layer calibration slabs (not found in this process)")
        found = calibrate_fast_layer(
            sigma_fast, dx, dt, depth_mm=depth_mm, sigma_l=sigma_l, sigma_t=sigma_t,
            scale_l=scale_l, scale_t=scale_t, target_cv_mm_per_ms=target, celltype=CELLTYPE,
            chi_per_mm=chi_per_mm, cm_uF_per_cm2=cm_uF_per_cm2).as_dict()
        _write_cache(CALIBRATION_CACHE, key, found)
    _CALIBRATIONS[key] = found
    return json.loads(json.dumps(found))


def _memo(key: list[Any], compute: Any) -> Any:
    """The process's earlier result for the JSON ``key``, else ``compute()`` (kept)."""
    text = json.dumps(key)
    if text not in _CALIBRATIONS:
        _CALIBRATIONS[text] = compute()
    return json.loads(json.dumps(_CALIBRATIONS[text]))


def target_calibration(target_cv_mm_per_ms: float, sigma_l: float, dx: float, dt: float,
                       chi_per_mm: float = 140.0, cm_uF_per_cm2: float = 1.0
                       ) -> dict[str, Any]:
    """:func:`pipeline.monodomain.cv.calibrate_conductivity` (the single-scale mode) as its
    record (``scale``, ``cv_mm_per_ms``, ...), reused within the process."""
    from pipeline.monodomain.cv import calibrate_conductivity

    def compute() -> dict[str, Any]:
        return calibrate_conductivity(target_cv_mm_per_ms, sigma_l, dx, dt, celltype=CELLTYPE,
                                      chi_per_mm=chi_per_mm,
                                      cm_uF_per_cm2=cm_uF_per_cm2).as_dict()

    return _memo(["target_cv", float(target_cv_mm_per_ms), round(float(sigma_l), 12),
                  float(dx), float(dt), float(chi_per_mm), float(cm_uF_per_cm2), CELLTYPE],
                 compute)


def calibration_mode(simulate: Any) -> str | None:
    """``"target_cv"``, ``"directions"`` or None (no calibration) for the simulate settings.

    ``simulate`` is a :class:`~pipeline.settings.SimulateSettings` or the resolved
    ``simulate`` config section (a mapping).
    """
    get = simulate.get if isinstance(simulate, Mapping) else (
        lambda k: getattr(simulate, k))
    if get("model") != "monodomain":
        return None
    if get("target_cv_mm_per_ms") is not None:
        return "target_cv"
    return "directions" if get("calibrate_directions") else None


def calibration_inputs(simulate: Any, dx_mm: float) -> dict[str, Any] | None:
    """Everything a calibration depends on besides its reference conductivities.

    Parameters
    ----------
    simulate
        :class:`~pipeline.settings.SimulateSettings` (or the resolved section).
    dx_mm
        The grid's largest voxel edge (mm).

    Returns
    -------
    dict or None
        ``mode``, ``dx_mm``, ``dt_ms``, ``chi_per_mm``, ``cm_uF_per_cm2``,
        ``target_cv_mm_per_ms``, ``cell_model``, ``celltype``, ``cell_state`` and the
        reference grid (``reference_dx_mm``, ``reference_dt_ms``), the CV-sigma relation
        of the targets (``cv_relation``: the reference grid's cables or the continuum)
        and the fast layer's
        depth (``fast_endo_depth_mm``, of its slab) in directions mode only;
        None when the settings ask for no calibration.
    """
    mode = calibration_mode(simulate)
    if mode is None:
        return None
    get = simulate.get if isinstance(simulate, Mapping) else (
        lambda k: getattr(simulate, k))
    directions = mode == "directions"
    return {"mode": mode, "dx_mm": float(dx_mm), "dt_ms": float(get("dt_ms")),
            "chi_per_mm": float(get("chi_per_mm")),
            "cm_uF_per_cm2": float(get("cm_uF_per_cm2")),
            "target_cv_mm_per_ms": (None if directions
                                    else float(get("target_cv_mm_per_ms"))),
            "cell_model": CELL_MODEL, "celltype": CELLTYPE, "cell_state": CELL_STATE,
            "reference_dx_mm": REFERENCE_DX_MM if directions else None,
            "reference_dt_ms": REFERENCE_DT_MS if directions else None,
            "fast_endo_depth_mm": (float(get("fast_endo_depth_mm")) if directions
                                   else None),
            "cv_relation": str(get("cv_relation")) if directions else None}


@dataclass(frozen=True)
class ShardCalibration:
    """A calibration and what it was made for.

    Attributes
    ----------
    inputs
        :func:`calibration_inputs` of the settings and grid it was found for.
    sigma_l_reference, sigma_t_reference
        The unscaled conductivities (S/m) it was found at.
    cv_scale
        Factor for sigma_l (and for every conductivity in mode ``target_cv``).
    cv_scale_t
        Factor for sigma_t in mode ``directions``; None in mode ``target_cv``.
    record
        The cable results as stored with every shard (:class:`pipeline.monodomain.cv.
        Calibration` as a mapping; ``{"l": ..., "t": ..., "fast": ...}`` per direction).
    ranges
        ``{"sigma_l": [low, high], "sigma_t": [low, high], "sigma_fast_endo": [low,
        high]}`` (S/m): the campaign ranges it serves; empty for a shard's own calibration.
    sigma_fast_reference
        The unscaled sigma_fast_endo (S/m) the fast layer's scale was found at; None in
        mode ``target_cv``.
    cv_scale_fast
        Factor for sigma_fast_endo in mode ``directions``; None in mode ``target_cv``
        (``cv_scale`` then).
    wall_s
        Seconds the cables took (0 when reused).
    propagation
        The propagation check of the ranges' smallest sigma_t (:func:`propagation_check`:
        ``sigma_t``, ``sigma_t_scaled`` in S/m, ``cv_mm_per_ms`` or None where it blocks);
        None for a shard's own calibration. CV grows with sigma, so a shard whose rows lie
        in the ranges needs no cable of its own when this one conducts.
    """

    inputs: dict[str, Any]
    sigma_l_reference: float
    sigma_t_reference: float
    cv_scale: float
    cv_scale_t: float | None
    record: dict[str, Any]
    ranges: dict[str, list[float]] = field(default_factory=dict)
    sigma_fast_reference: float | None = None
    cv_scale_fast: float | None = None
    wall_s: float = 0.0
    propagation: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able mapping (the body of a calibration file)."""
        return asdict(self)


def propagation_check(sigma_t: float, scale: float, dx_mm: float, dt_ms: float,
                      chi_per_mm: float = 140.0, cm_uF_per_cm2: float = 1.0
                      ) -> dict[str, Any]:
    """Does a cross-fibre conductivity conduct on the grid? A one-dimensional cable
    (reused within the process for the same inputs).

    The monodomain on a coarse grid blocks below a conductivity that depends on dx and dt
    (at 2 mm with one x4.19 scale, sigma_t 0.02-0.11 S/m). A cable of TP06 endocardial
    cells at the grid's dx and dt and the scaled conductivity is simulated (float64);
    "blocks" means slower than :data:`MIN_CV_MM_PER_MS`.

    Parameters
    ----------
    sigma_t
        The sampled (unscaled) conductivity, S/m.
    scale
        The calibration's factor for it.
    dx_mm, dt_ms
        The grid's largest voxel edge (mm) and the time step (ms).

    Returns
    -------
    dict
        ``sigma_t``, ``sigma_t_scaled`` (S/m) and ``cv_mm_per_ms`` (None where it blocks).
    """
    from pipeline.monodomain.cv import conduction_velocity

    scaled = float(sigma_t) * float(scale)

    def compute() -> float | None:
        cv = conduction_velocity(np.array([scaled]), dx_mm, dt_ms, chi_per_mm=chi_per_mm,
                                 cm_uF_per_cm2=cm_uF_per_cm2,
                                 min_cv_mm_per_ms=MIN_CV_MM_PER_MS,
                                 length_mm=max(10 * dx_mm, 12.0))[0]
        return float(cv) if np.isfinite(cv) else None

    cv = _memo(["propagation", scaled, float(dx_mm), float(dt_ms), float(chi_per_mm),
                float(cm_uF_per_cm2), MIN_CV_MM_PER_MS], compute)
    return {"sigma_t": float(sigma_t), "sigma_t_scaled": scaled, "cv_mm_per_ms": cv}


def reference_from_ranges(ranges: Mapping[str, Any]) -> tuple[float, float, float]:
    """The middle of the sigma_l, sigma_t and sigma_fast_endo ranges (S/m): the median of
    uniform samples (rounded to 1e-12 S/m, so that [0.1, 0.2] gives 0.15, not
    0.15000000000000002)."""
    low_high = [(float(ranges[k][0]), float(ranges[k][1])) for k in RANGE_KEYS]
    sigma_l, sigma_t, sigma_fast = (round(0.5 * (low + high), 12) for low, high in low_high)
    return sigma_l, sigma_t, sigma_fast


def calibrate(simulate: Any, dx_mm: float, sigma_l: float, sigma_t: float,
              ranges: Mapping[str, Any] | None = None,
              sigma_fast: float = DEFAULT_REFERENCE[2]) -> ShardCalibration:
    """Find the calibration the settings ask for at the given conductivities (float64 cables).

    Parameters
    ----------
    simulate
        :class:`~pipeline.settings.SimulateSettings`.
    dx_mm
        The grid's largest voxel edge (mm).
    sigma_l, sigma_t
        Reference conductivities (S/m) before scaling.
    ranges
        The conductivity ranges this calibration serves (recorded, checked on use); with
        them, the propagation check of their smallest sigma_t is run and recorded too.
    sigma_fast
        Reference sigma_fast_endo (S/m) before scaling (mode ``directions``).

    Raises
    ------
    InputError
        The settings ask for no calibration, or no scale reaches the target.
    """
    inputs = calibration_inputs(simulate, dx_mm)
    if inputs is None:
        raise InputError(f"simulate settings ask for no CV calibration (model "
                         f"{simulate.model}, calibrate_directions "
                         f"{simulate.calibrate_directions}, no target_cv_mm_per_ms)")
    t0 = time.perf_counter()
    kw = {"chi_per_mm": inputs["chi_per_mm"], "cm_uF_per_cm2": inputs["cm_uF_per_cm2"]}
    if inputs["mode"] == "target_cv":
        record = target_calibration(inputs["target_cv_mm_per_ms"], sigma_l, dx_mm,
                                    inputs["dt_ms"], **kw)
        scale, scale_t = float(record["scale"]), None
        log.info("CV calibration: conductivities x %.4f (target %.3g mm/ms at dx %.3g mm)",
                 scale, inputs["target_cv_mm_per_ms"], dx_mm)
        scale_fast = fast_reference = None
    else:
        relation = inputs["cv_relation"]
        record = direction_calibration(sigma_l, sigma_t, dx_mm, inputs["dt_ms"], **kw,
                                       cv_relation=relation)
        scale, scale_t = float(record["l"]["scale"]), float(record["t"]["scale"])
        record["fast"] = fast_layer_calibration(
            float(sigma_fast), dx_mm, inputs["dt_ms"], depth_mm=inputs["fast_endo_depth_mm"],
            sigma_l=sigma_l, sigma_t=sigma_t, scale_l=scale, scale_t=scale_t, **kw,
            cv_relation=relation)
        scale_fast, fast_reference = float(record["fast"]["scale"]), float(sigma_fast)
        log.info("CV calibration per direction: sigma_l x %.4f, sigma_t x %.4f, "
                 "sigma_fast_endo x %.4f (dx %.3g mm, dt %.3g ms)", scale, scale_t,
                 scale_fast, dx_mm, inputs["dt_ms"])
    propagation = None
    if ranges:
        propagation = propagation_check(float(ranges["sigma_t"][0]), scale_t or scale, dx_mm,
                                        inputs["dt_ms"], **kw)
        log.info("propagation check at the smallest sigma_t %.3g S/m (x%.3g): %s",
                 propagation["sigma_t"], scale_t or scale,
                 "blocks" if propagation["cv_mm_per_ms"] is None else
                 f"{propagation['cv_mm_per_ms']:.3g} mm/ms across the fibres")
    return ShardCalibration(
        inputs=inputs, sigma_l_reference=float(sigma_l), sigma_t_reference=float(sigma_t),
        cv_scale=scale, cv_scale_t=scale_t, record=record,
        ranges={k: [float(x) for x in ranges[k]] for k in RANGE_KEYS if k in ranges}
        if ranges else {},
        sigma_fast_reference=fast_reference, cv_scale_fast=scale_fast,
        wall_s=time.perf_counter() - t0, propagation=propagation)


def write_calibration(path: str | Path, calibration: ShardCalibration,
                      about: Mapping[str, Any] | None = None) -> None:
    """Write a calibration file (JSON, atomically: a temporary name, then a rename).

    ``about`` (e.g. heart and campaign names) is stored alongside, for the reader.
    """
    from pipeline.io import provenance, write_json

    body = {"format": FORMAT, "version": VERSION, **dict(about or {}),
            **calibration.as_dict(), "provenance": provenance()}
    write_json(path, body)


def read_calibration(path: str | Path) -> ShardCalibration:
    """Read a file of :func:`write_calibration`.

    Raises
    ------
    InputError
        A missing or unreadable file, another format or version, or a missing field.
    """
    path = Path(path)
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(f"calibration file {path}: not found") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"calibration file {path}: not readable JSON ({exc})") from exc
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise InputError(f"calibration file {path}: not a '{FORMAT}' file")
    if body.get("version") != VERSION:
        raise InputError(f"calibration file {path}: version {body.get('version')}, this "
                         f"pipeline reads version {VERSION} (version 2 gives the fast "
                         "layer its own scale); rerun 'pipeline calibrate' for this heart")
    names = ShardCalibration.__dataclass_fields__
    missing = [k for k in names if k not in body and k not in OPTIONAL_FIELDS]
    if missing:
        raise InputError(f"calibration file {path}: missing field(s) {missing}")
    return ShardCalibration(**{k: body[k] for k in names if k in body})


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def check_calibration(calibration: ShardCalibration, simulate: Any, dx_mm: float,
                      table: Any, source: str) -> None:
    """Refuse a calibration made for other settings, another grid or other ranges.

    Parameters
    ----------
    calibration
        From :func:`read_calibration`.
    simulate
        The shard's :class:`~pipeline.settings.SimulateSettings`.
    dx_mm
        The shard's grid (largest voxel edge, mm).
    table
        The shard's parameter table (columns ``sim_id``, ``sigma_l``, ``sigma_t``).
    source
        The file's name, for the message.

    Raises
    ------
    CalibrationMismatch
        Naming the first input that differs (the file's value and the shard's), or the
        first simulation whose conductivity lies outside the file's range.
    """
    wanted = calibration_inputs(simulate, dx_mm)
    if wanted is None:
        raise CalibrationMismatch(f"calibration file {source}: the simulate settings ask for "
                                  f"no calibration (model {simulate.model}); leave it out")
    for key, value in wanted.items():
        # files made before session 30 hold no relation: theirs is the 0.1 mm cables'
        have = calibration.inputs.get(key, "cable_0.1mm" if key == "cv_relation" and value
                                      else None)
        if not _same(have, value):
            raise CalibrationMismatch(
                f"calibration file {source} was made for {key} = {have}, this shard has "
                f"{value}; rerun 'pipeline calibrate' with the shard's settings and heart")
    for key, (low, high) in calibration.ranges.items():
        values = np.asarray(table[key], dtype=np.float64)
        tol = 1e-9 * max(abs(low), abs(high))
        out = (values < low - tol) | (values > high + tol)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            raise CalibrationMismatch(
                f"calibration file {source} serves {key} in [{low:g}, {high:g}] S/m; sim_id "
                f"{int(table['sim_id'].iloc[i])} has {key} = {values[i]:g}")


#: The simulate keys a calibration depends on (the rest of the section changes nothing).
SIMULATE_KEYS = ("model", "dt_ms", "chi_per_mm", "cm_uF_per_cm2", "target_cv_mm_per_ms",
                 "calibrate_directions", "fast_endo_depth_mm", "cv_relation")


def campaign_ranges(config: Mapping[str, Any], campaign: str | None) -> dict[str, list[float]]:
    """The sigma_l, sigma_t and sigma_fast_endo ranges (S/m) of a campaign of a resolved
    config.

    ``campaign`` None: the schema's default ranges.

    Raises
    ------
    InputError
        A campaign the config does not have.
    """
    from pipeline.config import resolve

    if campaign is None:
        conductivity = resolve({"campaigns": {"default": {}}})["campaigns"]["default"][
            "conductivity"]
    elif campaign not in config.get("campaigns", {}):
        raise InputError(f"campaign '{campaign}' is not in the settings' 'campaigns' "
                         f"(given: {sorted(config.get('campaigns', {})) or 'none'})")
    else:
        conductivity = config["campaigns"][campaign]["conductivity"]
    return {k: [float(x) for x in conductivity[k]] for k in RANGE_KEYS}


def calibration_settings(config: Mapping[str, Any], campaign: str) -> dict[str, Any]:
    """The smallest ``--settings`` of ``pipeline calibrate`` for a campaign's hearts.

    The seed, the simulate keys of :data:`SIMULATE_KEYS` and the campaign's sigma_l,
    sigma_t and sigma_fast_endo ranges: changing anything else (the duration, the number
    of simulations, the run settings) leaves it unchanged, so Snakemake does not rerun
    the calibration.
    """
    from pipeline.config import resolve

    full = resolve(dict(config))
    simulate = {k: full["simulate"][k] for k in SIMULATE_KEYS}
    if simulate["target_cv_mm_per_ms"] is not None:   # it overrides calibrate_directions
        del simulate["calibrate_directions"]
    if simulate["target_cv_mm_per_ms"] is not None or not simulate.get("calibrate_directions"):
        del simulate["fast_endo_depth_mm"]            # only the fast layer's slab uses it
    return {"seed": int(full["seed"]), "simulate": simulate,
            "campaigns": {campaign: {"conductivity": campaign_ranges(full, campaign)}}}


def calibrate_heart(anatomy_path: str | Path, simulate: Any,
                    ranges: Mapping[str, Any]) -> ShardCalibration:
    """The calibration of a heart's shards: at its grid, at the middle of the ranges.

    Parameters
    ----------
    anatomy_path
        The heart's ``anatomy.h5`` (its voxel size is used).
    simulate
        :class:`~pipeline.settings.SimulateSettings`.
    ranges
        ``{"sigma_l": [low, high], "sigma_t": [low, high], "sigma_fast_endo": [low,
        high]}`` (S/m).
    """
    from pipeline.anatomy.io import read_anatomy

    dx = float(np.max(read_anatomy(anatomy_path).spacing))
    sigma_l, sigma_t, sigma_fast = reference_from_ranges(ranges)
    return calibrate(simulate, dx, sigma_l, sigma_t, ranges=ranges, sigma_fast=sigma_fast)
