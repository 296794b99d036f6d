"""TP06 steady states: pace every (cell type x BCL x G_Kr scale) and the file that holds them.

``cells/initial_states.h5``:

| name | dtype, shape | meaning |
|---|---|---|
| ``states`` | float64 (n_celltype, n_bcl, n_gkr, 19) | state at the start of a beat after pacing |
| ``celltypes`` | str (n_celltype,) | ``endo``, ``M``, ``epi`` |
| ``bcl_ms`` | float64 (n_bcl,) | cycle lengths (ms) |
| ``gkr_scale`` | float64 (n_gkr,) | G_Kr multipliers |
| ``state_names`` | str (19,) | order of the last axis (:data:`pipeline.cell.tp06.STATE_NAMES`) |
| ``beats`` | int64 (n_celltype, n_bcl, n_gkr) | beats paced |
| ``change_mV`` | float64 (same) | max beat-to-beat change of V over the last beat (mV) |
| ``converged`` | bool (same) | change below the tolerance |
| ``apd90_ms``, ``apd50_ms``, ``vrest_mV``, ``vpeak_mV`` | float64 (same) | figures of the last beat |

Attributes: ``dt_ms``, ``tolerance_mV``, ``stim_amplitude_pA_per_pF``, ``stim_duration_ms``,
and provenance.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from pipeline.cell import beat, pacing, tp06
from pipeline.errors import InputError
from pipeline.io import atomic_path, write_provenance

log = logging.getLogger(__name__)

_FIGURES = {"apd90_ms": "APD90_ms", "apd50_ms": "APD50_ms", "vrest_mV": "Vrest_mV",
            "vpeak_mV": "Vpeak_mV"}


@dataclasses.dataclass(frozen=True)
class InitialStates:
    """Steady states by cell type, cycle length and G_Kr scale (see module docstring)."""

    states: np.ndarray            # (n_celltype, n_bcl, n_gkr, 19), order of tp06.STATE_NAMES
    celltypes: tuple[str, ...]
    bcl_ms: np.ndarray
    gkr_scale: np.ndarray
    extras: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def compute_initial_states(celltypes: Sequence[str], bcl_ms: Sequence[float],
                           gkr_scale: Sequence[float], *, dt_ms: float = 0.02,
                           min_beats: int = 100, max_beats: int = 400,
                           tolerance_mV: float = 0.05, stim_amplitude: float = -52.0,
                           stim_duration_ms: float = 1.0, steps_per_call: int = 10,
                           compile: bool = True, progress: bool = True) -> InitialStates:
    """Pace all combinations as one batch (float64) until steady; see :func:`pacing.pace`."""
    for name in celltypes:
        tp06.celltype_codes(name)
    combos = list(itertools.product(celltypes, bcl_ms, gkr_scale))
    names = [c[0] for c in combos]
    state = tp06.initial_state(names, dtype=torch.float64)
    params = tp06.make_params(names, dtype=torch.float64,
                              g_Kr=torch.tensor([c[2] for c in combos], dtype=torch.float64))
    log.info("pacing %d cells (%d cell types x %d BCL x %d G_Kr scales), dt %.3g ms, "
             "%d-%d beats, tolerance %.3g mV", len(combos), len(celltypes), len(bcl_ms),
             len(gkr_scale), dt_ms, min_beats, max_beats, tolerance_mV)
    res = pacing.pace(state, params, [c[1] for c in combos], dt_ms=dt_ms, beats=min_beats,
                      max_beats=max_beats, tolerance_mV=tolerance_mV,
                      stim_amplitude=stim_amplitude, stim_duration_ms=stim_duration_ms,
                      steps_per_call=steps_per_call, compile=compile, progress=progress)
    shape = (len(celltypes), len(bcl_ms), len(gkr_scale))
    states = res.state_end.T.cpu().numpy().reshape(*shape, tp06.N_STATES)
    extras: dict[str, np.ndarray] = {
        "beats": res.beats.reshape(shape), "change_mV": res.change_mV.reshape(shape),
        "converged": res.converged.reshape(shape),
    }
    figs = [beat.figures(t, dt_ms) for t in res.traces]
    for key, fkey in _FIGURES.items():
        extras[key] = np.array([f[fkey] for f in figs]).reshape(shape)
    log.info("pacing took %.1f s; APD90 %s ms", res.wall_s,
             np.round(extras["apd90_ms"].ravel(), 1).tolist())
    return InitialStates(
        states=states, celltypes=tuple(celltypes), bcl_ms=np.asarray(bcl_ms, dtype=float),
        gkr_scale=np.asarray(gkr_scale, dtype=float), extras=extras,
        attrs={"dt_ms": dt_ms, "tolerance_mV": tolerance_mV,
               "stim_amplitude_pA_per_pF": stim_amplitude,
               "stim_duration_ms": stim_duration_ms, "wall_s": res.wall_s})


def write_initial_states(path: str | Path, table: InitialStates,
                         config: Mapping[str, Any] | None = None) -> None:
    """Write ``table`` to ``path`` (atomically, with provenance)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5["states"] = table.states.astype(np.float64)
        h5["celltypes"] = np.array(table.celltypes, dtype=h5py.string_dtype())
        h5["bcl_ms"] = table.bcl_ms
        h5["gkr_scale"] = table.gkr_scale
        h5["state_names"] = np.array(tp06.STATE_NAMES, dtype=h5py.string_dtype())
        for key, value in table.extras.items():
            h5[key] = value
        for key, value in table.attrs.items():
            h5.attrs[key] = value
        write_provenance(h5, config)


