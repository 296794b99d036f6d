"""What to simulate: an immutable record of one batch of monodomain simulations.

A :class:`MonodomainProblem` holds everything that defines B simulations on one anatomy:
the voxel grid and its tissue mask, fibre directions, conductivities per simulation (and
per region: myocardium and fast endocardial layers), cell types and cell-model scales,
initial states, stimuli, time step and duration. How to solve it lives in
:mod:`pipeline.monodomain.solver`. Construction validates shapes and values and raises
:class:`~pipeline.errors.InputError` before any work is done.

The monodomain equation (DESIGN.md sections 2 and 8):

    chi (Cm dV/dt + I_ion) = div(sigma grad V) + I_stim,

with V in mV, t in ms, chi in 1/mm, Cm in uF/cm^2 (0.01 uF/mm^2 per uF/cm^2), sigma in
S/m (= mS/mm) and div(sigma grad V) in uA/mm^3; per unit membrane the diffusion current
is div(sigma grad V) / (chi Cm 0.01) in pA/pF = mV/ms, i.e. the diffusivity is
D = 100 sigma / (chi Cm) mm^2/ms (0.095 mm^2/ms for sigma = 0.1334 S/m, chi = 140/mm,
Cm = 1 uF/cm^2).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.errors import InputError
from pipeline.monodomain.diffusion import check_fibres
from pipeline.monodomain.stimulus import Stimulus, check_stimuli

log = logging.getLogger(__name__)

#: Number of TP06 states (pipeline.cell.tp06.N_STATES); duplicated to keep this module light.
N_CELL_STATES = 19


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class Grid:
    """A voxel grid with a tissue mask; voxel (i, j, k) is centred at origin + (i, j, k) * spacing.

    Attributes
    ----------
    origin, spacing
        float64 (3,), mm.
    mask
        bool (nx, ny, nz), tissue voxels.
    """

    origin: np.ndarray
    spacing: np.ndarray
    mask: np.ndarray

    def __post_init__(self) -> None:
        mask = np.asarray(self.mask)
        if mask.ndim != 3 or mask.dtype != bool:
            raise InputError(f"grid mask must be a 3-D bool array, got {mask.dtype} {mask.shape}")
        if not mask.any():
            raise InputError(f"grid mask of shape {mask.shape} holds no tissue voxel")
        origin = np.asarray(self.origin, dtype=np.float64)
        spacing = np.asarray(self.spacing, dtype=np.float64)
        if origin.shape != (3,) or spacing.shape != (3,) or np.any(spacing <= 0):
            raise InputError(f"grid origin and spacing must be 3 numbers (mm), spacing > 0; got "
                             f"origin {origin}, spacing {spacing}")
        object.__setattr__(self, "mask", _frozen(mask))
        object.__setattr__(self, "origin", _frozen(origin))
        object.__setattr__(self, "spacing", _frozen(spacing))

    @property
    def n_tissue(self) -> int:
        """Number of tissue voxels."""
        return int(self.mask.sum())

    @property
    def ijk(self) -> np.ndarray:
        """int64 (n, 3): voxel indices of the tissue voxels, C order."""
        return np.argwhere(self.mask)

    @property
    def xyz(self) -> np.ndarray:
        """float64 (n, 3): centres of the tissue voxels, mm."""
        return self.origin + self.ijk * self.spacing

    def field(self, values: np.ndarray) -> np.ndarray:
        """Tissue values (n,) -> (nx, ny, nz) array, NaN outside tissue."""
        out = np.full(self.mask.shape, np.nan, dtype=np.float64)
        out[self.mask] = values
        return out


@dataclass(frozen=True)
class Conductivities:
    """Per-simulation conductivities (S/m) and the CV-calibration factor applied to them.

    Attributes
    ----------
    sigma_l, sigma_t
        (B,) along and across the fibres in the myocardium.
    sigma_fast_endo
        (B,) isotropic conductivity of the fast subendocardial layer.
    scale
        (B,) factor by which sigma_l was multiplied (CV calibration; 1 without it); the
        values above are already scaled.
    scale_t
        (B,) factor by which sigma_t was multiplied (per-direction calibration); ``scale``
        if None.
    scale_fast
        (B,) factor by which sigma_fast_endo was multiplied (the fast layer's own
        calibration); ``scale`` if None.
    """

    sigma_l: np.ndarray
    sigma_t: np.ndarray
    sigma_fast_endo: np.ndarray
    scale: np.ndarray = field(default_factory=lambda: np.ones(1))
    scale_t: np.ndarray | None = None
    scale_fast: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.scale_t is None:
            object.__setattr__(self, "scale_t", self.scale)
        if self.scale_fast is None:
            object.__setattr__(self, "scale_fast", self.scale)
        arrays = {k: np.atleast_1d(np.asarray(getattr(self, k), dtype=np.float64))
                  for k in ("sigma_l", "sigma_t", "sigma_fast_endo", "scale", "scale_t",
                            "scale_fast")}
        b = max(a.size for a in arrays.values())
        for name, a in arrays.items():
            if a.size not in (1, b) or a.ndim != 1:
                raise InputError(f"conductivity {name} has shape {a.shape}, expected ({b},)")
            a = np.broadcast_to(a, (b,))
            if np.any(~np.isfinite(a)) or np.any(a <= 0):
                raise InputError(f"conductivity {name} must be finite and > 0 (S/m), got {a}")
            object.__setattr__(self, name, _frozen(a))
        bad = self.sigma_l < self.sigma_t
        if bad.any():
            b0 = int(np.flatnonzero(bad)[0])
            raise InputError(f"simulation {b0}: sigma_l = {self.sigma_l[b0]} S/m is below "
                             f"sigma_t = {self.sigma_t[b0]} S/m")

    @property
    def batch(self) -> int:
        return int(self.sigma_l.size)

    @property
    def calibrated(self) -> bool:
        """Whether any conductivity was multiplied by a CV-calibration scale other than 1."""
        return bool(np.any(self.scale != 1.0) or np.any(self.scale_t != 1.0)
                    or np.any(self.scale_fast != 1.0))

    def physical(self) -> Conductivities:
        """The tissue's conductivities before the CV calibration (scales 1)."""
        return Conductivities(sigma_l=self.sigma_l / self.scale,
                              sigma_t=self.sigma_t / self.scale_t,
                              sigma_fast_endo=self.sigma_fast_endo / self.scale_fast)


