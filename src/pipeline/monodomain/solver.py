"""How to solve a :class:`~pipeline.monodomain.problem.MonodomainProblem`: operator splitting.

Each step of length dt advances B simulations of one anatomy held in one tensor
(state (19, B, n)):

1. diffusion current from the state at t: ``I_d = div(sigma grad V) / (chi Cm 0.01)``
   (pA/pF = mV/ms), explicit (forward Euler), or implicit (backward Euler, conjugate
   gradients) when asked;
2. the TP06 step (:func:`pipeline.cell.tp06.step`, Rush-Larsen gates) with the stimulus
   current of [t, t + dt);
3. ``V += dt I_d`` (explicit) or ``V <- (I - dt L)^-1 V`` (implicit).

The explicit scheme is stable for dt <= 2 / rho(L), with rho the spectral radius of the
diffusion operator L (mV/ms per mV); the solver computes this limit for every simulation
before the first step and refuses a larger dt, naming the limit.

Activation times are captured on line at full time resolution: the first upward crossing
of 0 mV, linearly interpolated within the step. Repolarisation times are the last downward
crossing of ``repol_threshold_mV`` (default -70 mV) after activation. A recording hook is
called every ``record_every`` steps with the time (ms) and V (B, n). A NaN or |V| > 200 mV
stops the run with a :class:`~pipeline.errors.SimulationError` naming the simulation, step
and voxel.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.cell import tp06
from pipeline.device import pick_device
from pipeline.errors import InputError, SimulationError
from pipeline.monodomain.diffusion import StencilParts, assemble_parts, part_weights
from pipeline.monodomain.problem import MonodomainProblem
from pipeline.monodomain.splitting import Reaction, SplitStep, StencilDiffusion, Window
from pipeline.monodomain.stimulus import StimulusSchedule

log = logging.getLogger(__name__)

#: |V| above this (mV) counts as a blow-up.
V_LIMIT_MV = 200.0

Callback = Callable[[float, torch.Tensor], None]

#: glibc's largest dynamic mmap threshold on 64-bit Linux (bytes); see keep_freed_memory.
MMAP_THRESHOLD_MAX_BYTES = 32 * 2 ** 20


@dataclass(frozen=True)
class RunResult:
    """What a run returns (numpy, on the host).

    Attributes
    ----------
    activation_ms
        float32 (B, n): first upward 0 mV crossing, interpolated; NaN if never.
    repolarisation_ms
        float32 (B, n): last downward crossing of the repolarisation threshold after
        activation; NaN if none.
    v_final
        float32 (B, n): V at the end (mV).
    t_end_ms
        Simulated time reached (ms).
    steps
        Steps taken.
    wall_s
        Wall-clock time of the time loop (s).
    records
        The problem's per-simulation records.
    """

    activation_ms: np.ndarray
    repolarisation_ms: np.ndarray
    v_final: np.ndarray
    t_end_ms: float
    steps: int
    wall_s: float
    records: tuple[dict, ...]


def keep_freed_memory() -> bool:
    """Make glibc's malloc serve large blocks from the heap and keep freed memory.

    Every step allocates a new (19, B, n) state; at B = 8 on the 1 mm heart that is 88 MB,
    above glibc's largest mmap threshold (32 MB), so by default each step maps fresh
    pages and the kernel zero-fills them on first touch. Measured on this 2-core machine:
    a pointwise kernel on an 88 MB tensor took 70 ms per call by default and 22 ms with
    ``M_MMAP_MAX = 0`` and a 1 GB trim threshold. The setting is process-wide (freed
    memory stays with the process until it exits); it is a no-op where ``mallopt`` is
    not available (not glibc). The solver applies it on CPU only when the state is
    larger than that threshold: below it, glibc already reuses freed blocks, and the
    setting measured ~8 % slower (1 mm heart, B = 1: 2.0e7 against 2.2e7 voxel-steps/s).

    Returns
    -------
    bool
        Whether the setting was applied.
    """
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    ok = bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 1 << 30))
    log.debug("malloc: large blocks from the heap, freed memory kept: %s", ok)
    return ok


def tp06_reaction(problem: MonodomainProblem, dtype: torch.dtype,
                  device: torch.device) -> Reaction:
    """The TP06 half of the splitting for a problem: per-voxel cell types and scales.

    Per-simulation scales (``problem.cell_scales``, (B,)) and per-voxel scales
    (``problem.voxel_scales``, (n,)) multiply each other into (B, n) or (B, 1) tensors.
    """
    codes = torch.as_tensor(problem.celltype.astype(np.int64), device=device)
    scales = {k: torch.tensor(np.array(v), dtype=dtype, device=device)[:, None]
              for k, v in problem.cell_scales.items()}
    for k, v in problem.voxel_scales.items():
        per_voxel = torch.tensor(np.array(v), dtype=dtype, device=device)[None, :]
        scales[k] = scales[k] * per_voxel if k in scales else per_voxel
    params = tp06.make_params(codes, dtype=dtype, device=device, **scales)
    return Reaction(step=tp06.step_states, params=params, n_states=tp06.N_STATES)


def stability_limits(parts: StencilParts, weights: np.ndarray, diff_factor: float,
                     dt_ms: float) -> np.ndarray:
    """Largest stable explicit dt (ms) per simulation: 2 / rho(L).

    A cheap bound on the spectral radius first; the power iteration only where ``dt_ms``
    exceeds the bound's limit. ``weights`` (parts, B); simulations with equal weights
    share the computation.
    """
    limits = np.empty(weights.shape[1])
    cache: dict[bytes, float] = {}
    for b in range(weights.shape[1]):
        w = weights[:, b]
        key = w.tobytes()
        if key not in cache:
            limit = 2.0 / (parts.spectral_bound(w) * diff_factor)
            if dt_ms > limit:
                limit = 2.0 / (parts.spectral_radius(w) * diff_factor)
            cache[key] = limit
        limits[b] = cache[key]
    return limits


def check_explicit_dt(problem: MonodomainProblem, limits: np.ndarray) -> None:
    """InputError naming the limit if the explicit dt exceeds any simulation's limit."""
    worst = int(np.argmin(limits))
    if problem.dt_ms <= limits[worst]:
        return
    c = problem.conductivities
    raise InputError(
        f"dt = {problem.dt_ms} ms exceeds the stability limit of explicit diffusion, "
        f"{limits[worst]:.4g} ms, for simulation {worst} (spacing "
        f"{problem.grid.spacing.tolist()} mm, sigma_l {c.sigma_l[worst]:.4g}, sigma_t "
        f"{c.sigma_t[worst]:.4g}, sigma_fast_endo {c.sigma_fast_endo[worst]:.4g} S/m); "
        f"use dt <= {limits.min():.4g} ms or implicit diffusion")