def read_initial_states(path: str | Path) -> InitialStates:
    """Read a steady-state file; raises InputError naming the file and the bad field."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"steady-state file {path} does not exist")
    try:
        with h5py.File(path, "r") as h5:
            missing = [k for k in ("states", "celltypes", "bcl_ms", "gkr_scale", "state_names")
                       if k not in h5]
            if missing:
                raise InputError(f"{path}: missing field(s) {missing}")
            states = h5["states"][()]
            names = [s.decode() if isinstance(s, bytes) else str(s) for s in h5["state_names"][()]]
            celltypes = tuple(s.decode() if isinstance(s, bytes) else str(s)
                              for s in h5["celltypes"][()])
            bcl, gkr = h5["bcl_ms"][()], h5["gkr_scale"][()]
            extras = {k: h5[k][()] for k in h5 if k not in
                      ("states", "celltypes", "bcl_ms", "gkr_scale", "state_names")}
            attrs = dict(h5.attrs)
    except OSError as exc:
        raise InputError(f"cannot read steady-state file {path}: {exc}") from exc
    if sorted(names) != sorted(tp06.STATE_NAMES):
        raise InputError(f"{path}: state_names {names} are not the 19 TP06 states")
    order = [names.index(n) for n in tp06.STATE_NAMES]
    expected = (len(celltypes), len(bcl), len(gkr), tp06.N_STATES)
    if states.shape != expected:
        raise InputError(f"{path}: 'states' has shape {states.shape}, expected {expected}")
    for name in celltypes:
        tp06.celltype_codes(name)
    return InitialStates(states=states[..., order], celltypes=celltypes, bcl_ms=bcl,
                         gkr_scale=gkr, extras=extras, attrs=attrs)


def _match(values: torch.Tensor, grid: np.ndarray, what: str) -> torch.Tensor:
    """Index of each value in ``grid`` (exact to 1e-6 relative); InputError if absent."""
    g = torch.as_tensor(grid, dtype=torch.float64, device=values.device)
    diff = (values.to(torch.float64)[..., None] - g).abs()
    ok = diff <= 1e-6 * torch.clamp(g.abs(), min=1.0)
    found = ok.any(-1)
    if not bool(found.all()):
        bad = float(values.to(torch.float64)[~found].flatten()[0])
        raise InputError(f"{what} {bad:g} is not in the steady-state table "
                         f"(available: {[float(x) for x in grid]})")
    return ok.to(torch.int8).argmax(-1)


def initial_states_for(table: InitialStates, celltype_codes: torch.Tensor,
                       bcl_ms: float | torch.Tensor, gkr_scale: float | torch.Tensor, *,
                       dtype: torch.dtype = torch.float64,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """Steady states for every cell of a batch.

    Parameters
    ----------
    table
        From :func:`read_initial_states`.
    celltype_codes
        Integer codes (1 endo, 2 M, 3 epi) of any batch shape, e.g. ``(n_voxels,)``.
    bcl_ms, gkr_scale
        Scalars or tensors broadcastable with ``celltype_codes`` (e.g. ``(B, 1)`` per
        simulation against ``(n_voxels,)``); each value must be in the table.

    Returns
    -------
    Tensor
        ``(19, *batch)`` with ``batch`` the broadcast shape.
    """
    codes = tp06.celltype_codes(celltype_codes, device)
    lut = torch.full((4,), -1, dtype=torch.int64, device=codes.device)
    for i, name in enumerate(table.celltypes):
        lut[tp06.CELLTYPES[name]] = i
    ci = lut[codes]
    if bool((ci < 0).any()):
        code = int(codes[ci < 0].flatten()[0])
        raise InputError(f"cell type {tp06.CELLTYPE_NAMES[code]} is not in the steady-state "
                         f"table (available: {list(table.celltypes)})")
    bi = _match(torch.as_tensor(bcl_ms, device=codes.device), table.bcl_ms, "BCL (ms)")
    gi = _match(torch.as_tensor(gkr_scale, device=codes.device), table.gkr_scale,
                "G_Kr scale")
    ci, bi, gi = torch.broadcast_tensors(ci, bi, gi)
    states = torch.as_tensor(table.states, dtype=dtype, device=codes.device)
    out = states[ci, bi, gi]                                   # (*batch, 19)
    return out.movedim(-1, 0).clone(memory_format=torch.contiguous_format)
