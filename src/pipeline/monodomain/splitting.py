"""The two halves of a split monodomain step, behind small interfaces, and their composition.

Godunov splitting of ``dV/dt = -I_ion(V, s) + I_stim + L V`` over one step of length dt:

1. **diffusion half**, a :class:`Diffusion`: either *explicit* (its current ``L V`` at t,
   mV/ms, added to the reaction step's V update) or *implicit* (the backward-Euler solve
   ``V <- (I - dt L)^-1 V`` after the reaction step);
2. **reaction half**, a :class:`Reaction`: the cell model's pure step
   ``step(states, params, i_stim, dt) -> states`` on state tuples shaped (B, n) each
   (TP06 here: :func:`pipeline.cell.tp06.step_states`).

:class:`SplitStep` composes one of each into ``state(t) -> state(t + dt)`` and keeps the
on-line activation and repolarisation times (:func:`crossings`). Compiled, the explicit
path runs as two kernels: the neighbour gather of the diffusion current, then one pointwise
kernel (cell step, V update, crossings). Measured (``pipeline bench throughput``):
compiling both as one graph lets inductor put the 18 gathers inside the cell-model loops,
which was slower at batch 1 and 8 on CPU. If compilation fails (a node without a working
C++ compiler, an unsupported GPU), the step logs why and runs eagerly.

A second cell model plugs in as another :class:`Reaction`; a reaction-eikonal run changes
only the stimulus the loop passes in (:mod:`pipeline.monodomain.solver`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from pipeline.errors import InputError
from pipeline.monodomain.diffusion import ell_apply
from pipeline.monodomain.stimulus import window_current

log = logging.getLogger(__name__)

#: A cell model's pure step: (states as a tuple of (B, n) tensors, params, I_stim (B, n)
#: pA/pF, dt ms) -> new states.
CellStep = Callable[[tuple[torch.Tensor, ...], Any, torch.Tensor, float], tuple[torch.Tensor, ...]]


@dataclass(frozen=True)
class Reaction:
    """The cell-model half: a pure step and its parameters (broadcastable to (B, n)).

    Attributes
    ----------
    step
        The cell model's pure step (:data:`CellStep`); state 0 is V (mV).
    params
        The model's parameters, passed to every call.
    n_states
        Number of state variables.
    """

    step: CellStep
    params: Any
    n_states: int


class Diffusion(Protocol):
    """The diffusion half: explicit (a current) or implicit (a solve)."""

    implicit: bool

    def current(self, v: torch.Tensor) -> torch.Tensor:
        """Explicit diffusion current (B, n) in mV/ms of V (B, n) in mV."""

    def solve(self, v: torch.Tensor, dt: float) -> torch.Tensor:
        """Implicit step: V after dt of diffusion alone (B, n) mV."""


def diffusion_current(v: torch.Tensor, neighbour: torch.Tensor, coef: torch.Tensor,
                      diff_factor: float, scales: torch.Tensor | None = None
                      ) -> torch.Tensor:
    """Diffusion current div(sigma grad V) / (chi Cm 0.01) (mV/ms) of V (B, n) in mV."""
    return ell_apply(v, neighbour, coef, scales) * diff_factor


@dataclass(frozen=True)
class StencilDiffusion:
    """Explicit or implicit diffusion on the ELLPACK stencil of the voxel grid.

    Attributes
    ----------
    neighbour
        int64 (n, K) neighbour table (the voxel itself where a neighbour is missing).
    coef
        (B, n, K) coefficients (uA/mm^3 per mV), one table per simulation; or (T, n, K)
        tables shared by the batch when ``scales`` is given.
    scales
        None, or (B, T) weight of each shared table per simulation (S/m): simulations that
        differ only by their conductivities share the tables
        (:meth:`~pipeline.monodomain.diffusion.StencilParts.batch_tables`).
    diff_factor
        1 / (chi Cm 0.01): uA/mm^3 -> mV/ms.
    implicit
        Backward Euler solved by conjugate gradients (to ``cg_tol``) instead of forward Euler.
    """

    neighbour: torch.Tensor
    coef: torch.Tensor
    diff_factor: float
    implicit: bool = False
    cg_tol: float = 1e-6
    cg_max_iter: int = 200
    scales: torch.Tensor | None = None

    def source(self, v: torch.Tensor) -> torch.Tensor:
        """Transmembrane current source I_m = div(sigma grad V) (uA/mm^3) of V (B, n) mV."""
        return ell_apply(v, self.neighbour, self.coef, self.scales)

    def current(self, v: torch.Tensor) -> torch.Tensor:
        return diffusion_current(v, self.neighbour, self.coef, self.diff_factor, self.scales)

    @property
    def table_bytes(self) -> int:
        """Bytes of the coefficient tables and their weights (the neighbour table apart)."""
        extra = 0 if self.scales is None else self.scales.numel() * self.scales.element_size()
        return self.coef.numel() * self.coef.element_size() + extra

    def solve(self, v: torch.Tensor, dt: float) -> torch.Tensor:
        """Solve (I - dt L) x = v for each simulation by conjugate gradients."""
        def op(x: torch.Tensor) -> torch.Tensor:
            return x - dt * self.current(x)
        x = v.clone()
        r = v - op(x)
        p = r.clone()
        rr = (r * r).sum(dim=1, keepdim=True)
        stop = (self.cg_tol ** 2) * (v * v).sum(dim=1, keepdim=True)
        for _ in range(self.cg_max_iter):
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


def crossings(v: torch.Tensor, v_new: torch.Tensor, act: torch.Tensor, rep: torch.Tensor,
              t: torch.Tensor, dt: float, v_rep: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Update activation (first 0 mV upstroke) and repolarisation (last v_rep downstroke)."""
    up = (v < 0.0) & (v_new >= 0.0) & torch.isnan(act)
    act = torch.where(up, t + dt * v / (v - v_new), act)
    down = (v >= v_rep) & (v_new < v_rep) & ~torch.isnan(act)
    rep = torch.where(down, t + dt * (v - v_rep) / (v - v_new), rep)
    return act, rep


