"""Measurements on simulations and the simulate stage.

Modules: :mod:`~pipeline.measure.leads` (ten electrode potentials -> twelve leads),
:mod:`~pipeline.measure.ecg` (pseudo-ECG weights, Gima & Rudy 2002),
:mod:`~pipeline.measure.activation` (activation times, the paper's label, APD90),
:mod:`~pipeline.measure.params` (the shard's parameter table),
:mod:`~pipeline.measure.shard` (the shard HDF5 file),
:mod:`~pipeline.measure.simulate` (running a shard with the monodomain solver),
:mod:`~pipeline.measure.figures` (ECG, activation map, Vm traces),
:mod:`~pipeline.measure.cli` (``pipeline simulate``, ``pipeline simulate-figures``).
"""

from pipeline.measure.activation import activation_labels, activation_times, apd, apd90
from pipeline.measure.ecg import PseudoECG, pseudo_ecg_weights
from pipeline.measure.leads import (ELECTRODE_NAMES, LEAD_NAMES, ElectrodePotentials,
                                    lead_matrix, leads_from_electrodes)
from pipeline.measure.shard import ShardData, read_shard, write_shard

__all__ = ["ELECTRODE_NAMES", "LEAD_NAMES", "ElectrodePotentials", "PseudoECG", "ShardData",
           "activation_labels", "activation_times", "apd", "apd90", "lead_matrix",
           "leads_from_electrodes", "pseudo_ecg_weights", "read_shard", "write_shard"]
