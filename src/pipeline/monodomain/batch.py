"""Build a batch problem from an anatomy and rows of the simulation parameter table.

One anatomy is prepared once (:func:`prepare_anatomy`: tissue coordinates, fast
subendocardial layers, assembled diffusion parts); every batch of simulations on it then
only draws its patterns and conductivities (:func:`build_problem`). The parameter
columns follow the shard CSV of the campaign (interface item 4): ``sim_id``, ``pattern``,
``sigma_l``, ``sigma_t``, ``sigma_fast_endo`` (S/m), ``gkr_scale``, ``bcl_ms``, ``seed``,
``site_jitter_mm``, ``site_delay_max_ms``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.params import SimParams
from pipeline.settings import SimulateSettings
from pipeline.monodomain.diffusion import StencilParts, assemble_parts
from pipeline.monodomain.patterns import FAST_REGIONS, TissueCoords, fast_layers, make_pattern
from pipeline.monodomain.problem import Conductivities, Grid, MonodomainProblem

log = logging.getLogger(__name__)

#: Returns (B, 4, 19) initial states for per-simulation BCLs and G_Kr scales.
InitialStates = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PreparedAnatomy:
    """What every batch on one anatomy shares."""

    name: str
    grid: Grid
    fibre: np.ndarray
    celltype: np.ndarray
    coords: TissueCoords
    fast: dict[str, np.ndarray]
    parts: StencilParts | None
    fast_depth_mm: float = 1.0


def prepare_anatomy(anatomy: Any, *, fast_depth_mm: float = 1.0,
                    fast_max_apicobasal: float = 0.85,
                    fast_septal_max_apicobasal: float = 0.95,
                    diffusion: bool = True,
                    fast_face_connected: bool | None = None) -> PreparedAnatomy:
    """Coordinates, fast layers and diffusion parts of an anatomy (``Anatomy`` record);
    ``diffusion=False`` leaves the parts out (``parts`` None: an eikonal-only grid).

    ``fast_face_connected`` (default: ``diffusion``): the fast layers' voxels that touch
    only at edges or corners are joined by a face neighbour
    (:func:`pipeline.monodomain.patterns.fast_layers`), as the diffusion operator needs;
    an eikonal-only grid keeps the layers as the depth rule draws them."""
    grid = Grid(origin=anatomy.origin, spacing=anatomy.spacing, mask=np.asarray(anatomy.mask))
    coords = TissueCoords.from_anatomy(anatomy)
    if fast_face_connected is None:
        fast_face_connected = diffusion
    fast = fast_layers(coords, depth_mm=fast_depth_mm, max_apicobasal=fast_max_apicobasal,
                       septal_max_apicobasal=fast_septal_max_apicobasal,
                       face_connected=fast_face_connected)
    fibre = np.moveaxis(np.asarray(anatomy.fibre), 0, -1)[grid.mask]
    parts = assemble_parts(grid.mask, grid.spacing, fibre, fast) if diffusion else None
    celltype = np.asarray(anatomy.celltype)[grid.mask]
    log.info("anatomy %s: %d voxels, fast layers LV %d RV %d voxels%s", anatomy.name,
             grid.n_tissue, int(fast["fast_lv"].sum()), int(fast["fast_rv"].sum()),
             " (face-connected)" if fast_face_connected else "")
    return PreparedAnatomy(name=str(anatomy.name), grid=grid, fibre=fibre, celltype=celltype,
                           coords=coords, fast=fast, parts=parts,
                           fast_depth_mm=float(fast_depth_mm))


def default_initial_states(bcl_ms: np.ndarray, gkr_scale: np.ndarray) -> np.ndarray:
    """TP06's built-in start-of-beat states (BCL 1000 ms, G_Kr x 1) for every simulation.

    Used when no table of paced steady states is given; it ignores ``bcl_ms`` and
    ``gkr_scale``.
    """
    import torch

    from pipeline.cell import tp06
    table = np.zeros((4, tp06.N_STATES))
    table[1:] = tp06.initial_state(torch.tensor([1, 2, 3]), dtype=torch.float64).T.numpy()
    return np.broadcast_to(table, (len(bcl_ms), 4, tp06.N_STATES)).copy()


def initial_states_from_table(table: Any) -> InitialStates:
    """Adapter: a steady-state table (:func:`pipeline.cell.steady.read_initial_states`)
    as the ``initial_states`` callable of :func:`build_problem`.

    Cell types missing from the table get NaN rows (refused if the anatomy uses them).
    """
    import torch

    from pipeline.cell import steady, tp06

    def lookup(bcl_ms: np.ndarray, gkr_scale: np.ndarray) -> np.ndarray:
        out = np.full((len(bcl_ms), 4, tp06.N_STATES), np.nan)
        codes = [tp06.CELLTYPES[name] for name in table.celltypes]
        states = steady.initial_states_for(
            table, torch.tensor(codes)[None, :], torch.tensor(bcl_ms, dtype=torch.float64)[:, None],
            torch.tensor(gkr_scale, dtype=torch.float64)[:, None])      # (19, B, n_types)
        out[:, codes, :] = states.permute(1, 2, 0).numpy()
        return out
    return lookup


def build_problem(prepared: PreparedAnatomy, specs: Sequence[SimParams], *, dt_ms: float,
                  duration_ms: float, chi_per_mm: float = 140.0, cm_uF_per_cm2: float = 1.0,
                  cv_scale: float = 1.0, cv_scale_t: float | None = None,
                  cv_scale_fast: float | None = None,
                  initial_states: InitialStates | None = None, site_delay_min_ms: float = 0.0,
                  stim_amplitude: float = -60.0,
                  stim_duration_ms: float = 2.0, site_radius_mm: float = 2.5,
                  gks_apex_base: tuple[float, float] = (1.0, 1.0)) -> MonodomainProblem:
    """A :class:`MonodomainProblem` for ``specs`` on one prepared anatomy.

    ``cv_scale`` multiplies every conductivity (CV calibration); ``cv_scale_t``, if given,
    replaces it for sigma_t (per-direction calibration, :func:`pipeline.monodomain.cv.
    calibrate_directions`), ``cv_scale_fast`` for sigma_fast_endo (:func:`pipeline.
    monodomain.layer.calibrate_fast_layer`). They are recorded with each simulation, as are
    the spec and the drawn pattern.

    ``gks_apex_base`` = (apex, base) multiplies g_Ks of every cell linearly along the
    apicobasal coordinate (:func:`apicobasal_gks_scale`), the apex-to-base APD
    heterogeneity; (1, 1) leaves it out.
    """
    if not specs:
        raise InputError("no simulation in the batch")
    scale_t = cv_scale if cv_scale_t is None else float(cv_scale_t)
    scale_f = cv_scale if cv_scale_fast is None else float(cv_scale_fast)
    if not all(x > 0 and np.isfinite(x) for x in (cv_scale, scale_t, scale_f)):
        raise InputError(f"CV scales must be finite and > 0, got cv_scale {cv_scale}, "
                         f"cv_scale_t {cv_scale_t}, cv_scale_fast {cv_scale_fast}")
    patterns = [make_pattern(s.pattern, prepared.coords, s.seed, site_jitter_mm=s.site_jitter_mm,
                             site_delay_ms=(site_delay_min_ms, s.site_delay_max_ms),
                             amplitude=stim_amplitude, duration_ms=stim_duration_ms,
                             site_radius_mm=site_radius_mm)
                for s in specs]
    bcl = np.array([s.bcl_ms for s in specs])
    gkr = np.array([s.gkr_scale for s in specs])
    init = (initial_states or default_initial_states)(bcl, gkr)
    cond = Conductivities(sigma_l=cv_scale * np.array([s.sigma_l for s in specs]),
                          sigma_t=scale_t * np.array([s.sigma_t for s in specs]),
                          sigma_fast_endo=scale_f * np.array([s.sigma_fast_endo for s in specs]),
                          scale=np.full(len(specs), cv_scale),
                          scale_t=np.full(len(specs), scale_t),
                          scale_fast=np.full(len(specs), scale_f))
    for s in specs:
        if scale_t * s.sigma_t > cv_scale * s.sigma_l:
            raise InputError(f"simulation {s.sim_id}: scaled sigma_t {scale_t * s.sigma_t:.4g} "
                             f"exceeds scaled sigma_l {cv_scale * s.sigma_l:.4g} S/m")
    gks_apex, gks_base = (float(x) for x in gks_apex_base)
    voxel_scales = ({} if gks_apex == gks_base == 1.0 else
                    {"g_Ks": apicobasal_gks_scale(prepared.coords.apicobasal, gks_apex, gks_base)})
    records = tuple({**asdict(s), "anatomy": prepared.name, "cv_scale": cv_scale,
                     "cv_scale_t": scale_t, "cv_scale_fast": scale_f,
                     "gks_apex_base": [gks_apex, gks_base],
                     "pattern_params": p.record} for s, p in zip(specs, patterns))
    enabled = np.array([[p.fast_enabled[FAST_REGIONS.index(r)] for r in prepared.fast]
                        for p in patterns], dtype=bool).reshape(len(specs), len(prepared.fast))
    return MonodomainProblem(
        grid=prepared.grid, fibre=prepared.fibre, conductivities=cond,
        celltype=prepared.celltype, initial_states=init,
        stimuli=tuple(p.stimuli for p in patterns), dt_ms=dt_ms, duration_ms=duration_ms,
        fast_regions=prepared.fast, fast_enabled=enabled, fast_depth_mm=prepared.fast_depth_mm,
        cell_scales={"g_Kr": gkr},
        voxel_scales=voxel_scales,
        chi_per_mm=chi_per_mm, cm_uF_per_cm2=cm_uF_per_cm2, records=records)


def apicobasal_gks_scale(apicobasal: np.ndarray, apex: float, base: float) -> np.ndarray:
    """g_Ks multiplier per voxel, linear from ``apex`` (coordinate 0) to ``base`` (1).

    A larger g_Ks shortens the action potential, so the multipliers set the apex-to-base
    APD gradient of the T wave (simulation studies of T-wave genesis, e.g. Okada et al.
    2011, Heart Rhythm 8:1288, combine it with the transmural gradient). The workflow's
    default (apex 2, base 1: shorter apical action potentials) is the one that gave the
    textbook T-wave polarities on the demo heart; docs/simulate.md has the measurements.

    Raises
    ------
    InputError
        For a negative or non-finite multiplier.
    """
    for name, value in (("apex", apex), ("base", base)):
        if not (np.isfinite(value) and value >= 0):
            raise InputError(f"g_Ks {name} multiplier must be finite and >= 0, got {value}")
    ab = np.clip(np.asarray(apicobasal, dtype=np.float64), 0.0, 1.0)
    return apex + (base - apex) * ab


def problem_from_settings(prepared: PreparedAnatomy, specs: Sequence[SimParams],
                          settings: SimulateSettings, *, cv_scale: float = 1.0,
                          cv_scale_t: float | None = None, cv_scale_fast: float | None = None,
                          initial_states: InitialStates | None = None) -> MonodomainProblem:
    """:func:`build_problem` with the simulate stage's settings.

    The fast-layer settings (``fast_endo_depth_mm``, ``fast_endo_max_apicobasal``,
    ``fast_endo_septal_max_apicobasal``) act in
    :func:`prepare_anatomy`; pass the same settings there.
    """
    return build_problem(prepared, specs, dt_ms=settings.dt_ms,
                         duration_ms=settings.duration_ms, chi_per_mm=settings.chi_per_mm,
                         cm_uF_per_cm2=settings.cm_uF_per_cm2, cv_scale=cv_scale,
                         cv_scale_t=cv_scale_t, cv_scale_fast=cv_scale_fast,
                         initial_states=initial_states,
                         stim_amplitude=settings.stim_amplitude_pA_per_pF,
                         stim_duration_ms=settings.stim_duration_ms,
                         site_radius_mm=settings.site_radius_mm,
                         gks_apex_base=(settings.gks_scale_apex, settings.gks_scale_base))
