"""Hemodynamic digital twins after Med-Real2Sim (Kuang et al., NeurIPS 2024).

The Simaan 2009 five-state left-heart circulation with ideal valves, double-Hill
elastance and a rotary LVAD (batched, differentiable, in torch); a synthetic campaign; a
pretext emulator; inverse networks trained through the frozen emulator on non-invasive
measurements (P-SSL) or with parameter labels (supervised); a per-patient fitting baseline;
patient CSV input; PV loops and in-silico LVAD trials. Independent of the
electrophysiology stages. See docs/hemo.md.
"""

from __future__ import annotations

from pipeline.lazy import lazy_exports

#: Public names and the submodules they come from (imported on first use). The function
#: ``elastance`` is not among them: it shares its module's name (``pipeline.lazy``), so
#: import it from :mod:`pipeline.hemo.elastance`.
_EXPORTS = {
    "INFERRED": "pipeline.hemo.params",
    "PARAMETERS": "pipeline.hemo.params",
    "PRESETS": "pipeline.hemo.params",
    "STATES": "pipeline.hemo.circulation",
    "Trajectory": "pipeline.hemo.solver",
    "activation": "pipeline.hemo.elastance",
    "full_batch": "pipeline.hemo.params",
    "indices": "pipeline.hemo.metrics",
    "initial_state": "pipeline.hemo.circulation",
    "preset": "pipeline.hemo.params",
    "rhs_and_jacobian": "pipeline.hemo.circulation",
    "simulate": "pipeline.hemo.solver",
    "stressed_volume": "pipeline.hemo.circulation",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