@dataclass(frozen=True)
class MonodomainProblem:
    """B monodomain simulations on one anatomy (immutable; validated on construction).

    Attributes
    ----------
    grid
        The voxel grid and tissue mask (n tissue voxels).
    fibre
        float64 (n, 3) unit fibre directions (a (3, nx, ny, nz) field is accepted).
    conductivities
        Per-simulation conductivities (B,).
    celltype
        uint8 (n,) TP06 cell-type codes (1 endo, 2 M, 3 epi).
    initial_states
        float64 (B, 4, 19): the state each cell type starts from, per simulation; row
        ``code`` is used by cells of type ``code`` (row 0 unused).
    stimuli
        Per simulation, a tuple of :class:`Stimulus`.
    dt_ms, duration_ms
        Time step and simulated time (ms).
    fast_regions
        Named bool (n,) masks of fast subendocardial layers (e.g. ``fast_lv``,
        ``fast_rv``); may be empty.
    fast_enabled
        bool (B, n_fast_regions): whether each simulation uses each fast layer (a
        disabled layer conducts like the myocardium: bundle-branch block).
    fast_depth_mm
        The fast layers' depth (mm), or None if unknown: the reaction-eikonal mode slows
        their fronts by the load of the myocardium they drive at this depth
        (:func:`pipeline.monodomain.layer.layer_load`).
    cell_scales
        TP06 conductance scales per simulation, e.g. ``{"g_Kr": (B,)}``.
    voxel_scales
        TP06 conductance scales per tissue voxel, shared by every simulation, e.g. the
        apex-to-base ``{"g_Ks": (n,)}``; they multiply the per-simulation scales.
    chi_per_mm, cm_uF_per_cm2
        Surface-to-volume ratio and membrane capacitance.
    records
        Per simulation, a dict of what defines it (pattern and its parameters, CV scale);
        stored with the results.
    """

    grid: Grid
    fibre: np.ndarray
    conductivities: Conductivities
    celltype: np.ndarray
    initial_states: np.ndarray
    stimuli: tuple[tuple[Stimulus, ...], ...]
    dt_ms: float
    duration_ms: float
    fast_regions: Mapping[str, np.ndarray] = field(default_factory=dict)
    fast_enabled: np.ndarray | None = None
    fast_depth_mm: float | None = None
    cell_scales: Mapping[str, np.ndarray] = field(default_factory=dict)
    voxel_scales: Mapping[str, np.ndarray] = field(default_factory=dict)
    chi_per_mm: float = 140.0
    cm_uF_per_cm2: float = 1.0
    records: tuple[dict, ...] = ()

    def __post_init__(self) -> None:
        n = self.grid.n_tissue
        b = self.conductivities.batch
        object.__setattr__(self, "fibre", _frozen(check_fibres(self.grid.mask, self.fibre)))
        celltype = np.asarray(self.celltype)
        if celltype.shape == self.grid.mask.shape:
            celltype = celltype[self.grid.mask]
        if celltype.shape != (n,):
            raise InputError(f"celltype has shape {celltype.shape}, expected ({n},) or the mask "
                             f"shape {self.grid.mask.shape}")
        if np.any((celltype < 1) | (celltype > 3)):
            bad = int(np.flatnonzero((celltype < 1) | (celltype > 3))[0])
            raise InputError(f"tissue voxel {tuple(self.grid.ijk[bad])} has cell type "
                             f"{int(celltype[bad])}; expected 1 (endo), 2 (M) or 3 (epi)")
        object.__setattr__(self, "celltype", _frozen(celltype.astype(np.uint8)))
        init = np.asarray(self.initial_states, dtype=np.float64)
        if init.shape == (4, N_CELL_STATES):
            init = np.broadcast_to(init, (b, 4, N_CELL_STATES))
        if init.shape != (b, 4, N_CELL_STATES):
            raise InputError(f"initial_states has shape {init.shape}, expected ({b}, 4, "
                             f"{N_CELL_STATES}) (simulation, cell-type code, state)")
        used = np.unique(celltype)
        if np.any(~np.isfinite(init[:, used])):
            raise InputError("initial_states holds non-finite values for a cell type in use")
        object.__setattr__(self, "initial_states", _frozen(init))
        if len(self.stimuli) != b:
            raise InputError(f"{len(self.stimuli)} stimulus lists for {b} simulations")
        stimuli = tuple(tuple(s) for s in self.stimuli)
        for i, sims in enumerate(stimuli):
            if not all(isinstance(s, Stimulus) for s in sims):
                raise InputError(f"simulation {i}: stimuli must be Stimulus records")
        check_stimuli(stimuli, n)
        object.__setattr__(self, "stimuli", stimuli)
        for name, value in (("dt_ms", self.dt_ms), ("duration_ms", self.duration_ms),
                            ("chi_per_mm", self.chi_per_mm),
                            ("cm_uF_per_cm2", self.cm_uF_per_cm2)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"{name} must be a positive number, got {value!r}")
        regions = {}
        for name, sel in dict(self.fast_regions).items():
            sel = np.asarray(sel, dtype=bool)
            if sel.shape == self.grid.mask.shape:
                sel = sel[self.grid.mask]
            if sel.shape != (n,):
                raise InputError(f"fast region {name!r} has shape {sel.shape}, expected ({n},)")
            regions[name] = _frozen(sel)
        object.__setattr__(self, "fast_regions", regions)
        enabled = (np.ones((b, len(regions)), dtype=bool) if self.fast_enabled is None
                   else np.asarray(self.fast_enabled, dtype=bool))
        if enabled.shape != (b, len(regions)):
            raise InputError(f"fast_enabled has shape {enabled.shape}, expected ({b}, "
                             f"{len(regions)}) for regions {list(regions)}")
        object.__setattr__(self, "fast_enabled", _frozen(enabled))
        if self.fast_depth_mm is not None and not (math.isfinite(self.fast_depth_mm)
                                                   and self.fast_depth_mm > 0):
            raise InputError(f"fast_depth_mm must be a positive number of mm, got "
                             f"{self.fast_depth_mm!r}")
        scales = {}
        for name, value in dict(self.cell_scales).items():
            arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (b,))
            if np.any(~np.isfinite(arr)) or np.any(arr < 0):
                raise InputError(f"cell scale {name} must be finite and >= 0, got {arr}")
            scales[name] = _frozen(arr)
        object.__setattr__(self, "cell_scales", scales)
        n = self.grid.n_tissue
        vscales = {}
        for name, value in dict(self.voxel_scales).items():
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != (n,):
                raise InputError(f"voxel scale {name} has shape {arr.shape}, expected ({n},) "
                                 f"(one per tissue voxel)")
            if np.any(~np.isfinite(arr)) or np.any(arr < 0):
                raise InputError(f"voxel scale {name} must be finite and >= 0")
            vscales[name] = _frozen(arr)
        object.__setattr__(self, "voxel_scales", vscales)
        records = tuple(dict(r) for r in self.records) or tuple({} for _ in range(b))
        if len(records) != b:
            raise InputError(f"{len(records)} records for {b} simulations")
        object.__setattr__(self, "records", records)

    @property
    def batch(self) -> int:
        """Number of simulations B."""
        return self.conductivities.batch

    @property
    def n_steps(self) -> int:
        """Number of time steps: round(duration / dt)."""
        return int(round(self.duration_ms / self.dt_ms))

    def region_sigma(self, physical: bool = False, fast_as_myocardium: bool = False
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{region: (a, c)}`` per simulation, sigma = a I + c f f^T (S/m), for the parts;
        with ``physical``, of the conductivities before the CV calibration; with
        ``fast_as_myocardium``, the fast layers at the myocardial tensor (the ECG source
        without the conduction-system surrogate's own currents)."""
        c = self.conductivities.physical() if physical else self.conductivities
        myo = (c.sigma_t, c.sigma_l - c.sigma_t)
        out = {"myo": myo}
        for r, name in enumerate(self.fast_regions):
            on = self.fast_enabled[:, r] & (not fast_as_myocardium)
            out[name] = (np.where(on, c.sigma_fast_endo, c.sigma_t),
                         np.where(on, 0.0, c.sigma_l - c.sigma_t))
        return out

    def diffusion_factor(self) -> float:
        """1 / (chi Cm 0.01): converts uA/mm^3 to pA/pF (mV/ms), in mm^3/uF."""
        return 1.0 / (self.chi_per_mm * self.cm_uF_per_cm2 * 0.01)


def uniform_initial_states(state: Sequence[float] | np.ndarray, batch: int) -> np.ndarray:
    """(B, 4, 19) initial states with the same state for every cell type and simulation."""
    s = np.asarray(state, dtype=np.float64)
    if s.shape != (N_CELL_STATES,):
        raise InputError(f"a cell state has {N_CELL_STATES} values, got shape {s.shape}")
    return np.broadcast_to(s, (batch, 4, N_CELL_STATES)).copy()
