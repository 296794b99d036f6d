"""Parameters of the Simaan 2009 circulation and its LVAD, with sources and ranges.

Every parameter has a unit, a reference value and, where the inverse problem infers it, a
sampling range. Reference values are those of Simaan et al. 2009 ("A dynamical state space
representation and performance analysis of a feedback-controlled rotary left ventricular
assist device", IEEE Trans Control Syst Technol 17(1):15-28, Table I and Sec. II); the
ranges of the seven inferred parameters are those Med-Real2Sim used (Kuang et al., NeurIPS
2024, arXiv 2403.00177, Sec. 5 and its code). Pressures mmHg, volumes mL, flows mL/s, time s.

A batch of patients is a mapping ``name -> tensor (B,)``; :func:`full_batch` completes a
partial mapping with reference values, so that every model function sees every name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

SIMAAN = "Simaan et al. 2009, IEEE TCST 17:15, Table I"
SIMAAN_LVAD = "Simaan et al. 2009, Sec. II-B (pump model of Choi et al. 1997)"
MR2S = "Kuang et al. 2024 (Med-Real2Sim), Sec. 5"


@dataclass(frozen=True)
class Parameter:
    """One model parameter.

    Attributes
    ----------
    name
        Key used everywhere (CLI ``--set NAME=VALUE``, HDF5 ``params/NAME``, CSV columns).
    unit
        Physical unit.
    reference
        Value of the ``simaan2009`` preset.
    low, high
        Sampling/inference range, or ``None`` for a parameter that is held at its reference.
    source
        Where the value and the range come from.
    meaning
        One line of physiology.
    """

    name: str
    unit: str
    reference: float
    low: float | None
    high: float | None
    source: str
    meaning: str


_TABLE: tuple[Parameter, ...] = (
    # --- the seven parameters Med-Real2Sim infers (its "7-parameter model")
    Parameter("Tc", "s", 0.8, 0.4, 1.7, f"{SIMAAN}; range {MR2S}", "cardiac cycle length (60 / HR)"),
    Parameter("v_start", "mL", 140.0, 0.0, 280.0, f"{SIMAAN}; range {MR2S}",
              "LV volume at t = 0; with the other initial states it fixes the stressed blood volume"),
    Parameter("Emax", "mmHg/mL", 2.0, 0.5, 3.5, f"{SIMAAN}; range {MR2S}", "end-systolic elastance"),
    Parameter("Emin", "mmHg/mL", 0.06, 0.02, 0.1, f"{SIMAAN}; range {MR2S}", "end-diastolic elastance"),
    Parameter("Rm", "mmHg s/mL", 0.005, 0.005, 0.1, f"{SIMAAN}; range {MR2S}", "mitral valve resistance"),
    Parameter("Ra", "mmHg s/mL", 0.001, 0.0001, 0.25, f"{SIMAAN}; range {MR2S}", "aortic valve resistance"),
    Parameter("V0", "mL", 10.0, 4.0, 24.0, f"{SIMAAN}; range {MR2S}", "LV volume at zero pressure"),
    # --- held at Simaan's values (Med-Real2Sim holds them too)
    Parameter("Rs", "mmHg s/mL", 1.0, None, None, SIMAAN, "systemic vascular resistance"),
    Parameter("Rc", "mmHg s/mL", 0.0398, None, None, SIMAAN, "characteristic resistance"),
    Parameter("Ca", "mL/mmHg", 0.08, None, None, SIMAAN, "aortic compliance"),
    Parameter("Cs", "mL/mmHg", 1.33, None, None, SIMAAN, "systemic compliance"),
    Parameter("Cr", "mL/mmHg", 4.4, None, None, SIMAAN, "left atrial (pulmonary venous) compliance"),
    Parameter("Ls", "mmHg s^2/mL", 0.0005, None, None, SIMAAN, "inertance of blood in the aorta"),
    Parameter("pa_start", "mmHg", 75.0, None, None, "Simaan 2009 Fig. 5; Med-Real2Sim code",
              "arterial pressure at t = 0"),
    Parameter("pao_start", "mmHg", 75.0, None, None, "Simaan 2009 Fig. 5; Med-Real2Sim code",
              "aortic pressure at t = 0"),
    # --- the LVAD (a rotary pump between LV apex and aorta) and its cannulae
    Parameter("Ri", "mmHg s/mL", 0.0677, None, None, SIMAAN_LVAD, "inlet cannula resistance"),
    Parameter("Ro", "mmHg s/mL", 0.0677, None, None, SIMAAN_LVAD, "outlet cannula resistance"),
    Parameter("Li", "mmHg s^2/mL", 0.0127, None, None, SIMAAN_LVAD, "inlet cannula inertance"),
    Parameter("Lo", "mmHg s^2/mL", 0.0127, None, None, SIMAAN_LVAD, "outlet cannula inertance"),
    Parameter("b0", "mmHg s/mL", -0.17070, None, None, SIMAAN_LVAD, "pump head: flow coefficient"),
    Parameter("b1", "mmHg s^2/mL", -0.02177, None, None, SIMAAN_LVAD, "pump head: flow-rate coefficient"),
    Parameter("b2", "mmHg/rpm^2", 9.9025e-7, None, None, SIMAAN_LVAD, "pump head: speed coefficient"),
    Parameter("alpha", "s/mL", -3.5, None, None, SIMAAN_LVAD, "suction resistance slope"),
    Parameter("p_suction", "mmHg", 1.0, None, None, SIMAAN_LVAD,
              "LV pressure below which the suction resistance engages (Simaan's x1-bar)"),
)

#: Every parameter by name, in table order.
PARAMETERS: dict[str, Parameter] = {p.name: p for p in _TABLE}

#: The parameters the inverse problem infers, in the order of every parameter vector.
INFERRED: tuple[str, ...] = ("Tc", "v_start", "Emax", "Emin", "Rm", "Ra", "V0")

#: Named presets: name -> {parameter: value}.
PRESETS: dict[str, dict[str, float]] = {
    "simaan2009": {p.name: p.reference for p in _TABLE},
}


def preset(name: str) -> dict[str, float]:
    """The parameter values of a named preset.

    Raises
    ------
    ValueError
        For an unknown preset name (the message lists the known ones).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown hemodynamic preset {name!r}; known: {sorted(PRESETS)}")
    return dict(PRESETS[name])


