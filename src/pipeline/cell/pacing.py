"""Single-cell pacing of TP06: a batch of cells, each with its own cycle length.

The stimulus is a rectangular current of ``stim_amplitude`` pA/pF during the first
``stim_duration`` ms of every beat (t = 0 of a beat is the start of the stimulus). Time is
counted in whole steps, so a beat of BCL ms is exactly ``round(BCL / dt)`` steps.

Pacing to steady state means millions of steps of a small batch, where the per-call
overhead of PyTorch (Python, dispatch, guards) dominates the arithmetic. The remedy used
here: one ``torch.compile``-d call advances ``steps_per_call`` steps, chained on the 19
state tensors without stacking (:func:`pipeline.cell.tp06.step_states`), so inductor emits
one fused loop per call; the stimulus is computed inside from the integer step counter.
``pipeline bench cell`` measures the gain.
"""

from __future__ import annotations

import dataclasses
import logging
import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from pipeline.cell import tp06
from pipeline.errors import InputError

log = logging.getLogger(__name__)

AdvanceFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]
#: Batches are padded to a multiple of this many cells (one compilation for small batches).
PAD_TO = 8
#: Batches up to this many cells pace on one CPU thread: measured with 3 cells at dt 0.02 ms,
#: 1 thread paced 225 model-ms/s against 119 with 2 threads (2 cores, shared machine).
SINGLE_THREAD_MAX_CELLS = 4096
_ADVANCE_CACHE: dict[tuple[int, bool], AdvanceFn] = {}


