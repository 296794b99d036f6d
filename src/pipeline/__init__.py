"""Simulation-to-inference pipeline for cardiac electrical imaging.

Stages (one subpackage each): ``anatomy`` (voxelised biventricular hearts, fibres,
recording points, electrodes), ``cell`` (the TP06 ionic model and steady states),
``monodomain`` (the finite-difference solver and activation patterns), ``measure``
(pseudo-ECG, Vm at points, activation and APD), ``campaign`` (parameter sweeps, shards,
the dataset file), ``learn`` (Networks I/II and better ones), ``hemo`` (lumped
circulation digital twins). Physics never imports ``learn``; ``learn`` never imports
the solver.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cardiac-pipeline")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
