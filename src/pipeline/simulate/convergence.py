"""The resolution study: what error each grid and model leaves in the labels and the ECG.

One heart (a parametric heart and/or a mesh), fixed parameters (:data:`STUDY_ROW`), the
same cell states (TP06's built-in BCL 1000 ms states), patterns ``normal`` and ``lbbb``,
simulated through the simulate stage itself (:func:`pipeline.simulate.run.run_shard`) at
each voxel size and model. Every run is compared with the finest monodomain run of the
same heart and pattern (the reference):

* ``activation_mae_ms`` / ``activation_max_ms``: mean / largest |difference| of the
  activation times at the 75 points (the labels the networks learn), each grid's own points;
* ``activation_mae_ref_points_ms`` / ``activation_max_ref_points_ms``: the same with the
  run's activation map sampled at the reference grid's point positions (the points are
  placed per grid and move by ``point_shift_mm`` on average), the solution's own error;
* ``total_activation_ms``: last minus first activation over all tissue voxels;
* ``qrs_ms``: QRS duration from the ECG (:func:`pipeline.signals.features.beat_features`:
  the spatial velocity of the 12 leads above 1.5 % of its maximum, 5 ms moving average);
* ``apd90_mae_ms``: mean |difference| of APD90 at the points;
* ``ecg_corr_min``: the smallest Pearson correlation over the 12 leads with the reference
  ECG, and ``amplitude_ratio`` per lead (peak-to-peak over the reference's);
* ``wall_s``: wall time of the shard (set-up, calibration or eikonal solve, time loop).

:func:`slab_cvs` adds planar-wave CVs in a slab with fibres at 0, 45 and 90 degrees to
the grid, against the 0.1 mm value ``sqrt(c_l^2 cos^2 a + c_t^2 sin^2 a)``.

Runs are cached as ``.npz`` files in a folder, so a study grows run by run.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.settings import RunSettings, SimulateSettings

log = logging.getLogger(__name__)

#: The fixed parameters of every run (S/m; no jitter, no random delays).
STUDY_ROW: dict[str, Any] = {"sigma_l": 0.15, "sigma_t": 0.04, "sigma_fast_endo": 0.8,
                             "gkr_scale": 1.0, "bcl_ms": 1000.0, "seed": 7,
                             "site_jitter_mm": 0.0, "site_delay_max_ms": 0.0}
#: Time step (ms) per voxel size (mm) of the monodomain runs (explicit diffusion's limit and
#: TP06's accuracy); the reaction-eikonal runs use the same.
DT_MS: dict[float, float] = {2.0: 0.1, 1.0: 0.04, 0.5: 0.04, 0.25: 0.0125}
#: What a cached run keeps per pattern (``map`` is optional in older caches).
CACHED = ("ecg", "act", "apd90", "total_ms", "wall_s", "map")
#: Version of the simulate stage's physics a cached run was made with; a cache of another
#: version is run again. 2: the R-E+ drive is gated at -40 mV and the ECG source uses the
#: tissue's conductivities, not the CV-calibrated ones (both changed the ECG). 3: the fast
#: layers reach apicobasal 0.95 on the septum (``simulate.fast_endo_septal_max_apicobasal``).
#: 4: the fast layers' depth is measured from the endocardium's faces, not from the surface
#: voxels' centres (1 mm thick at 0.5 and 1 mm, not 1.5 and 2 mm). 5 (the monodomain only):
#: the fast layers take their own CV calibration, not sigma_l's scale (13-51 % too fast at
#: 0.5-2 mm before), calibrated on a layered slab; the reaction-eikonal runs: the fast
#: layers' speed takes the myocardium's load (``simulate.eikonal_layer_load``; the cache
#: name of a run without it says ``_noload``). 6: the diffusion operator's fast layers are
#: face-connected (``simulate.fast_endo_face_connected``); 6 of the reaction-eikonal runs
#: had them in the R-E+ diffusion too, 7 has not (the monodomain only). 8 (R-E+): a
#: stimulus ball no longer seeds a fast layer beyond slow tissue. 9 (R-E+): the eikonal's
#: hops take the mean slowness of their two voxels, and the fast layers take their own
#: curvature correction.
CACHE_VERSIONS: dict[str, int] = {"monodomain": 6, "reaction_eikonal": 9}


def write_fixed_inputs(out: Path, anatomy: Any) -> Path:
    """Write ``anatomy.h5`` and the study's ``cells.h5`` (TP06's built-in states) to ``out``."""
    import torch

    from pipeline.anatomy.io import write_anatomy
    from pipeline.cell import tp06
    from pipeline.cell.steady import InitialStates, write_initial_states

    out.mkdir(parents=True, exist_ok=True)
    write_anatomy(out / "anatomy.h5", anatomy)
    start = tp06.initial_state(["endo", "M", "epi"], dtype=torch.float64).T.numpy()
    write_initial_states(out / "cells.h5", InitialStates(
        states=start[:, None, None, :].copy(), celltypes=("endo", "M", "epi"),
        bcl_ms=np.array([1000.0]), gkr_scale=np.array([1.0])))
    return out


def simulate_fixed(inputs: Path, model: str, patterns: list[str] | tuple[str, ...],
                   settings: SimulateSettings, run: RunSettings,
                   eikonal_inputs: Path | None = None, poses: list | None = None) -> Any:
    """Simulate ``patterns`` with the study's fixed parameters (:data:`STUDY_ROW`).

    Parameters
    ----------
    inputs
        A folder written by :func:`write_fixed_inputs`.
    model
        ``monodomain`` or ``reaction_eikonal`` (overrides ``settings.model``).
    patterns
        One simulation per pattern, in this order.
    settings, run
        What and how to simulate.
    eikonal_inputs
        A folder of :func:`write_fixed_inputs` with the same heart on a finer grid: the
        reaction-eikonal mode's eikonal runs there (``simulate.eikonal_resolution_mm``).
        Without it the eikonal runs on the simulation grid, whatever ``settings`` says.
    poses
        :class:`pipeline.params.HeartPose` s: then every pattern in every pose, pose by
        pose (``len(poses) * len(patterns)`` simulations).

    Returns
    -------
    pipeline.simulate.shard.ShardData
    """
    from pipeline.anatomy.io import read_anatomy
    from pipeline.simulate.run import prepare_shard, run_shard

    name = str(read_anatomy(inputs / "anatomy.h5").name)
    if poses is None:
        table = pd.DataFrame([{"sim_id": i, "anatomy": name, "pattern": p, **STUDY_ROW}
                              for i, p in enumerate(patterns)])
    else:
        table = pd.DataFrame([{"sim_id": i * len(patterns) + k, "anatomy": name, "pattern": p,
                               **STUDY_ROW, **pose.columns()}
                              for i, pose in enumerate(poses) for k, p in enumerate(patterns)])
    table.to_csv(inputs / f"{model}.csv", index=False)
    fine = None if eikonal_inputs is None else eikonal_inputs / "anatomy.h5"
    settings = replace(settings, eikonal_resolution_mm=None if fine is None else float(
        np.max(read_anatomy(fine).spacing)))      # without a finer heart: on the grid
    job = prepare_shard(inputs / "anatomy.h5", inputs / "cells.h5", inputs / f"{model}.csv",
                        replace(settings, model=model), eikonal_anatomy_path=fine)
    return run_shard(job, None, run, progress=False)


def _inputs(folder: Path, heart: str, dx: float, seed: int) -> Path:
    """anatomy.h5 and cells.h5 of one heart at one voxel size (built once, cached)."""
    from pipeline.anatomy.build import build_mesh, build_parametric
    from pipeline.config import resolve
    from pipeline.naming import parametric_index

    out = folder / f"{Path(heart).stem}_{dx:g}mm"
    if (out / "anatomy.h5").is_file():
        return out
    cfg = resolve({"anatomy": {"resolution_mm": dx}})["anatomy"]
    index = parametric_index(heart)
    if index is not None:
        anatomy, _ = build_parametric(index, seed, cfg)
    else:
        anatomy, _ = build_mesh(heart, cfg, name=Path(heart).stem.replace("_", ""))
    return write_fixed_inputs(out, anatomy)


def run_case(folder: Path, heart: str, dx: float, model: str, patterns: list[str],
             duration_ms: float, seed: int, run: RunSettings,
             need_map: bool = False, eikonal_dx: float | None = None,
             eikonal_curvature: bool = True, fast_layer_source: str = "myocardium",
             eikonal_layer_load: bool = True, cv_relation: str = "continuum"
             ) -> dict[str, dict[str, Any]]:
    """Simulate the patterns on one heart at one voxel size with one model (cached).

    ``eikonal_dx`` (reaction-eikonal only): solve the eikonal on the heart at this finer
    voxel size (``simulate.eikonal_resolution_mm``); ``eikonal_curvature``: with the
    curvature correction (``simulate.eikonal_curvature``; the cache name says ``_curv``).
    ``fast_layer_source`` ``myocardium``: the ECG source takes the fast layers at the
    myocardial tensor (``simulate.ecg_fast_layer_source``; the cache name says ``_srcmyo``).
    ``eikonal_layer_load`` False: the eikonal's fast layers at a free cable's speed
    (``simulate.eikonal_layer_load``; the cache name says ``_noload``). ``cv_relation``
    "continuum": the converged CV-sigma relation, for the eikonal's speeds and the
    monodomain's calibration targets (``simulate.cv_relation``; the cache name says
    ``_cvcont``).

    Returns
    -------
    dict
        Per pattern: ``ecg`` (12, T) mV, ``act`` (75,) ms, ``apd90`` (75,) ms,
        ``total_ms``, ``wall_s``, and ``map`` (n_tissue,) ms, the activation time of every
        tissue voxel, when the cache holds it (always after a fresh run; a cached run
        without it is run again when ``need_map``).
    """
    fine = f"_eik{eikonal_dx:g}mm" if eikonal_dx is not None else ""
    curvature = model == "reaction_eikonal" and eikonal_curvature
    fine += "_curv" if curvature else ""
    fine += "_srcmyo" if fast_layer_source == "myocardium" else ""
    load = model != "reaction_eikonal" or eikonal_layer_load
    fine += "" if load else "_noload"
    fine += "_cvcont" if cv_relation == "continuum" else ""
    cache = folder / f"{Path(heart).stem}_{dx:g}mm_{model}{fine}_{duration_ms:g}ms.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            done = json.loads(str(z["patterns"]))
            version = int(z["version"]) if "version" in z else 1
            if version != CACHE_VERSIONS[model]:
                log.info("%s: made by version %d of the physics, not %d: run again", cache,
                         version, CACHE_VERSIONS[model])
            elif set(patterns) <= set(done) and (not need_map or f"{patterns[0]}/map" in z):
                return {p: {k: z[f"{p}/{k}"] for k in CACHED if f"{p}/{k}" in z}
                        for p in patterns}
    inputs = _inputs(folder, heart, dx, seed)
    settings = replace(SimulateSettings.defaults(), dt_ms=DT_MS.get(dx, 0.02),
                       duration_ms=duration_ms, record_every_ms=1.0, save_activation_map=True,
                       eikonal_curvature=curvature, ecg_fast_layer_source=fast_layer_source,
                       eikonal_layer_load=load, cv_relation=cv_relation)
    t0 = time.perf_counter()
    data = simulate_fixed(inputs, model, patterns, settings, run, eikonal_inputs=(
        None if eikonal_dx is None else _inputs(folder, heart, eikonal_dx, seed)))
    wall = time.perf_counter() - t0
    out = {}
    for i, p in enumerate(patterns):
        amap = data.activation_map_ms[i]
        out[p] = {"ecg": data.ecg[i], "act": data.activation_ms[i], "apd90": data.apd90_ms[i],
                  "total_ms": np.array(np.nanmax(amap) - np.nanmin(amap)),
                  "wall_s": np.array(wall), "map": amap.astype(np.float32)}
    from pipeline.io import atomic_path

    with atomic_path(cache) as tmp, open(tmp, "wb") as fh:     # a killed run leaves no cache
        np.savez(fh, patterns=json.dumps(patterns), version=np.array(CACHE_VERSIONS[model]),
                 **{f"{p}/{k}": v for p, d in out.items() for k, v in d.items()})
    return out


def at_reference_points(folder: Path, heart: str, dx: float, finest: float,
                        amap: np.ndarray) -> tuple[np.ndarray, float]:
    """A run's activation map sampled at the reference grid's 75 point positions.

    The points are placed on each grid (DESIGN.md section 4), so the same named point
    sits at a different position on each grid (LLNL heart: 2.5 mm apart on average between
    the 2 and 0.5 mm grids, 6.4 mm at most); sampling every run at the reference's
    positions (trilinear over tissue voxels, :func:`pipeline.anatomy.grid.sample_tissue`)
    separates the solution's error from the points' placement.

    ``amap`` is (n_tissue,) or (P, n_tissue) ms, one map per pattern.

    Returns
    -------
    (numpy.ndarray, float)
        (75,) or (P, 75) ms, and the mean distance (mm) between this grid's points and the
        reference's.
    """
    from pipeline.anatomy.grid import sample_tissue
    from pipeline.anatomy.io import read_anatomy

    here = read_anatomy(folder / f"{Path(heart).stem}_{dx:g}mm" / "anatomy.h5")
    there = read_anatomy(folder / f"{Path(heart).stem}_{finest:g}mm" / "anatomy.h5")
    act = sample_tissue(here.mask, here.origin, float(np.max(here.spacing)), amap,
                        there.point_xyz)
    shift = float(np.mean(np.linalg.norm(here.point_xyz - there.point_xyz, axis=1)))
    return act, shift


def compare(case: dict[str, Any], ref: dict[str, Any],
            act_at_ref_points: np.ndarray | None = None) -> dict[str, Any]:
    """The study's figures of one run against the reference run (module docstring).

    ``act_at_ref_points`` (75,) ms is the run's activation map sampled at the reference
    grid's point positions (:func:`at_reference_points`); None for a run on the
    reference grid, whose points are the reference's.
    """
    from pipeline.signals.features import beat_features

    d_act = np.abs(case["act"] - ref["act"])
    d_same = d_act if act_at_ref_points is None else np.abs(act_at_ref_points - ref["act"])
    d_apd = np.abs(case["apd90"] - ref["apd90"])
    n = min(case["ecg"].shape[1], ref["ecg"].shape[1])
    a, b = case["ecg"][:, :n], ref["ecg"][:, :n]
    corr = [float(np.corrcoef(x, y)[0, 1]) for x, y in zip(a, b)]
    ratio = np.ptp(a, axis=1) / np.ptp(b, axis=1)
    return {"activation_mae_ms": float(np.nanmean(d_act)),
            "activation_max_ms": float(np.nanmax(d_act)),
            "activation_mae_ref_points_ms": float(np.nanmean(d_same)),
            "activation_max_ref_points_ms": float(np.nanmax(d_same)),
            "total_activation_ms": float(case["total_ms"]),
            "qrs_ms": float(beat_features(case["ecg"], 1.0).qrs_duration_ms),
            "apd90_mae_ms": float(np.nanmean(d_apd)),
            "ecg_corr_min": float(np.min(corr)), "ecg_corr": [round(c, 4) for c in corr],
            "amplitude_ratio": [round(float(r), 3) for r in ratio],
            "wall_s": float(case["wall_s"])}


def study(hearts: list[str], resolutions: list[float], models: list[str],
          patterns: list[str], duration_ms: float, folder: Path, seed: int,
          run: RunSettings, finest_too: bool = False,
          eikonal_dx: float | None = None, eikonal_curvature: bool = True,
          fast_layer_source: str = "myocardium",
          eikonal_layer_load: bool = True, cv_relation: str = "continuum",
          reference_cv_relation: str | None = None) -> dict[str, Any]:
    """Every (heart, model, dx, pattern) run compared with the finest monodomain run.

    ``fast_layer_source``: every run's ECG source, the reference's included, takes the fast
    layers at this conductivity (``simulate.ecg_fast_layer_source``).

    ``eikonal_curvature``: the reaction-eikonal runs with the curvature correction
    (``simulate.eikonal_curvature``); their rows carry ``eikonal_curvature``.
    ``eikonal_layer_load``: their fast layers at the loaded speed
    (``simulate.eikonal_layer_load``); their rows carry ``eikonal_layer_load``.
    ``cv_relation``: the CV-sigma relation of every run (``simulate.cv_relation``); the
    rows carry ``cv_relation``. ``reference_cv_relation``: the reference's, if another
    (the 0.25 mm references of sessions 27-30 aim at ``cable_0.1mm``); the rows carry
    ``reference_cv_relation``.

    ``eikonal_dx``: the reaction-eikonal runs on grids coarser than this solve their
    eikonal on the heart at this voxel size (``simulate.eikonal_resolution_mm``); their
    rows carry ``eikonal_dx_mm`` (otherwise their own ``dx_mm``).

    The reference is the monodomain run at ``min(resolutions)``; it is also reported
    against itself (zero errors, its own wall time). Other models run on the coarser grids
    only, unless ``finest_too``: then also on the finest grid, where their difference from
    the reference is the model's alone (no grid error), and their coarser runs are also
    compared with their own finest run (rows with ``reference_model`` the model itself:
    the model's grid error alone). Every row names its ``reference_model``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    finest = min(resolutions)
    rows = []
    src = {"fast_layer_source": fast_layer_source}
    eik_kw = {"eikonal_curvature": eikonal_curvature, "eikonal_layer_load": eikonal_layer_load,
              "cv_relation": cv_relation, **src}
    for heart in hearts:
        ref = run_case(folder, heart, finest, "monodomain", patterns, duration_ms, seed, run,
                       cv_relation=reference_cv_relation or cv_relation, **src)
        if len(resolutions) > 1:    # its points: a reference run elsewhere comes without them
            _inputs(folder, heart, finest, seed)
        for model in models:
            for dx in sorted(resolutions, reverse=True):
                if model != "monodomain" and dx == finest and not finest_too:
                    continue            # the other models are studied on coarser grids only
                eik = (eikonal_dx if model == "reaction_eikonal" and eikonal_dx is not None
                       and eikonal_dx < dx else None)
                case = run_case(folder, heart, dx, model, patterns, duration_ms, seed, run,
                                need_map=dx != finest, eikonal_dx=eik, **eik_kw)
                refs = [("monodomain", ref)]
                if finest_too and model != "monodomain" and dx != finest:
                    refs.append((model, run_case(folder, heart, finest, model, patterns,
                                                 duration_ms, seed, run, **eik_kw)))
                at_ref, shift = {p: None for p in patterns}, 0.0
                if dx != finest:     # both anatomies read once per run, all patterns at once
                    acts, shift = at_reference_points(
                        folder, heart, dx, finest, np.stack([case[p]["map"] for p in patterns]))
                    at_ref = dict(zip(patterns, acts))
                for reference_model, reference in refs:
                    ref_relation = (reference_cv_relation or cv_relation
                                    if reference_model == "monodomain" else cv_relation)
                    for p in patterns:
                        row = {"heart": Path(heart).stem, "model": model, "dx_mm": dx,
                               "pattern": p, "reference_dx_mm": finest,
                               "reference_model": reference_model, "point_shift_mm": shift,
                               **_eikonal_columns(model, eik or dx, eikonal_curvature,
                                                  eikonal_layer_load),
                               "cv_relation": cv_relation,
                               "reference_cv_relation": ref_relation,
                               "ecg_fast_layer_source": fast_layer_source,
                               **compare(case[p], reference[p], at_ref[p])}
                        log.info("convergence %s", json.dumps({k: row[k] for k in (
                            "heart", "model", "dx_mm", "pattern", "reference_model",
                            "activation_mae_ms", "activation_mae_ref_points_ms",
                            "ecg_corr_min", "qrs_ms", "wall_s")}))
                        rows.append(row)
    return {"runs": rows, "duration_ms": duration_ms, "study_row": STUDY_ROW,
            "dt_ms": {str(k): v for k, v in DT_MS.items()}}


def _eikonal_columns(model: str, eikonal_dx: float, curvature: bool, layer_load: bool
                     ) -> dict[str, Any]:
    """A study row's eikonal settings (None / False for a monodomain run)."""
    eik = model == "reaction_eikonal"
    return {"eikonal_dx_mm": eikonal_dx if eik else None, "eikonal_curvature": eik and curvature,
            "eikonal_layer_load": eik and layer_load}


def _slab_problem(dx: float, angle_deg: float, sigma: tuple[float, float], dt: float,
                  length_mm: float = 24.0) -> Any:
    """A slab (x by y, two voxels thick) with in-plane fibres at ``angle_deg`` to x and a
    planar stimulus on its x = 0 face; uncalibrated conductivities ``sigma`` (S/m)."""
    import torch

    from pipeline.cell import tp06
    from pipeline.monodomain.problem import Conductivities, Grid, MonodomainProblem
    from pipeline.monodomain.stimulus import Stimulus

    nx = ny = int(round(length_mm / dx))
    mask = np.ones((nx, ny, 2), dtype=bool)
    n = mask.sum()
    a = np.radians(angle_deg)
    ijk = np.argwhere(mask)
    state = tp06.initial_state("endo", dtype=torch.float64).numpy()
    stim = Stimulus(voxels=np.flatnonzero(ijk[:, 0] * dx < 1.0), start_ms=0.0,
                    duration_ms=2.0, amplitude=-80.0, name="x0_face")
    return MonodomainProblem(
        grid=Grid(origin=np.zeros(3), spacing=np.full(3, dx), mask=mask),
        fibre=np.tile([np.cos(a), np.sin(a), 0.0], (n, 1)),
        conductivities=Conductivities(sigma_l=np.array([sigma[0]]), sigma_t=np.array([sigma[1]]),
                                      sigma_fast_endo=np.array([sigma[0]])),
        celltype=np.full(n, tp06.CELLTYPES["endo"], dtype=np.uint8),
        initial_states=np.broadcast_to(state, (1, 4, state.size)).copy(),
        stimuli=((stim,),), dt_ms=dt, duration_ms=10.0 + length_mm / 0.05)


def _slab_cv(act: np.ndarray, mask_shape: tuple[int, ...], dx: float) -> float:
    """CV (mm/ms) along x on the slab's centre line: slope over the middle third."""
    t = act.reshape(mask_shape)[:, mask_shape[1] // 2, 0].astype(np.float64)
    n = t.size
    lo, hi = n // 3, max(n // 3 + 2, 2 * n // 3)
    if np.isnan(t[lo:hi]).any():
        return float("nan")
    slope = np.polyfit((np.arange(lo, hi) + 0.5) * dx, t[lo:hi], 1)[0]
    return float(1.0 / slope) if slope > 0 else float("nan")


def slab_cvs(resolutions: list[float], models: list[str],
             sigma: tuple[float, float] = (0.15, 0.04),
             angles: tuple[float, ...] = (0.0, 45.0, 90.0),
             cv_relation: str = "continuum") -> list[dict[str, Any]]:
    """Planar-wave CV across a slab with fibres at each angle to the grid, per model and dx.

    The monodomain uses the per-direction calibration of the simulate stage at that dx
    (:func:`pipeline.monodomain.cv.calibrate_directions`); the reaction-eikonal mode the
    eikonal times with CVs from :func:`~pipeline.monodomain.cv_relation.cv_from_sigma`. Both
    aim at ``cv_relation``'s CVs, and the expected value is that relation's,
    ``sqrt(c_l^2 cos^2 a + c_t^2 sin^2 a)``.
    """
    from pipeline.monodomain.cv_relation import cv_from_sigma
    from pipeline.monodomain.eikonal import problem_inputs, solve_eikonal
    from pipeline.monodomain.solver import MonodomainSolver
    from pipeline.simulate.calibration import direction_calibration

    c_l, c_t = (float(cv_from_sigma(s, cv_relation)) for s in sigma)
    rows = []
    for dx in resolutions:
        dt = DT_MS.get(dx, 0.02)
        scales = None
        for model in models:
            for angle in angles:
                a = np.radians(angle)
                expected = float(np.sqrt((c_l * np.cos(a)) ** 2 + (c_t * np.sin(a)) ** 2))
                if model == "monodomain":
                    if scales is None:
                        cal = direction_calibration(sigma[0], sigma[1], dx, dt,
                                                    cv_relation=cv_relation)
                        scales = (cal["l"]["scale"], cal["t"]["scale"])
                    p = _slab_problem(dx, angle, (sigma[0] * scales[0], sigma[1] * scales[1]), dt)
                    act = MonodomainSolver(p).run(stop_when_activated=True).activation_ms[0]
                else:
                    p = _slab_problem(dx, angle, sigma, dt)
                    cv_l, cv_t, src = problem_inputs(p, cv_relation=cv_relation)
                    act = solve_eikonal(p.grid.mask, dx, p.fibre, cv_l, cv_t, src)[0].numpy()
                cv = _slab_cv(act, p.grid.mask.shape, dx)
                rows.append({"model": model, "dx_mm": dx, "angle_deg": angle,
                             "cv_mm_per_ms": cv, "expected_mm_per_ms": expected,
                             "error_pct": 100.0 * (cv / expected - 1.0)})
                log.info("slab %s", json.dumps(rows[-1]))
    return rows


def study_figure(result: dict[str, Any], path: Path) -> Path:
    """Activation MAE (at the reference's point positions where the study has them), smallest
    ECG correlation and QRS duration against voxel size, per model and pattern."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline.io import atomic_path

    runs = pd.DataFrame(result["runs"])
    if "reference_model" in runs:
        runs = runs[runs["reference_model"] == "monodomain"]
    act = "activation_mae_ref_points_ms" if "activation_mae_ref_points_ms" in runs \
        else "activation_mae_ms"
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    runs = runs.assign(eikonal=[f" (eikonal {e:g} mm)" if m == "reaction_eikonal" and
                                e is not None and e == e and e < d else ""
                                for m, e, d in zip(runs["model"], runs.get(
                                    "eikonal_dx_mm", [None] * len(runs)), runs["dx_mm"])])
    for (heart, model, eik, pattern), g in runs.groupby(["heart", "model", "eikonal",
                                                         "pattern"]):
        g = g[g["dx_mm"] > g["reference_dx_mm"]].sort_values("dx_mm")
        style = "-o" if model == "monodomain" else ("--s" if not eik else ":^")
        label = f"{heart} {model}{eik} {pattern}"
        axes[0].plot(g["dx_mm"], g[act], style, label=label)
        axes[1].plot(g["dx_mm"], g["ecg_corr_min"], style, label=label)
        axes[2].plot(g["dx_mm"], g["qrs_ms"], style, label=label)
    where = "the reference's 75 point positions" if act != "activation_mae_ms" \
        else "the 75 points"
    for ax, title in zip(axes, (f"activation MAE at {where} (ms)",
                                "smallest lead correlation with the reference",
                                "QRS duration (ms)")):
        ax.set_xlabel("voxel size (mm)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path