#: The reaction-eikonal drive as :func:`~pipeline.monodomain.stimulus.window_current`'s
#: arguments: per-voxel window start and end (B, n) ms, amplitude pA/pF, gate mV or None.
Window = tuple[torch.Tensor, torch.Tensor, float, "float | None"]


def stimulus_current(stim: torch.Tensor | Window, times: torch.Tensor, v: torch.Tensor,
                     dt: float) -> torch.Tensor:
    """The stimulus current (B, n) pA/pF of a step: ``stim`` itself (a current), or a
    window drive evaluated over [times[0], times[1]) at the potential ``v`` (B, n) mV."""
    if isinstance(stim, torch.Tensor):
        return stim
    return window_current(stim[0], stim[1], times[0], times[1], dt, stim[2], stim[3], v)


def pointwise_update(cell_step: CellStep) -> Callable[..., tuple[torch.Tensor, ...]]:
    """The pointwise kernel of an explicit step for one cell model (pure).

    ``(state (S, B, n), i_diff, act, rep, times (2,), stim, params, dt, v_rep) -> (state,
    act, rep)``: the stimulus current (:func:`stimulus_current`: a (B, n) current or a
    window drive evaluated here), the cell step, ``V += dt I_d`` and the crossing times in
    one pass; ``times`` holds the step's start and end (ms).
    """
    def update(state: torch.Tensor, i_diff: torch.Tensor, act: torch.Tensor, rep: torch.Tensor,
               times: torch.Tensor, stim: torch.Tensor | Window, params: Any, dt: float,
               v_rep: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        i_stim = stimulus_current(stim, times, state[0], dt)
        new = cell_step(state.unbind(0), params, i_stim, dt)
        v_new = new[0] + dt * i_diff
        act, rep = crossings(state[0], v_new, act, rep, times[0], dt, v_rep)
        return torch.stack((v_new, *new[1:])), act, rep
    return update


def advance_steps(cell_step: CellStep) -> Callable[..., tuple[torch.Tensor, ...]]:
    """K explicit steps in one function (pure), for one cell model.

    ``(state (S, B, n), act, rep, times (K, 2), neighbour, coef, diff_factor, scales,
    params, dt, v_rep, window) -> (state, act, rep)``: ``times[k]`` holds the start and
    end (ms) of step k, and ``window`` is None (no stimulus) or the reaction-eikonal drive
    (:data:`Window`). Each step is the explicit step of :class:`SplitStep`: the diffusion
    current, then :func:`pointwise_update`. Compiled, the K steps are one graph and one
    call, so the host's work per step (dispatch, guards) is paid once per K steps; inductor
    then also fuses each step's neighbour gather into its cell-model loop (slower on the
    CPU for large problems, docs/monodomain.md).
    """
    update = pointwise_update(cell_step)

    def advance(state: torch.Tensor, act: torch.Tensor, rep: torch.Tensor, times: torch.Tensor,
                neighbour: torch.Tensor, coef: torch.Tensor, diff_factor: float,
                scales: torch.Tensor | None, params: Any, dt: float, v_rep: float,
                window: Window | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        for k in range(times.shape[0]):
            i_diff = diffusion_current(state[0], neighbour, coef, diff_factor, scales)
            stim = torch.zeros_like(act) if window is None else window
            state, act, rep = update(state, i_diff, act, rep, times[k], stim, params, dt, v_rep)
        return state, act, rep
    return advance


def _reason(exc: Exception) -> str:
    """``Type: first line`` of a compiler failure, for the eager fallback's log line."""
    text = str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


class SplitStep:
    """``state(t) -> state(t + dt)`` for a batch: one reaction and one diffusion half.

    Parameters
    ----------
    reaction
        The cell-model half.
    diffusion
        The diffusion half (:class:`StencilDiffusion`).
    dt
        Time step (ms).
    v_rep
        Repolarisation threshold of the crossing times (mV).
    compile
        Compile the explicit step's two kernels with ``torch.compile`` (eager fallback with
        a logged reason if compilation fails).
    """

    def __init__(self, reaction: Reaction, diffusion: StencilDiffusion, dt: float, v_rep: float,
                 *, compile: bool = False) -> None:
        self.reaction = reaction
        self.diffusion = diffusion
        self.dt = float(dt)
        self.v_rep = float(v_rep)
        self._eager = (diffusion_current, pointwise_update(reaction.step))
        self._kernels = self._eager
        self.compiled = bool(compile) and not diffusion.implicit
        if self.compiled:
            self._kernels = (torch.compile(diffusion_current, dynamic=False),
                             torch.compile(self._eager[1], dynamic=False))
        self._tried = not self.compiled
        self._advance = advance_steps(reaction.step)
        self._advance_compiled: Callable | None = None
        self.fused = self.compiled

    def __call__(self, state: torch.Tensor, act: torch.Tensor, rep: torch.Tensor,
                 t: torch.Tensor, i_stim: torch.Tensor | Window
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step; ``state`` (S, B, n), ``act``/``rep`` (B, n) ms, ``t`` (2,): the step's
        start and end (ms); ``i_stim`` the stimulus current (B, n) pA/pF or a window drive
        (:data:`Window`, evaluated inside the compiled kernel)."""
        if self.diffusion.implicit:
            return self._implicit(state, act, rep, t, i_stim)
        if not self._tried:
            return self._first_compiled(state, act, rep, t, i_stim)
        return self._explicit(self._kernels, state, act, rep, t, i_stim)

    def _explicit(self, kernels: tuple[Callable, Callable], state: torch.Tensor,
                  act: torch.Tensor, rep: torch.Tensor, t: torch.Tensor,
                  i_stim: torch.Tensor | Window
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        d = self.diffusion
        i_diff = kernels[0](state[0], d.neighbour, d.coef, d.diff_factor, d.scales)
        return kernels[1](state, i_diff, act, rep, t, i_stim, self.reaction.params, self.dt,
                          self.v_rep)

    def _first_compiled(self, state: torch.Tensor, act: torch.Tensor, rep: torch.Tensor,
                        t: torch.Tensor, i_stim: torch.Tensor | Window
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The first compiled call compiles; a failure falls back to eager, logging why."""
        self._tried = True
        try:
            return self._explicit(self._kernels, state, act, rep, t, i_stim)
        except Exception as exc:  # noqa: BLE001 - any compiler failure: run eagerly instead
            log.warning("torch.compile failed (%s); running the step eagerly", _reason(exc))
            self._kernels, self.compiled = self._eager, False
            return self._explicit(self._kernels, state, act, rep, t, i_stim)

    def advance(self, state: torch.Tensor, act: torch.Tensor, rep: torch.Tensor,
                times: torch.Tensor,
                window: Window | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``times.shape[0]`` explicit steps in one call (:func:`advance_steps`).

        ``times`` (K, 2): start and end (ms) of each step, in the state's dtype and device;
        ``window``: None (no stimulus in these steps) or the reaction-eikonal drive. The
        first compiled call compiles the K-step graph (one graph per K and per stimulus
        kind); if that fails the steps run eagerly from then on, with the reason logged.
        Explicit diffusion only.
        """
        if self.diffusion.implicit:
            raise InputError("advance() runs explicit steps; this step's diffusion is implicit")
        d = self.diffusion
        args = (state, act, rep, times, d.neighbour, d.coef, d.diff_factor, d.scales,
                self.reaction.params, self.dt, self.v_rep, window)
        if not self.fused:
            return self._advance(*args)
        if self._advance_compiled is None:
            self._advance_compiled = torch.compile(self._advance, dynamic=False)
            try:
                return self._advance_compiled(*args)
            except Exception as exc:  # noqa: BLE001 - any compiler failure: run eagerly instead
                log.warning("torch.compile of the %d-step call failed (%s); running those steps "
                            "eagerly", times.shape[0], _reason(exc))
                self.fused = False
                return self._advance(*args)
        return self._advance_compiled(*args)

    def _implicit(self, state: torch.Tensor, act: torch.Tensor, rep: torch.Tensor,
                  t: torch.Tensor, i_stim: torch.Tensor | Window
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        i_stim = stimulus_current(i_stim, t, state[0], self.dt)
        new = self.reaction.step(state.unbind(0), self.reaction.params, i_stim, self.dt)
        v_new = self.diffusion.solve(new[0], self.dt)
        act, rep = crossings(state[0], v_new, act, rep, t[0], self.dt, self.v_rep)
        return torch.stack((v_new, *new[1:])), act, rep