def bounds(names: tuple[str, ...] = INFERRED) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper range of ``names`` as float64 tensors (len(names),)."""
    low = [PARAMETERS[n].low for n in names]
    high = [PARAMETERS[n].high for n in names]
    if any(v is None for v in low + high):
        raise ValueError(f"some of {names} have no range")
    return torch.tensor(low, dtype=torch.float64), torch.tensor(high, dtype=torch.float64)


def to_unit(values: torch.Tensor, names: tuple[str, ...] = INFERRED) -> torch.Tensor:
    """Map parameter values (..., len(names)) to [0, 1] by their ranges."""
    low, high = bounds(names)
    return (values - low.to(values)) / (high - low).to(values)


def from_unit(unit: torch.Tensor, names: tuple[str, ...] = INFERRED) -> torch.Tensor:
    """Inverse of :func:`to_unit`."""
    low, high = bounds(names)
    return low.to(unit) + unit * (high - low).to(unit)


def full_batch(values: Mapping[str, torch.Tensor | float], batch: int | None = None,
               dtype: torch.dtype = torch.float64,
               base: Mapping[str, float] | None = None) -> dict[str, torch.Tensor]:
    """Complete ``values`` with the reference values of every other parameter.

    Parameters
    ----------
    values
        Parameter name -> tensor (B,) or scalar.
    batch
        Batch size B; inferred from the first tensor in ``values`` when omitted.
    base
        Values for the names missing from ``values`` (default: the simaan2009 preset).

    Returns
    -------
    dict
        Every name of :data:`PARAMETERS` -> tensor (B,) of ``dtype``.

    Raises
    ------
    ValueError
        For a name that is not a parameter.
    """
    unknown = set(values) - set(PARAMETERS)
    if unknown:
        raise ValueError(f"unknown hemodynamic parameter(s) {sorted(unknown)}; known: {list(PARAMETERS)}")
    if batch is None:
        sizes = [v.shape[0] for v in values.values() if isinstance(v, torch.Tensor) and v.ndim > 0]
        batch = sizes[0] if sizes else 1
    base = base if base is not None else PRESETS["simaan2009"]
    out: dict[str, torch.Tensor] = {}
    for name in PARAMETERS:
        v = values.get(name, base[name])
        t = torch.as_tensor(v, dtype=dtype)
        out[name] = t.expand(batch).clone() if t.ndim == 0 else t.to(dtype)
    return out


def stack(batch: Mapping[str, torch.Tensor], names: tuple[str, ...] = INFERRED) -> torch.Tensor:
    """Stack ``names`` of a batch mapping into a tensor (B, len(names))."""
    return torch.stack([batch[n] for n in names], dim=-1)


def unstack(values: torch.Tensor, names: tuple[str, ...] = INFERRED) -> dict[str, torch.Tensor]:
    """Split a tensor (B, len(names)) into a mapping name -> (B,)."""
    return {n: values[..., i] for i, n in enumerate(names)}
