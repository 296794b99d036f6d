"""Exceptions with messages meant for users (the CLI prints them without a traceback)."""


class PipelineError(Exception):
    """Base class: a user-facing error naming the file, field or value at fault."""


class InputError(PipelineError, ValueError):
    """Bad input (file, field, value): raised before any expensive work starts."""


class SimulationError(PipelineError, RuntimeError):
    """A simulation went wrong (NaN, blow-up): names the simulation, step and location."""


class CalibrationMismatch(InputError):
    """A CV-calibration file made for other settings, another grid or other conductivities."""