def _advance_eager(k: int) -> AdvanceFn:
    """A function advancing ``k`` steps; returns (state, V after each step (k, *batch))."""

    def advance(state: torch.Tensor, packed: torch.Tensor, n0: torch.Tensor,
                steps_per_beat: torch.Tensor, stim_steps: torch.Tensor, amplitude: torch.Tensor,
                dt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        params = tp06.TP06Params(*packed.unbind(0))
        states = state.unbind(0)
        zero = torch.zeros((), dtype=state.dtype, device=state.device)
        trace = []
        for i in range(k):
            phase = torch.remainder(n0 + i, steps_per_beat)
            i_stim = torch.where(phase < stim_steps, amplitude, zero)
            states = tp06.step_states(states, params, i_stim, dt)
            trace.append(states[0])
        return torch.stack(states), torch.stack(trace)

    return advance


def advance_function(steps_per_call: int, compile: bool = True) -> AdvanceFn:
    """The (cached) function advancing ``steps_per_call`` steps per call.

    With ``compile=True`` it is ``torch.compile``-d; if compilation fails at the first
    call (no C++ compiler, unsupported device), it falls back to eager with a warning.
    """
    key = (steps_per_call, compile)
    if key in _ADVANCE_CACHE:
        return _ADVANCE_CACHE[key]
    eager = _advance_eager(steps_per_call)
    if not compile:
        _ADVANCE_CACHE[key] = eager
        return eager
    # static shapes and no SIMD: the kernel serves small batches, where vector code only
    # lengthens the C++ compilation (measured: 37 s instead of 92 s CPU for 5 steps per call)
    compiled = torch.compile(eager, dynamic=False, options={"cpp.simdlen": 1})
    state = {"fn": compiled}

    def advance(*args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return state["fn"](*args)
        except Exception as exc:  # noqa: BLE001 - any compiler failure means: use eager
            if state["fn"] is eager:
                raise
            log.warning("torch.compile failed (%s: %s); TP06 pacing falls back to eager mode",
                        type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            state["fn"] = eager
            return eager(*args)

    _ADVANCE_CACHE[key] = advance
    return advance


@contextlib.contextmanager
def _threads_for_batch(n_cells: int, device: torch.device) -> Iterator[None]:
    """Run small CPU batches on one thread (thread start-up costs more than it saves)."""
    threads = torch.get_num_threads()
    if device.type == "cpu" and n_cells <= SINGLE_THREAD_MAX_CELLS:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def pack_params(params: tp06.TP06Params, batch_shape: Sequence[int]) -> torch.Tensor:
    """Stack the parameter fields into one tensor ``(n_fields, *batch_shape)``."""
    fields = [getattr(params, f.name) for f in dataclasses.fields(params)]
    return torch.stack([f.expand(tuple(batch_shape)) for f in fields]).contiguous()


@dataclasses.dataclass(frozen=True)
class PacingResult:
    """What :func:`pace` returns, per cell of the batch ``(B,)``.

    Attributes
    ----------
    state_start
        ``(19, B)`` state at the start of the recorded beat.
    state_end
        ``(19, B)`` state at the end of the recorded beat (= start of the next).
    traces
        For each cell, V (mV) over the recorded beat at every step, ``steps_per_beat + 1``
        samples from the beat start to its end.
    beats
        Number of the recorded beat (1-based) for each cell.
    change_mV
        Max |V_k(t) - V_{k-1}(t)| between the recorded beat and the one before (mV).
    converged
        Whether ``change_mV`` fell below the tolerance (always True without tolerance).
    dt_ms, bcl_ms
        Time step and each cell's cycle length.
    wall_s
        Wall-clock seconds of the time loop (compilation included).
    """

    state_start: torch.Tensor
    state_end: torch.Tensor
    traces: list[np.ndarray]
    beats: np.ndarray
    change_mV: np.ndarray
    converged: np.ndarray
    dt_ms: float
    bcl_ms: np.ndarray
    wall_s: float


def steps_per_beat(bcl_ms: float, dt_ms: float) -> int:
    """Number of steps in one beat; raises InputError unless BCL is a multiple of dt."""
    n = round(bcl_ms / dt_ms)
    if n < 1 or abs(n * dt_ms - bcl_ms) > 1e-6 * max(bcl_ms, 1.0):
        raise InputError(f"cycle length {bcl_ms} ms is not a whole number of time steps "
                         f"of {dt_ms} ms")
    return n


def _pacing_plan(state: torch.Tensor, bcl_ms: float | Sequence[float], dt_ms: float,
                 beats: int, max_beats: int | None, tolerance_mV: float | None,
                 stim_duration_ms: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Check :func:`pace`'s arguments; (BCL per cell (B,), steps per beat (B,), max beats).

    Raises
    ------
    InputError
        Bad state shape, cycle lengths, beat counts, tolerance or stimulus duration.
    """
    if state.dim() != 2:
        raise InputError(f"pacing expects a state of shape (19, B), got {tuple(state.shape)}")
    bcl = np.broadcast_to(np.asarray(bcl_ms, dtype=float), (state.shape[1],)).copy()
    spb = np.array([steps_per_beat(b, dt_ms) for b in bcl], dtype=np.int64)
    if beats < 1:
        raise InputError(f"number of beats must be >= 1, got {beats}")
    if tolerance_mV is not None and tolerance_mV <= 0:
        raise InputError(f"tolerance_mV must be positive, got {tolerance_mV}")
    max_beats = beats if tolerance_mV is None else (max_beats or 4 * beats)
    if max_beats < beats:
        raise InputError(f"max_beats ({max_beats}) must be >= beats ({beats})")
    if stim_duration_ms <= 0:
        raise InputError(f"stimulus duration must be positive, got {stim_duration_ms} ms")
    return bcl, spb, int(max_beats)


def _beat_groups(cur: torch.Tensor, spb: np.ndarray) -> list[dict[str, Any]]:
    """Cells sharing a cycle length share beat boundaries: one record per cycle length."""
    groups = []
    for n in np.unique(spb):
        idx = np.nonzero(spb == n)[0]
        groups.append({
            "spb": int(n), "idx": torch.as_tensor(idx, device=cur.device), "cells": idx,
            "trace": torch.empty(int(n) + 1, len(idx), dtype=cur.dtype, device=cur.device),
            "prev": None, "start": cur[:, idx].clone(), "done": np.zeros(len(idx), bool),
        })
        groups[-1]["trace"][0] = cur[0, idx]
    return groups


@dataclasses.dataclass
class _Record:
    """What :func:`pace` keeps per cell: the recorded beat's start and end states, trace,
    beat number, last beat-to-beat change and convergence."""

    out_start: torch.Tensor
    out_end: torch.Tensor
    traces: list[np.ndarray | None]
    beat_no: np.ndarray
    change: np.ndarray
    converged: np.ndarray


def _pace_loop(advance: Callable, cur: torch.Tensor, step_args: tuple, groups: list[dict],
               k: int, total_steps: int, rec: _Record, bar: Any, dt_ms: float, beats: int,
               max_beats: int, tolerance_mV: float | None) -> int:
    """Advance ``k`` steps per call until every group is done; returns the steps taken."""
    packed, spb_t, stim_steps, amplitude, dt_t = step_args
    n = 0
    while n < total_steps and not all(g["done"].all() for g in groups):
        cur, v = advance(cur, packed, torch.tensor(n, device=cur.device), spb_t, stim_steps,
                         amplitude, dt_t)
        for g in groups:
            if not g["done"].all():
                phase = n % g["spb"]
                g["trace"][phase + 1: phase + 1 + k] = v[:, g["idx"]]
        n += k
        for g in groups:
            if n % g["spb"] or g["done"].all():
                continue
            _end_of_beat(g, cur, n // g["spb"], beats, max_beats, tolerance_mV, rec.out_start,
                         rec.out_end, rec.traces, rec.beat_no, rec.change, rec.converged,
                         n * dt_ms)
            bar.update(round(n * dt_ms) - bar.n)
    return n


def _padded(state: torch.Tensor, params: tp06.TP06Params, spb: np.ndarray,
            stim_duration_ms: float, stim_amplitude: float, dt_ms: float
            ) -> tuple[torch.Tensor, tuple]:
    """The batch padded with copies of cell 0 to a multiple of PAD_TO, so that one compiled
    function (static shapes) serves every small batch; and the step's other arguments
    (packed parameters, steps per beat, stimulus steps, amplitude, dt)."""
    n_cells, dtype, device = state.shape[1], state.dtype, state.device
    n_pad = -n_cells % PAD_TO
    cur = torch.cat([state, state[:, :1].expand(-1, n_pad)], 1).clone(
        memory_format=torch.contiguous_format)
    packed = pack_params(params.to(dtype=dtype, device=device), (n_cells,))
    packed = torch.cat([packed, packed[:, :1].expand(-1, n_pad)], 1).contiguous()
    spb_t = torch.as_tensor(np.concatenate([spb, np.full(n_pad, spb[0])]), device=device)
    stim_steps = torch.tensor(round(stim_duration_ms / dt_ms), device=device)
    amplitude = torch.tensor(stim_amplitude, dtype=dtype, device=device)
    return cur, (packed, spb_t, stim_steps, amplitude, torch.tensor(dt_ms, dtype=dtype,
                                                                    device=device))


def pace(state: torch.Tensor, params: tp06.TP06Params, bcl_ms: float | Sequence[float], *,
         dt_ms: float = 0.02, beats: int = 100, max_beats: int | None = None,
         tolerance_mV: float | None = None, stim_amplitude: float = -52.0,
         stim_duration_ms: float = 1.0, steps_per_call: int = 10, compile: bool = True,
         progress: bool = True) -> PacingResult:
    """Pace a batch of cells and record one beat of each.

    Parameters
    ----------
    state
        ``(19, B)`` initial states (a beat starts at t = 0).
    params
        Broadcastable to ``(B,)``.
    bcl_ms
        Cycle length (ms), one for all or one per cell ``(B,)``; a whole number of steps.
    dt_ms
        Time step (ms).
    beats
        Without ``tolerance_mV``: beats paced, the last one is recorded. With it: the
        minimum number of beats.
    max_beats
        With ``tolerance_mV``: the most beats paced (default ``4 * beats``).
    tolerance_mV
        Stop pacing a cell at the first beat (>= ``beats``) whose V trace differs from the
        previous beat's by less than this everywhere (mV); that beat is recorded.
    stim_amplitude, stim_duration_ms
        Stimulus current (pA/pF) and duration (ms) at the start of every beat.
    steps_per_call
        Steps fused into one call (reduced to divide every beat's step count).
    compile
        Use ``torch.compile`` (falls back to eager if that fails).
    progress
        Show a tqdm bar.

    Raises
    ------
    InputError
        Bad shapes, dt, cycle lengths or beat counts (before any work).
    SimulationError
        A blow-up (NaN or |V| > 200 mV), naming the state, cell and time.
    """
    tp06.validate_inputs(state, params, dt_ms)
    n_cells = state.shape[1]
    bcl, spb, max_beats = _pacing_plan(state, bcl_ms, dt_ms, beats, max_beats, tolerance_mV,
                                       stim_duration_ms)
    k = math.gcd(max(int(steps_per_call), 1), *[int(s) for s in spb])
    if k != steps_per_call:
        log.info("steps per call reduced from %d to %d (must divide every beat)", steps_per_call, k)
    advance = advance_function(k, compile)

    cur, step_args = _padded(state, params, spb, stim_duration_ms, stim_amplitude, dt_ms)
    groups = _beat_groups(cur, spb)
    rec = _Record(out_start=torch.empty_like(state), out_end=torch.empty_like(state),
                  traces=[None] * n_cells, beat_no=np.zeros(n_cells, dtype=np.int64),
                  change=np.full(n_cells, np.nan), converged=np.zeros(n_cells, dtype=bool))
    total_steps = int(max_beats * spb.max())
    bar = tqdm(total=round(total_steps * dt_ms), unit="ms", disable=not progress,
               desc="pacing TP06", mininterval=2.0)
    t0 = time.perf_counter()
    with _threads_for_batch(n_cells, state.device):
        n = _pace_loop(advance, cur, step_args, groups, k, total_steps, rec, bar, dt_ms,
                       beats, max_beats, tolerance_mV)
    bar.close()
    wall = time.perf_counter() - t0
    log.info("paced %d cells for %.0f ms of model time in %.1f s", n_cells, n * dt_ms, wall)
    return PacingResult(state_start=rec.out_start, state_end=rec.out_end,
                        traces=rec.traces,  # type: ignore[arg-type]  # all set: total_steps
                        beats=rec.beat_no, change_mV=rec.change, converged=rec.converged,
                        dt_ms=dt_ms, bcl_ms=bcl, wall_s=wall)


def _end_of_beat(g: dict, cur: torch.Tensor, beat: int, beats: int, max_beats: int,
                 tolerance_mV: float | None, out_start: torch.Tensor, out_end: torch.Tensor,
                 traces: list, beat_no: np.ndarray, change: np.ndarray,
                 converged: np.ndarray, t_ms: float) -> None:
    """Book-keeping at the end of beat number ``beat`` (1-based) of group ``g``."""
    idx, cells = g["idx"], g["cells"]
    tp06.check_state(cur[:, :out_start.shape[1]], where=f"t = {t_ms:.2f} ms (end of beat {beat} of a "
                                f"{g['spb']}-step cycle)")
    trace = g["trace"]
    diff = (np.full(len(cells), np.inf) if g["prev"] is None
            else (trace - g["prev"]).abs().amax(0).cpu().numpy())
    if beat % 10 == 0:
        log.info("BCL %.0f ms, beat %d: beat-to-beat change of V %s mV", t_ms / beat, beat,
                 np.round(diff, 4).tolist())
    if tolerance_mV is None:
        record = np.full(len(cells), beat >= beats)
        ok = record
    else:
        ok = diff < tolerance_mV
        record = ((ok & (beat >= beats)) | (beat >= max_beats)) & ~g["done"]
    if record.any():
        sel = np.nonzero(record)[0]
        sel_t = torch.as_tensor(sel, device=idx.device)
        out_start[:, idx[sel_t]] = g["start"][:, sel_t]
        out_end[:, idx[sel_t]] = cur[:, idx[sel_t]]
        tr = trace[:, sel_t].cpu().numpy()
        for col, i in enumerate(sel):
            c = int(cells[i])
            traces[c] = tr[:, col].copy()
            beat_no[c] = beat
            change[c] = diff[i]
            converged[c] = bool(ok[i]) if tolerance_mV is not None else True
        g["done"][sel] = True
        if tolerance_mV is not None and (beat >= max_beats) and not ok[sel].all():
            bad = cells[sel[~ok[sel]]].tolist()
            log.warning("cells %s not steady after %d beats (change %s mV)", bad, beat,
                        np.round(diff[sel[~ok[sel]]], 4).tolist())
    g["prev"] = trace.clone()
    g["start"] = cur[:, idx].clone()
    trace[0] = trace[-1]