class MonodomainSolver:
    """Batched monodomain solver for one problem: a :class:`~pipeline.monodomain.splitting.
    SplitStep` of TP06 and stencil diffusion, advanced by a short time loop.

    Parameters
    ----------
    problem
        What to simulate.
    parts
        Pre-assembled diffusion parts for the problem's grid, fibres and fast regions (to
        reuse across batches of one anatomy); assembled here if None.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"`` (:func:`pipeline.device.pick_device`).
    dtype
        Of the state and tables (float32 in bulk runs).
    compile
        Use ``torch.compile`` for the time step (explicit diffusion only; eager fallback).
    diffusion
        ``"explicit"`` (refuses dt above the stability limit) or ``"implicit"``
        (backward Euler, solved by conjugate gradients to ``cg_tol``).
    repol_threshold_mV
        Threshold of the repolarisation times.
    check_every
        Steps between blow-up checks (and at every recording).
    stimulus
        The stimulus current per step (``current(t_ms, dt_ms, v) -> (B, n)`` pA/pF, given
        the potential v (B, n) mV at t_ms, and ``last_off_ms``); the problem's stimuli
        (:class:`StimulusSchedule`) if None. Multi-step calls (``steps_per_call``) need
        ``quiet(t0_ms, t1_ms) -> bool`` (no current in those steps) or ``window`` (the drive
        as :func:`~pipeline.monodomain.stimulus.window_current`'s arguments, as
        :class:`~pipeline.monodomain.stimulus.ActivationStimulus` has); without either,
        every step is its own call.
    share_tables
        Keep the diffusion coefficient tables shared by the batch (weighted per simulation
        inside the kernel) where fewer shared tables than simulations suffice
        (:meth:`~pipeline.monodomain.diffusion.StencilParts.batch_tables`). None: when
        compiled on CUDA, where device memory bounds the batch. Not on the CPU: there the
        shared diffusion kernel measured 35-60 % slower (5-8 % of the step at B = 8,
        1 mm; docs/monodomain.md), and host memory rarely bounds the batch.
    fast_layer_source
        The conductivity of the fast layers in the ECG source (:meth:`current_source`):
        ``myocardium`` (the default, as ``simulate.ecg_fast_layer_source``: the myocardial
        tensor, so the layers conduct fast but their surrogate currents are left out of the
        source, as a conduction system of negligible mass would leave them) or ``tissue``
        (the layers' own, as in the diffusion).
    steps_per_call
        Compiled explicit steps chained in one call
        (:meth:`~pipeline.monodomain.splitting.SplitStep.advance`): the host's work per
        step (Python, dispatch, the stimulus) is paid once per call. Steps with a site
        stimulus on, and steps that do not fill a whole call before a recording or the end,
        run one per call; reduced to divide ``record_every``. The states are those of
        single steps (the same kernels). 1: one step per call. Only with ``compile``.
    slot_major
        Keep the neighbour and coefficient tables slot by slot in memory (a (K, n) block
        per table, seen as the usual (n, K)), so that the kernel's load of slot k over
        consecutive voxels is contiguous (coalesced on CUDA) instead of K words apart. The
        same arithmetic in the same order. None (the default): slot-major on CUDA, where an
        H200 ran a 1 mm heart with 64 simulations per batch 37 % faster with it (1.78e9
        against 1.3e9 voxel-steps/s; equal at 8), voxel-major on the CPU, where it is
        8-21 % slower (docs/monodomain.md, "CUDA on an NVIDIA H200").

    Raises
    ------
    InputError
        Inconsistent parts, or an explicit dt above the stability limit (the message gives
        the limit).
    """

    def __init__(self, problem: MonodomainProblem, *, parts: StencilParts | None = None,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 compile: bool = False, diffusion: str = "explicit",
                 repol_threshold_mV: float = -70.0, check_every: int = 50,
                 cg_tol: float = 1e-6, stimulus: object | None = None,
                 share_tables: bool | None = None,
                 fast_layer_source: str = "myocardium", steps_per_call: int = 1,
                 slot_major: bool | None = None) -> None:
        if int(steps_per_call) < 1:
            raise InputError(f"steps_per_call must be >= 1, got {steps_per_call}")
        if fast_layer_source not in ("tissue", "myocardium"):
            raise InputError(f"fast_layer_source must be 'tissue' or 'myocardium', got "
                             f"{fast_layer_source!r}")
        if diffusion not in ("explicit", "implicit"):
            raise InputError(f"diffusion must be 'explicit' or 'implicit', got {diffusion!r}")
        t0 = time.perf_counter()
        self.problem, self.dtype, self.diffusion = problem, dtype, diffusion
        self.device = pick_device(str(device))
        self.v_rep = float(repol_threshold_mV)
        self.check_every = max(1, int(check_every))
        self.steps_per_call = int(steps_per_call)
        n = problem.grid.n_tissue
        if parts is None:
            parts = assemble_parts(problem.grid.mask, problem.grid.spacing, problem.fibre,
                                   dict(problem.fast_regions))
        if parts.n_tissue != n:
            raise InputError(f"diffusion parts cover {parts.n_tissue} voxels, the problem {n}")
        self.parts = parts
        weights = part_weights(parts, problem.region_sigma())
        diff_factor = problem.diffusion_factor()
        self.dt_limit_ms = stability_limits(parts, weights, diff_factor, problem.dt_ms)
        if diffusion == "explicit":
            check_explicit_dt(problem, self.dt_limit_ms)
        self._host_memory()
        tables, scales = parts.batch_tables(
            weights, dtype=np.float64 if dtype == torch.float64 else np.float32,
            share=(compile and self.device.type == "cuda") if share_tables is None
            else share_tables)
        self.slot_major = (self.device.type == "cuda") if slot_major is None else bool(slot_major)
        self.space = StencilDiffusion(
            neighbour=self._layout(torch.as_tensor(parts.neighbour, device=self.device)),
            coef=self._layout(torch.as_tensor(tables, dtype=dtype, device=self.device)),
            scales=None if scales is None else torch.as_tensor(scales, dtype=dtype,
                                                               device=self.device),
            diff_factor=diff_factor, implicit=diffusion == "implicit", cg_tol=float(cg_tol))
        self.source_space = self.space
        fast_as_myo = fast_layer_source == "myocardium" and bool(problem.fast_enabled.any())
        if problem.conductivities.calibrated or fast_as_myo:
            self.source_space = self._source_space(parts, problem, dtype, fast_as_myo)
        self.reaction = tp06_reaction(problem, dtype, self.device)
        self.stimuli = stimulus if stimulus is not None else StimulusSchedule(
            problem.stimuli, n, dtype=dtype, device=self.device)
        self.step = SplitStep(self.reaction, self.space, problem.dt_ms, self.v_rep,
                              compile=compile)
        log.info("solver ready: %d simulations x %d voxels, dt %.4g ms (explicit limit %.4g ms), "
                 "%s, %s, %s, setup %.1f s", problem.batch, n, problem.dt_ms,
                 float(self.dt_limit_ms.min()), diffusion, self.device, dtype,
                 time.perf_counter() - t0)

    def _layout(self, table: torch.Tensor) -> torch.Tensor:
        """``table`` (..., n, K) as it is, or slot-major in memory with ``slot_major``."""
        if not self.slot_major:
            return table
        return table.transpose(-1, -2).contiguous().transpose(-1, -2)

    def _host_memory(self) -> None:
        """Keep freed memory on the CPU when the state exceeds glibc's mmap threshold."""
        state_bytes = tp06.N_STATES * self.problem.batch * self.problem.grid.n_tissue * \
            torch.tensor([], dtype=self.dtype).element_size()
        if self.device.type == "cpu" and state_bytes > MMAP_THRESHOLD_MAX_BYTES:
            keep_freed_memory()

    @property
    def params(self) -> tp06.TP06Params:
        """The TP06 parameters of every voxel (broadcastable to (B, n))."""
        return self.reaction.params

    @property
    def compiled(self) -> bool:
        """Whether the step runs compiled (False after an eager fallback)."""
        return self.step.compiled

    def initial_state(self) -> torch.Tensor:
        """(19, B, n) initial state from the problem's per-cell-type states."""
        init = torch.tensor(np.array(self.problem.initial_states), dtype=self.dtype,
                            device=self.device)
        codes = torch.as_tensor(self.problem.celltype.astype(np.int64), device=self.device)
        return init[:, codes, :].permute(2, 0, 1).contiguous()

    def _source_space(self, parts: StencilParts, problem: MonodomainProblem,
                      dtype: torch.dtype, fast_as_myocardium: bool = False
                      ) -> StencilDiffusion:
        """The operator of the ECG source with the tissue's conductivities (shared tables),
        the fast layers at the myocardial tensor if ``fast_as_myocardium``."""
        tables, scales = parts.batch_tables(
            part_weights(parts, problem.region_sigma(physical=True,
                                                     fast_as_myocardium=fast_as_myocardium)),
            dtype=np.float64 if dtype == torch.float64 else np.float32, share=True)
        return StencilDiffusion(
            neighbour=self.space.neighbour,
            coef=self._layout(torch.as_tensor(tables, dtype=dtype, device=self.device)),
            scales=None if scales is None else torch.as_tensor(scales, dtype=dtype,
                                                               device=self.device),
            diff_factor=problem.diffusion_factor(), implicit=False)

    def current_source(self, v: torch.Tensor) -> torch.Tensor:
        """Transmembrane current source I_m = div(sigma grad V) (uA/mm^3) for V (B, n) in mV.

        sigma is the tissue's conductivity, before any CV calibration: the calibration
        scales sigma so that a coarse grid conducts at the fine grid's speed, but the
        current a wavefront drives is sigma times its potential jump, whatever the front's
        width on the grid. With the calibrated sigma the ECG grew with the scale (x1.6 to
        x8.4 at 0.5 to 2 mm, docs/monodomain.md, "ECG source").
        """
        return self.source_space.source(v)

    def _check(self, v: torch.Tensor, step: int, t: float) -> None:
        bad = ~torch.isfinite(v) | (v.abs() > V_LIMIT_MV)
        if not bool(bad.any()):
            return
        b, i = (int(x) for x in torch.nonzero(bad)[0])
        ijk = tuple(int(x) for x in self.problem.grid.ijk[i])
        name = self.problem.records[b].get("sim_id", b) if self.problem.records else b
        raise SimulationError(
            f"simulation {b} (id {name}) blew up at step {step} (t = {t:.3f} ms): V = "
            f"{float(v[b, i]):.4g} mV at tissue voxel {i} (ijk {ijk}); dt = "
            f"{self.problem.dt_ms} ms")

    def run(self, callback: Callback | None = None, record_every: int | None = None, *,
            record_initial: bool = True, progress: bool = False,
            state: torch.Tensor | None = None, stop_when_activated: bool = False,
            stop_voxels: np.ndarray | None = None, n_steps: int | None = None) -> RunResult:
        """Advance all simulations for the problem's duration.

        Parameters
        ----------
        callback
            ``callback(t_ms, V)`` with V (B, n) a view of the live state (copy what you
            keep); called at t = 0 (if ``record_initial``) and after every
            ``record_every`` steps.
        record_every
            Steps between calls (required with a callback).
        progress
            Show a tqdm bar.
        state
            Start from this (19, B, n) state instead of the problem's initial states.
        stop_when_activated
            Stop early (at a blow-up check), once no stimulus is left to come, when every
            voxel of every simulation has activated, or when none can any more: every
            voxel below :data:`QUIESCENT_MV` (no excited tissue is left to drive a front,
            so a wave that died stays dead; a blocking cable then ends when its stimulated
            end has repolarised, not after its whole duration).
        stop_voxels
            With ``stop_when_activated``: the tissue voxels whose activation is awaited
            (default all); a cable whose CV is fitted on its middle third stops once that
            third has activated (the far end cannot change times already taken).
        n_steps
            Stop after this many steps (default: the problem's duration).

        Returns
        -------
        RunResult
        """
        if callback is not None and (record_every is None or record_every < 1):
            raise InputError("a recording callback needs record_every >= 1 (steps)")
        dt = float(self.problem.dt_ms)
        state = self.initial_state() if state is None else state.to(self.device, self.dtype)
        tp06.validate_inputs(state, self.params, dt)
        act = torch.full(state.shape[1:], math.nan, dtype=self.dtype, device=self.device)
        rep = torch.full_like(act, math.nan)
        if callback is not None and record_initial:
            callback(0.0, state[0])
        awaited = None
        if stop_voxels is not None:
            idx = np.asarray(stop_voxels, dtype=np.int64).reshape(-1)
            if idx.size == 0 or idx.min() < 0 or idx.max() >= act.shape[1]:
                raise InputError(f"stop_voxels must be tissue voxel indices 0..{act.shape[1] - 1}")
            awaited = torch.as_tensor(idx, device=self.device)
        with _threads_for(self.device, act.numel()):
            return self._loop(state, act, rep, callback, record_every, progress,
                              stop_when_activated, awaited, n_steps)

    def _loop(self, state: torch.Tensor, act: torch.Tensor, rep: torch.Tensor,
              callback: Callback | None, record_every: int | None, progress: bool,
              stop_when_activated: bool, awaited: torch.Tensor | None,
              max_steps: int | None = None) -> RunResult:
        """The time loop of :meth:`run`."""
        dt, n_steps = float(self.problem.dt_ms), self.problem.n_steps
        if max_steps is not None:
            n_steps = min(n_steps, max(1, int(max_steps)))
        # start and end (ms) of every step, computed in float64 once: no copy per step
        times = torch.tensor(np.arange(n_steps, dtype=np.float64)[:, None] * dt
                             + np.array([0.0, dt]), dtype=self.dtype, device=self.device)
        # compiled: the drive's window goes into the kernel (one graph for the whole run);
        # eager: its current() skips the work once every window has closed
        window = getattr(self.stimuli, "window", None) if self.step.compiled else None
        k = self.steps_per_call if self.step.fused else 1
        if callback is not None:
            k = math.gcd(k, int(record_every))
        bar = _progress(n_steps) if progress else None
        start, step, shown = time.perf_counter(), 0, 0
        while step < n_steps:
            first = step
            chained = self._chained(step, k, n_steps, window)
            if chained is not False:
                state, act, rep = self.step.advance(state, act, rep, times[step:step + k],
                                                    chained)
                step += k
            else:
                i_stim = (window if window is not None
                          else self.stimuli.current(step * dt, dt, state[0]))
                state, act, rep = self.step(state, act, rep, times[step], i_stim)
                step += 1
            t = step * dt
            recording = callback is not None and step % record_every == 0
            done = False
            if (step // self.check_every > first // self.check_every or recording
                    or step == n_steps):
                self._check(state[0], step, t)
                done = stop_when_activated and self._finished(act, state[0], t, awaited)
            if recording:
                callback(t, state[0])
            if done:
                break
            if bar is not None and step - shown >= 100:
                bar.update(step - shown)
                shown = step
        wall = time.perf_counter() - start
        if bar is not None:
            bar.close()
        log.info("ran %d steps of %d x %d voxels in %.1f s (%.3g voxel-steps/s)", step,
                 act.shape[0], act.shape[1], wall, step * act.numel() / max(wall, 1e-9))
        return RunResult(activation_ms=act.float().cpu().numpy(),
                         repolarisation_ms=rep.float().cpu().numpy(),
                         v_final=state[0].float().cpu().numpy(), t_end_ms=step * dt,
                         steps=step, wall_s=wall, records=self.problem.records)

    def _chained(self, step: int, k: int, n_steps: int,
                 window: Window | None) -> Window | None | bool:
        """Whether the ``k`` steps after ``step`` run as one call, and their stimulus.

        False: run the next step alone (``k`` is 1, ``step`` is not a multiple of ``k``,
        fewer than ``k`` steps are left, or a site stimulus is on in those steps). Otherwise
        the stimulus of the call: the reaction-eikonal drive's window, evaluated inside the
        call (its overlap is zero once every window has closed), or None (a site stimulus
        off in those steps).
        """
        if k < 2 or step % k or step + k > n_steps:
            return False
        if window is not None:      # one graph for the whole run, the drive evaluated inside
            return window
        quiet = getattr(self.stimuli, "quiet", None)
        dt = float(self.problem.dt_ms)
        if quiet is not None and quiet(step * dt, (step + k) * dt):
            return None
        return False

    def _finished(self, act: torch.Tensor, v: torch.Tensor, t: float,
                  awaited: torch.Tensor | None) -> bool:
        """No stimulus left to come, and every voxel activated or every voxel quiescent."""
        if t < self.stimuli.last_off_ms:
            return False
        watched = act if awaited is None else act[:, awaited]
        return not bool(torch.isnan(watched).any()) or bool(v.max() < QUIESCENT_MV)


