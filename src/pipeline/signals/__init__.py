"""Signals: pure numpy code on recorded potentials (the ground floor of the measurements).

Modules: :mod:`~pipeline.signals.leads` (ten electrode potentials -> twelve leads, the
canonical :data:`LEAD_NAMES`), :mod:`~pipeline.signals.ecg` (pseudo-ECG weights, Gima &
Rudy 2002), :mod:`~pipeline.signals.activation` (activation times, the paper's label,
APD90), :mod:`~pipeline.signals.features` (QRS/QT features of a beat).

Nothing here imports the solver, the cell model or the learning code: ``learn`` and
``campaign`` read signals through this package.
"""

from pipeline.signals.activation import activation_labels, activation_times, apd, apd90
from pipeline.signals.ecg import PseudoECG, pseudo_ecg_weights
from pipeline.signals.leads import (ELECTRODE_NAMES, LEAD_NAMES, ElectrodePotentials,
                                    lead_matrix, leads_from_electrodes)

__all__ = ["ELECTRODE_NAMES", "LEAD_NAMES", "ElectrodePotentials", "PseudoECG",
           "activation_labels", "activation_times", "apd", "apd90", "lead_matrix",
           "leads_from_electrodes", "pseudo_ecg_weights"]
