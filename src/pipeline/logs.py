"""Logging set-up shared by every subcommand: stderr plus an optional log file."""

from __future__ import annotations

import logging
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: ``extra=FILE_ONLY`` sends a record to the log file only, not to stderr.
FILE_ONLY = {"file_only": True}


def _not_file_only(record: logging.LogRecord) -> bool:
    return not getattr(record, "file_only", False)


def setup_logging(logfile: str | Path | None = None, verbose: bool = False) -> None:
    """Configure the root logger.

    Parameters
    ----------
    logfile
        Also append the log to this file (its folder is created), as Snakemake's
        ``log:`` directive gives it.
    verbose
        Log at DEBUG instead of INFO.
    """
    stderr = logging.StreamHandler()
    stderr.addFilter(_not_file_only)
    handlers: list[logging.Handler] = [stderr]
    if logfile:
        path = Path(logfile)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=FORMAT,
                        handlers=handlers, force=True)
    for noisy in ("matplotlib", "PIL", "h5py", "numexpr", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
