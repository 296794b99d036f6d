"""Typed settings: one frozen record per config section, built once from the validated config.

The command line resolves ``--settings`` against the schema (:func:`pipeline.config.resolve`)
and builds these records; everything below it takes them whole and reads attributes, never
``cfg["..."]``. Science settings (what is simulated: they change the results and are the
workflow rules' ``params``) are kept apart from run settings (how it is computed: device,
precision, compilation, batch size, threads; :data:`pipeline.config.RUN_KEYS`), so flipping
``simulate.compile`` or ``simulate.device`` does not rerun every shard.

The path of one key, ``simulate.dt_ms``: ``config.yaml`` -> the rule's ``--settings``
(``workflow/rules/common.smk``) -> :meth:`SimulateSettings.from_config` (CLI) ->
:func:`pipeline.monodomain.batch.problem_from_settings` -> ``MonodomainProblem.dt_ms``,
which the solver's time loop reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from pipeline.errors import InputError

T = TypeVar("T")



def _pick(cls: type[T], section: Mapping[str, Any]) -> T:
    """``cls`` from the keys of ``section`` that are its fields (the others are ignored)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in section.items() if k in names})


@dataclass(frozen=True)
class RunSettings:
    """How a stage computes; none of these changes a result beyond round-off.

    Attributes
    ----------
    device
        ``auto``, ``cpu`` or ``cuda`` (:func:`pipeline.device.pick_device`).
    dtype
        ``float32`` or ``float64`` state and tables.
    compile
        ``torch.compile`` the time step (eager fallback if compilation fails).
    batch_size
        Simulations advanced together in one tensor.
    threads
        torch CPU threads (None leaves torch's default).
    steps_per_call
        Compiled time steps chained in one call (1: one step per call).
    """

    device: str
    dtype: str
    compile: bool
    batch_size: int
    threads: int | None = None
    steps_per_call: int = 1

    @classmethod
    def from_config(cls, section: Mapping[str, Any], **overrides: Any) -> RunSettings:
        """From a resolved section (``simulate``), with command-line ``overrides`` (None
        values are ignored)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        run = _pick(cls, {**section, **given})
        if run.dtype not in ("float32", "float64"):
            raise InputError(f"dtype {run.dtype!r}: expected 'float32' or 'float64'")
        if run.batch_size < 1:
            raise InputError(f"batch_size {run.batch_size}: expected >= 1")
        if run.steps_per_call < 1:
            raise InputError(f"steps_per_call {run.steps_per_call}: expected >= 1")
        return run

    def torch_dtype(self) -> Any:
        """The torch dtype of :attr:`dtype`."""
        import torch
        return torch.float32 if self.dtype == "float32" else torch.float64


@dataclass(frozen=True)
class SimulateSettings:
    """What the simulate stage computes (``simulate`` section; units in the names).

    The schema (``workflow/schemas/config.schema.yaml``) gives every key's meaning and
    its default (the one place defaults live); :meth:`from_config` builds the record from
    a resolved section, :meth:`defaults` from the schema's defaults.
    """

    model: str
    dt_ms: float
    duration_ms: float
    record_every_ms: float
    chi_per_mm: float
    cm_uF_per_cm2: float
    sigma_bath_S_per_m: float
    ecg_filter: bool
    target_cv_mm_per_ms: float | None
    calibrate_directions: bool
    save_activation_map: bool
    diffusion: str
    fast_endo_depth_mm: float
    eikonal_resolution_mm: float | None
    eikonal_curvature: bool
    fast_endo_max_apicobasal: float
    stim_amplitude_pA_per_pF: float
    stim_duration_ms: float
    site_radius_mm: float
    repol_threshold_mV: float
    gks_scale_apex: float
    gks_scale_base: float
    ecg_fast_layer_source: str = "myocardium"
    fast_endo_septal_max_apicobasal: float = 0.95
    fast_endo_face_connected: bool = True
    ecg_medium: str = "infinite"
    eikonal_layer_load: bool = True
    cv_relation: str = "continuum"

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> SimulateSettings:
        """From the resolved ``simulate`` section (run keys are ignored)."""
        return _pick(cls, section)

    @classmethod
    def defaults(cls) -> SimulateSettings:
        """The schema's defaults."""
        from pipeline.config import resolve
        return cls.from_config(resolve({})["simulate"])

    def time_grid(self) -> tuple[int, int]:
        """(solver steps per recorded sample, samples per simulation).

        Raises
        ------
        InputError
            ``record_every_ms`` is not a multiple of ``dt_ms``, or ``duration_ms`` not a
            multiple (>= 2) of ``record_every_ms``.
        """
        dt, rec, dur = self.dt_ms, self.record_every_ms, self.duration_ms
        k = round(rec / dt)
        if k < 1 or abs(k * dt - rec) > 1e-9 * rec:
            raise InputError(f"simulate.record_every_ms = {rec} must be a multiple of "
                             f"simulate.dt_ms = {dt}")
        n = round(dur / rec)
        if n < 2 or abs(n * rec - dur) > 1e-9 * dur:
            raise InputError(f"simulate.duration_ms = {dur} must be a multiple (>= 2) of "
                             f"simulate.record_every_ms = {rec}")
        return int(k), int(n)

    def eikonal_grid_mm(self, dx_mm: float) -> float | None:
        """The voxel size (mm) of the reaction-eikonal mode's finer eikonal grid for a
        simulation grid of ``dx_mm``: ``eikonal_resolution_mm`` where the model is
        ``reaction_eikonal`` and it is finer than ``dx_mm``; otherwise None, and the
        eikonal runs on the simulation grid (a 1 mm value on a 1 or 0.5 mm grid)."""
        want = self.eikonal_resolution_mm
        if self.model != "reaction_eikonal" or want is None or not want < dx_mm * (1 - 1e-6):
            return None
        return float(want)

    def science(self) -> dict[str, Any]:
        """The settings as a plain mapping (stored with every shard)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class CellsSettings:
    """What the cells stage computes (``cells`` section): steady states per cell type,
    cycle length and G_Kr scale."""

    celltypes: tuple[str, ...]
    bcl_ms: tuple[float, ...]
    gkr_scale: tuple[float, ...]
    dt_ms: float
    min_beats: int
    max_beats: int
    tolerance_mV: float
    stim_amplitude_pA_per_pF: float
    stim_duration_ms: float
    compile: bool

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> CellsSettings:
        """From the resolved ``cells`` section.

        Raises
        ------
        InputError
            ``max_beats`` below ``min_beats``.
        """
        s = dict(section)
        for key in ("celltypes", "bcl_ms", "gkr_scale"):
            if key in s:
                s[key] = tuple(s[key])
        out = _pick(cls, s)
        if out.max_beats < out.min_beats:
            raise InputError(f"config key 'cells.max_beats' ({out.max_beats}) must be >= "
                             f"'cells.min_beats' ({out.min_beats})")
        return out
