"""Real (clinical) 12-lead ECG recordings: reading and preprocessing.

A ground-floor package: it imports only :mod:`pipeline.errors`, :mod:`pipeline.io`,
numpy, scipy and wfdb (and the lead names), never torch or the simulator, so that
``pipeline predict`` and training code can both call it.

- :mod:`pipeline.clinical.read`: :func:`read_ecg` -> :class:`Recording` (12 leads, mV).
- :mod:`pipeline.clinical.preprocess`: :func:`preprocess` -> :class:`Beats` (filtered,
  1 kHz, R peaks, median beat aligned on the QRS onset) and :func:`network_input` (the
  training's per-lead amplitude scaling).
"""

from pipeline.clinical.preprocess import Beats, PreprocessSettings, network_input, preprocess
from pipeline.clinical.read import Recording, read_ecg

__all__ = ["Beats", "PreprocessSettings", "Recording", "network_input", "preprocess",
           "read_ecg"]
