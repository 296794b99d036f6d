"""Hemodynamic digital twins after Med-Real2Sim (Kuang et al., NeurIPS 2024).

The Simaan 2009 five-state left-heart circulation with ideal valves, double-Hill
elastance and a rotary LVAD (batched, differentiable, in torch); a synthetic campaign; a
pretext emulator; inverse networks trained through the frozen emulator on non-invasive
measurements (P-SSL) or with parameter labels (supervised); a per-patient fitting baseline;
patient CSV input; PV loops and in-silico LVAD trials. Independent of the
electrophysiology stages. See docs/hemo.md.
"""

from __future__ import annotations

from pipeline.hemo.circulation import STATES, initial_state, rhs_and_jacobian, stressed_volume
from pipeline.hemo.elastance import activation, elastance
from pipeline.hemo.metrics import indices
from pipeline.hemo.params import INFERRED, PARAMETERS, PRESETS, full_batch, preset
from pipeline.hemo.solver import Trajectory, simulate

__all__ = [
    "INFERRED", "PARAMETERS", "PRESETS", "STATES", "Trajectory", "activation", "elastance",
    "full_batch", "indices", "initial_state", "preset", "rhs_and_jacobian", "simulate",
    "stressed_volume",
]
