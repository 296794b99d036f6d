"""Stimulus protocols: which voxels, when, how strong.

A stimulus is a current per unit membrane (pA/pF = uA/uF, negative depolarises, the sign
convention of TP06) applied to a set of tissue voxels from ``start_ms`` for
``duration_ms``, optionally repeated every ``period_ms``. Literature protocols often give
a current per unit volume (Niederer et al. 2011: 50,000 uA/cm^3);
:func:`volume_to_membrane` converts with the surface-to-volume ratio and capacitance:

    i_m [pA/pF] = I_v [uA/mm^3] / (chi [1/mm] * Cm [uF/cm^2] * 0.01 [cm^2/mm^2]).

:class:`StimulusSchedule` turns the stimuli of a batch into the (B, n) current of each
time step. The current of a step [t, t + dt) is the stimulus amplitude times the fraction
of the step it overlaps, so the delivered charge does not depend on dt.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import InputError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: Potential (mV) at which the R-E+ drive lets go of a voxel (:class:`ActivationStimulus`):
#: above the sodium current's threshold, well below the upstroke's peak.
GATE_MV = -40.0

#: cm^2 per mm^2: converts Cm in uF/cm^2 to uF/mm^2.
CM2_PER_MM2 = 0.01


def volume_to_membrane(current_uA_per_mm3: float, chi_per_mm: float, cm_uF_per_cm2: float) -> float:
    """Membrane current density (pA/pF) of a volume current (uA/mm^3), same sign."""
    return current_uA_per_mm3 / (chi_per_mm * cm_uF_per_cm2 * CM2_PER_MM2)


@dataclass(frozen=True)
class Stimulus:
    """A current applied to some voxels of one simulation.

    Attributes
    ----------
    voxels
        int64 (m,) tissue indices (C order of the mask).
    start_ms
        Onset (ms).
    duration_ms
        Length of each pulse (ms).
    amplitude
        pA/pF; negative depolarises.
    period_ms
        Repeat interval (ms), or None for one pulse.
    count
        Number of pulses when ``period_ms`` is set.
    name
        A label (e.g. the activation site).
    weights
        Optional float (m,) factor per voxel (e.g. the fraction of each voxel inside a
        stimulus region); 1 if None.
    """

    voxels: np.ndarray
    start_ms: float
    duration_ms: float = 2.0
    amplitude: float = -52.0
    period_ms: float | None = None
    count: int = 1
    name: str = ""
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        vox = np.asarray(self.voxels, dtype=np.int64).ravel()
        vox.setflags(write=False)
        object.__setattr__(self, "voxels", vox)
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=np.float64).ravel()
            if w.shape != vox.shape or np.any(~np.isfinite(w)):
                raise InputError(f"stimulus {self.name!r}: weights of shape {w.shape} for "
                                 f"{vox.size} voxels (need finite values)")
            w.setflags(write=False)
            object.__setattr__(self, "weights", w)
        if vox.size == 0:
            raise InputError(f"stimulus {self.name!r} has no voxel")
        if not (math.isfinite(self.start_ms) and self.duration_ms > 0
                and math.isfinite(self.amplitude)):
            raise InputError(f"stimulus {self.name!r}: need finite start, duration > 0 and finite "
                             f"amplitude; got start {self.start_ms} ms, duration "
                             f"{self.duration_ms} ms, amplitude {self.amplitude} pA/pF")
        if self.period_ms is not None and self.period_ms <= self.duration_ms:
            raise InputError(f"stimulus {self.name!r}: period {self.period_ms} ms must exceed "
                             f"duration {self.duration_ms} ms")

    def pulses(self) -> list[tuple[float, float]]:
        """(on, off) times (ms) of every pulse."""
        n = self.count if self.period_ms is not None else 1
        period = self.period_ms or 0.0
        return [(self.start_ms + i * period, self.start_ms + i * period + self.duration_ms)
                for i in range(n)]


def check_stimuli(stimuli: Sequence[Sequence[Stimulus]], n_tissue: int) -> None:
    """Raise :class:`InputError` if a stimulus names a voxel outside ``[0, n_tissue)``."""
    for b, sims in enumerate(stimuli):
        for stim in sims:
            if stim.voxels.min() < 0 or stim.voxels.max() >= n_tissue:
                raise InputError(f"simulation {b}: stimulus {stim.name!r} names voxel "
                                 f"{int(stim.voxels.max())}, outside the {n_tissue} tissue voxels")


class StimulusSchedule:
    """The stimulus current of every step for a batch of simulations.

    The stimuli's voxels are gathered once, at construction, into one list of distinct
    positions of the (B, n) current (on the device) with, per entry, its pulse and its
    amplitude times weight (on the host). A step whose set of active pulses or their
    overlap fractions differ from the previous step's rewrites the current at those
    positions in one copy and one indexed write, whatever the batch and the number of
    sites; summing on the host, in float64, keeps overlapping stimuli deterministic on
    every device. Before, each change rebuilt the current stimulus by stimulus, one host
    copy and one indexed add each, and each such copy waited for the device: with 64
    simulations that was about 56 launches per step while the sites fired (session 28).

    Parameters
    ----------
    stimuli
        Per simulation, a sequence of :class:`Stimulus`.
    n_tissue
        Tissue voxels per simulation.
    dtype, device
        Of the (B, n) current tensor.
    """

    def __init__(self, stimuli: Sequence[Sequence[Stimulus]], n_tissue: int, *,
                 dtype: torch.dtype, device: torch.device | str) -> None:
        import torch
        check_stimuli(stimuli, n_tissue)
        self.batch = len(stimuli)
        self.n = n_tissue
        # one entry per pulse: (on, off, sim, stimulus), by onset
        self.events: list[tuple[float, float, int, Stimulus]] = sorted(
            ((on, off, b, s) for b, sims in enumerate(stimuli) for s in sims
             for on, off in s.pulses()), key=lambda e: e[0])
        self._on = np.array([e[0] for e in self.events], dtype=np.float64)
        self._off = np.array([e[1] for e in self.events], dtype=np.float64)
        self._last_off = float(self._off.max()) if self._off.size else 0.0
        flat = [b * n_tissue + s.voxels for _, _, b, s in self.events]
        base = [s.amplitude * (np.ones(s.voxels.size) if s.weights is None else s.weights)
                for _, _, _, s in self.events]
        self._owner = np.repeat(np.arange(len(self.events)), [f.size for f in flat])
        self._base = np.concatenate(base) if base else np.zeros(0)
        positions, self._inverse = np.unique(np.concatenate(flat) if flat
                                             else np.zeros(0, np.int64), return_inverse=True)
        self._positions = torch.as_tensor(positions, device=device)
        self._zero = torch.zeros((self.batch, n_tissue), dtype=dtype, device=device)
        self._current = torch.zeros_like(self._zero)
        self._pinned = self._current.device.type == "cuda"
        self._key: bytes = b""
        self._torch = torch

    @property
    def last_off_ms(self) -> float:
        """End of the last pulse (ms); 0 when there is none."""
        return self._last_off

    def _overlap(self, t0_ms: float, t1_ms: float) -> tuple[np.ndarray, np.ndarray]:
        """(E,) ms each pulse overlaps [t0, t1), and (E,) bool: more than rounding."""
        overlap = np.minimum(self._off, t1_ms) - np.maximum(self._on, t0_ms)
        return overlap, overlap > 1e-12 * max(1.0, abs(t1_ms))

    def quiet(self, t0_ms: float, t1_ms: float) -> bool:
        """Whether no pulse overlaps [t0, t1) (ms): the current is zero in those steps."""
        return not self._overlap(t0_ms, t1_ms)[1].any()

    def current(self, t_ms: float, dt_ms: float, v: torch.Tensor | None = None) -> torch.Tensor:
        """Current (B, n) in pA/pF for the step [t, t + dt); ``v`` is not used (site
        stimuli are not gated).

        The returned tensor is reused between calls; do not modify it.
        """
        if t_ms >= self._last_off:          # every pulse is over (or there is none)
            return self._zero
        overlap, active = self._overlap(t_ms, t_ms + dt_ms)
        if not active.any():
            return self._zero
        frac = np.where(active, np.round(overlap / dt_ms, 12), 0.0)
        key = frac.tobytes()
        if key != self._key:
            values = np.bincount(self._inverse, weights=self._base * frac[self._owner],
                                 minlength=self._positions.numel())
            host = self._torch.from_numpy(values).to(self._current.dtype)
            if self._pinned:        # an asynchronous copy: the host does not wait here
                host = host.pin_memory()
            self._current.view(-1)[self._positions] = host.to(self._current.device,
                                                              non_blocking=self._pinned)
            self._key = key
        return self._current


def window_current(start: torch.Tensor, end: torch.Tensor, t0: float | torch.Tensor,
                   t1: float | torch.Tensor, dt_ms: float, amplitude: float,
                   gate_mV: float | None, v: torch.Tensor | None) -> torch.Tensor:
    """Current (B, n) pA/pF of a per-voxel window drive over the step [t0, t1) (pure).

    Each voxel receives ``amplitude`` during ``[start, end)`` (ms, (B, n)), times the
    fraction of the step the window overlaps, while its potential ``v`` (B, n) mV at t0 is
    below ``gate_mV`` (no gate if None or ``v`` is None). ``t0``/``t1`` are floats or 0-d
    tensors, so the same function runs in the eager loop and inside a compiled multi-step
    call (:func:`pipeline.monodomain.splitting.advance_steps`).
    """
    import torch
    overlap = (torch.clamp(end, max=t1) - torch.clamp(start, min=t0)).clamp(min=0)
    i = overlap * (amplitude / dt_ms)
    if gate_mV is not None and v is not None:
        i = torch.where(v < gate_mV, i, torch.zeros((), dtype=i.dtype, device=i.device))
    return i


class ActivationStimulus:
    """A stimulus at every voxel from its own activation time: the reaction-eikonal drive.

    Voxel i of simulation b receives ``amplitude`` (pA/pF) during
    ``[t_act[b, i], t_act[b, i] + duration_ms)`` while its potential is below ``gate_mV``;
    a step covering part of that window gets the overlapping fraction (as
    :class:`StimulusSchedule` does for site stimuli). With diffusion kept in the loop this
    is the R-E+ model of Neic et al. (J Comput Phys 346:191, 2017): the eikonal times
    trigger the upstrokes, diffusion shapes the front and repolarisation.

    The gate makes the drive a trigger, as the foot current of Neic et al. is: it brings
    the membrane to the sodium channels' threshold and leaves the upstroke to them. An
    ungated pulse of -60 pA/pF for 2 ms adds to the sodium current through the whole
    upstroke; on a 0.2 mm epicardial cable it took the peak from +25 (propagated) to
    +84 mV, deepened the notch and shortened APD90 by 9-11 ms (docs/monodomain.md,
    "The R-E+ drive").

    Parameters
    ----------
    activation_ms
        (B, n) activation times (ms); NaN or inf voxels are never stimulated.
    amplitude
        Stimulus current (pA/pF, negative depolarises).
    duration_ms
        Longest pulse (ms); the gate usually ends it earlier.
    gate_mV
        The pulse stops at a voxel once its potential reaches this value (mV); None for an
        ungated rectangular pulse.
    """

    def __init__(self, activation_ms: torch.Tensor, amplitude: float, duration_ms: float,
                 gate_mV: float | None = GATE_MV) -> None:
        import torch
        if not duration_ms > 0:
            raise InputError(f"activation stimulus duration must be > 0 ms, got {duration_ms}")
        if gate_mV is not None and not -80.0 < gate_mV < 0.0:
            raise InputError(f"activation stimulus gate_mV = {gate_mV}: expected a potential "
                             "between the resting -80 and 0 mV (the upstroke's threshold)")
        self.gate_mV = None if gate_mV is None else float(gate_mV)
        act = torch.as_tensor(activation_ms)
        finite = torch.isfinite(act)
        self.start = torch.where(finite, act, torch.full_like(act, float("inf")))
        self.end = self.start + float(duration_ms)
        self.amplitude = float(amplitude)
        self.last_off_ms = float(self.end[finite].max()) if bool(finite.any()) else 0.0
        self._zero = torch.zeros_like(self.start)

    def current(self, t_ms: float, dt_ms: float, v: torch.Tensor | None = None) -> torch.Tensor:
        """Current (B, n) in pA/pF for the step [t, t + dt), gated by the potential ``v``
        (B, n) mV at t when given."""
        if t_ms >= self.last_off_ms:
            return self._zero
        return window_current(self.start, self.end, t_ms, t_ms + dt_ms, dt_ms, self.amplitude,
                              self.gate_mV, v)

    @property
    def window(self) -> tuple[torch.Tensor, torch.Tensor, float, float | None]:
        """``(start, end, amplitude, gate_mV)``: the drive as the arguments of
        :func:`window_current`, evaluated inside a multi-step call."""
        return self.start, self.end, self.amplitude, self.gate_mV
