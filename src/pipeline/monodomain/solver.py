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

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.cell import tp06
from pipeline.device import pick_device
from pipeline.errors import InputError, SimulationError
from pipeline.monodomain.diffusion import StencilParts, assemble_parts, ell_apply, part_weights
from pipeline.monodomain.problem import MonodomainProblem
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


def diffusion_current(v: torch.Tensor, neighbour: torch.Tensor, coef: torch.Tensor,
                      diff_factor: float) -> torch.Tensor:
    """Diffusion current div(sigma grad V) / (chi Cm 0.01) (mV/ms) of V (B, n) in mV."""
    return ell_apply(v, neighbour, coef) * diff_factor


def reaction_update(state: torch.Tensor, i_diff: torch.Tensor, act: torch.Tensor,
                    rep: torch.Tensor, t: torch.Tensor, i_stim: torch.Tensor,
                    params: tp06.TP06Params, dt: float, v_rep: float
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The TP06 step, ``V += dt I_d`` and the crossing times, in one pass (pure)."""
    new = tp06.step_states(state.unbind(0), params, i_stim, dt)
    v_new = new[0] + dt * i_diff
    act, rep = crossings(state[0], v_new, act, rep, t, dt, v_rep)
    return torch.stack((v_new, *new[1:])), act, rep


def full_step(state: torch.Tensor, act: torch.Tensor, rep: torch.Tensor, t: torch.Tensor,
              i_stim: torch.Tensor, params: tp06.TP06Params, neighbour: torch.Tensor,
              coef: torch.Tensor, dt: float, diff_factor: float, v_rep: float
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One explicit split step for the whole batch (pure).

    Parameters
    ----------
    state
        (19, B, n) TP06 states.
    act, rep
        (B, n) activation and repolarisation times so far (ms, NaN if none).
    t
        0-d tensor: time at the start of the step (ms).
    i_stim
        (B, n) stimulus (pA/pF).
    params
        TP06 parameters broadcastable to (B, n).
    neighbour, coef
        ELLPACK diffusion tables (n, 18) and (B, n, 18) (uA/mm^3 per mV).
    dt
        Time step (ms).
    diff_factor
        1 / (chi Cm 0.01) (mm^3/uF).
    v_rep
        Repolarisation threshold (mV).

    Returns
    -------
    (state, act, rep) after the step.
    """
    i_diff = diffusion_current(state[0], neighbour, coef, diff_factor)
    return reaction_update(state, i_diff, act, rep, t, i_stim, params, dt, v_rep)


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


class CompiledStep:
    """:func:`full_step` as two compiled kernels: the neighbour gather of the diffusion
    current, then the pointwise TP06 step with the V update and the crossing times.

    Measured (``pipeline bench throughput``): compiling :func:`full_step` as one graph lets
    inductor fuse the 18 gathers into the loops of the TP06 step, which was slower than
    this split at batch 1 and at batch 8 on CPU.
    """

    def __init__(self) -> None:
        self.diffuse = torch.compile(diffusion_current, dynamic=False)
        self.react = torch.compile(reaction_update, dynamic=False)

    def __call__(self, state: torch.Tensor, act: torch.Tensor, rep: torch.Tensor,
                 t: torch.Tensor, i_stim: torch.Tensor, params: tp06.TP06Params,
                 neighbour: torch.Tensor, coef: torch.Tensor, dt: float, diff_factor: float,
                 v_rep: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        i_diff = self.diffuse(state[0], neighbour, coef, diff_factor)
        return self.react(state, i_diff, act, rep, t, i_stim, params, dt, v_rep)


def crossings(v: torch.Tensor, v_new: torch.Tensor, act: torch.Tensor, rep: torch.Tensor,
              t: torch.Tensor, dt: float, v_rep: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Update activation (first 0 mV upstroke) and repolarisation (last v_rep downstroke)."""
    up = (v < 0.0) & (v_new >= 0.0) & torch.isnan(act)
    act = torch.where(up, t + dt * v / (v - v_new), act)
    down = (v >= v_rep) & (v_new < v_rep) & ~torch.isnan(act)
    rep = torch.where(down, t + dt * (v - v_rep) / (v - v_new), rep)
    return act, rep


class MonodomainSolver:
    """Batched monodomain solver for one problem.

    Parameters
    ----------
    problem
        What to simulate.
    parts
        Pre-assembled diffusion parts for the problem's grid, fibres and fast regions (to
        reuse across batches of one anatomy); assembled here if None.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    dtype
        Of the state and tables (float32 in bulk runs).
    compile
        Use ``torch.compile`` for the time step (explicit diffusion only).
    diffusion
        ``"explicit"`` (refuses dt above the stability limit) or ``"implicit"``
        (backward Euler, solved by conjugate gradients to ``cg_tol``).
    repol_threshold_mV
        Threshold of the repolarisation times.
    check_every
        Steps between blow-up checks (and at every recording).

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
                 cg_tol: float = 1e-6) -> None:
        if diffusion not in ("explicit", "implicit"):
            raise InputError(f"diffusion must be 'explicit' or 'implicit', got {diffusion!r}")
        self.problem = problem
        self.device = pick_device(str(device))
        state_bytes = tp06.N_STATES * problem.batch * problem.grid.n_tissue * \
            torch.tensor([], dtype=dtype).element_size()
        if self.device.type == "cpu" and state_bytes > MMAP_THRESHOLD_MAX_BYTES:
            keep_freed_memory()
        self.dtype = dtype
        self.diffusion = diffusion
        self.v_rep = float(repol_threshold_mV)
        self.check_every = max(1, int(check_every))
        self.cg_tol = float(cg_tol)
        n = problem.grid.n_tissue
        t0 = time.perf_counter()
        if parts is None:
            parts = assemble_parts(problem.grid.mask, problem.grid.spacing, problem.fibre,
                                   dict(problem.fast_regions))
        if parts.n_tissue != n:
            raise InputError(f"diffusion parts cover {parts.n_tissue} voxels, the problem {n}")
        self.parts = parts
        self.weights = part_weights(parts, problem.region_sigma())
        self.diff_factor = problem.diffusion_factor()
        self.dt_limit_ms = self._stability_limits()
        if diffusion == "explicit":
            worst = int(np.argmin(self.dt_limit_ms))
            if problem.dt_ms > self.dt_limit_ms[worst]:
                c = problem.conductivities
                raise InputError(
                    f"dt = {problem.dt_ms} ms exceeds the stability limit of explicit diffusion, "
                    f"{self.dt_limit_ms[worst]:.4g} ms, for simulation {worst} (spacing "
                    f"{problem.grid.spacing.tolist()} mm, sigma_l {c.sigma_l[worst]:.4g}, sigma_t "
                    f"{c.sigma_t[worst]:.4g}, sigma_fast_endo {c.sigma_fast_endo[worst]:.4g} S/m); "
                    f"use dt <= {self.dt_limit_ms.min():.4g} ms or implicit diffusion")
        self.neighbour = torch.as_tensor(parts.neighbour, device=self.device)
        self.coef = torch.as_tensor(parts.combine(self.weights), dtype=dtype, device=self.device)
        codes = torch.as_tensor(problem.celltype.astype(np.int64), device=self.device)
        scales = {k: torch.tensor(np.array(v), dtype=dtype, device=self.device)[:, None]
                  for k, v in problem.cell_scales.items()}
        for k, v in problem.voxel_scales.items():
            per_voxel = torch.tensor(np.array(v), dtype=dtype, device=self.device)[None, :]
            scales[k] = scales[k] * per_voxel if k in scales else per_voxel
        self.params = tp06.make_params(codes, dtype=dtype, device=self.device, **scales)
        self.stimuli = StimulusSchedule(problem.stimuli, n, dtype=dtype, device=self.device)
        self._step = CompiledStep() if compile else full_step
        self.compiled = bool(compile)
        log.info("solver ready: %d simulations x %d voxels, dt %.4g ms (explicit limit %.4g ms), "
                 "%s, %s, %s, setup %.1f s", problem.batch, n, problem.dt_ms,
                 float(self.dt_limit_ms.min()), diffusion, self.device, dtype,
                 time.perf_counter() - t0)

    # ------------------------------------------------------------------ set-up
    def _stability_limits(self) -> np.ndarray:
        """Largest stable explicit dt (ms) per simulation: 2 / rho(L)."""
        limits = np.empty(self.weights.shape[1])
        cache: dict[bytes, float] = {}
        for b in range(self.weights.shape[1]):
            w = self.weights[:, b]
            key = w.tobytes()
            if key not in cache:
                bound = self.parts.spectral_bound(w) * self.diff_factor
                limit = 2.0 / bound
                if self.problem.dt_ms > limit and self.diffusion == "explicit":
                    limit = 2.0 / (self.parts.spectral_radius(w) * self.diff_factor)
                cache[key] = limit
            limits[b] = cache[key]
        return limits

    def initial_state(self) -> torch.Tensor:
        """(19, B, n) initial state from the problem's per-cell-type states."""
        init = torch.tensor(np.array(self.problem.initial_states), dtype=self.dtype, device=self.device)
        codes = torch.as_tensor(self.problem.celltype.astype(np.int64), device=self.device)
        return init[:, codes, :].permute(2, 0, 1).contiguous()

    # ------------------------------------------------------------------ physics
    def current_source(self, v: torch.Tensor) -> torch.Tensor:
        """Transmembrane current source I_m = div(sigma grad V) (uA/mm^3) for V (B, n) in mV."""
        return ell_apply(v, self.neighbour, self.coef)

    def _implicit(self, v: torch.Tensor, dt: float) -> torch.Tensor:
        """Solve (I - dt L) x = v for each simulation by conjugate gradients."""
        def op(x: torch.Tensor) -> torch.Tensor:
            return x - (dt * self.diff_factor) * ell_apply(x, self.neighbour, self.coef)
        x = v.clone()
        r = v - op(x)
        p = r.clone()
        rr = (r * r).sum(dim=1, keepdim=True)
        stop = (self.cg_tol ** 2) * (v * v).sum(dim=1, keepdim=True)
        for _ in range(200):
            if bool((rr <= stop).all()):
                break
            ap = op(p)
            alpha = rr / (p * ap).sum(dim=1, keepdim=True).clamp_min(1e-30)
            x = x + alpha * p
            r = r - alpha * ap
            rr_new = (r * r).sum(dim=1, keepdim=True)
            p = r + (rr_new / rr.clamp_min(1e-30)) * p
            rr = rr_new
        return x

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

    # ------------------------------------------------------------------ run
    def run(self, callback: Callback | None = None, record_every: int | None = None, *,
            record_initial: bool = True, progress: bool = False,
            state: torch.Tensor | None = None, stop_when_activated: bool = False
            ) -> RunResult:
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
            Stop early (at a blow-up check) once every voxel of every simulation has
            activated and no stimulus is left to come.

        Returns
        -------
        RunResult
        """
        p = self.problem
        if callback is not None and (record_every is None or record_every < 1):
            raise InputError("a recording callback needs record_every >= 1 (steps)")
        dt = float(p.dt_ms)
        state = self.initial_state() if state is None else state.to(self.device, self.dtype)
        tp06.validate_inputs(state, self.params, dt)
        b, n = state.shape[1], state.shape[2]
        act = torch.full((b, n), math.nan, dtype=self.dtype, device=self.device)
        rep = torch.full_like(act, math.nan)
        t_tensor = torch.zeros((), dtype=self.dtype, device=self.device)
        n_steps = p.n_steps
        if callback is not None and record_initial:
            callback(0.0, state[0])
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=n_steps, unit="step", desc="monodomain", mininterval=5.0)
        start = time.perf_counter()
        step = 0
        for step in range(1, n_steps + 1):
            t0 = (step - 1) * dt
            t_tensor.fill_(t0)
            i_stim = self.stimuli.current(t0, dt)
            if self.diffusion == "explicit":
                state, act, rep = self._step(state, act, rep, t_tensor, i_stim, self.params,
                                             self.neighbour, self.coef, dt, self.diff_factor,
                                             self.v_rep)
            else:
                v = state[0]
                new = tp06.step(state, self.params, i_stim, dt)
                v_new = self._implicit(new[0], dt)
                state = torch.cat((v_new.unsqueeze(0), new[1:]), dim=0)
                act, rep = crossings(v, v_new, act, rep, t_tensor, dt, self.v_rep)
            t = step * dt
            recording = callback is not None and step % record_every == 0
            if step % self.check_every == 0 or recording or step == n_steps:
                self._check(state[0], step, t)
                if (stop_when_activated and t >= self.stimuli.last_off_ms
                        and not bool(torch.isnan(act).any())):
                    if recording:
                        callback(t, state[0])
                    break
            if recording:
                callback(t, state[0])
            if bar is not None and step % 100 == 0:
                bar.update(100)
        wall = time.perf_counter() - start
        if bar is not None:
            bar.close()
        log.info("ran %d steps of %d x %d voxels in %.1f s (%.3g voxel-steps/s)", step, b, n,
                 wall, step * b * n / max(wall, 1e-9))
        return RunResult(activation_ms=act.float().cpu().numpy(),
                         repolarisation_ms=rep.float().cpu().numpy(),
                         v_final=state[0].float().cpu().numpy(), t_end_ms=step * dt,
                         steps=step, wall_s=wall, records=p.records)


def solve(problem: MonodomainProblem, **kwargs: object) -> RunResult:
    """Build a :class:`MonodomainSolver` and run it (``kwargs`` go to the constructor)."""
    return MonodomainSolver(problem, **kwargs).run()  # type: ignore[arg-type]