#: Below this potential (mV) everywhere, with no stimulus to come, no voxel can activate any
#: more (``run(stop_when_activated=True)``): TP06 rests at -86 mV and fires from about -60.
QUIESCENT_MV = -70.0

#: Below this many voxel-simulations a CPU run uses one intra-op thread: a cable or a small
#: slab holds a few hundred values, threads only add synchronisation, and on a loaded
#: machine a descheduled worker stalls every op (measured: the 0.1 mm reference cable,
#: 9,200 steps, 724 s with 2 threads beside another job, 34 s with one).
SMALL_PROBLEM = 16_384


@contextlib.contextmanager
def _threads_for(device: torch.device, size: int) -> Iterator[None]:
    """One intra-op thread for a small CPU problem (:data:`SMALL_PROBLEM`), for the block."""
    if device.type != "cpu" or size >= SMALL_PROBLEM or torch.get_num_threads() == 1:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _progress(total: int) -> object:
    from tqdm import tqdm
    return tqdm(total=total, unit="step", desc="monodomain", mininterval=5.0)


def solve(problem: MonodomainProblem, **kwargs: object) -> RunResult:
    """Build a :class:`MonodomainSolver` and run it (``kwargs`` go to the constructor)."""
    return MonodomainSolver(problem, **kwargs).run()  # type: ignore[arg-type]
