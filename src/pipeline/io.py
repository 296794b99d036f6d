"""File output helpers: atomic writes and provenance attributes.

Every file the pipeline writes is first written under a temporary name in the same
folder and renamed into place when complete, so a killed run never leaves a partial
file under the final name.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline import __version__


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it to ``path`` when the block succeeds.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, allow_nan=True) + "\n")


def git_commit() -> str:
    """The git commit of the source tree this package runs from, or ``"unknown"``."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(config: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Provenance attributes: package version, git commit, config (YAML text), time (UTC)."""
    return {
        "pipeline_version": __version__,
        "git_commit": git_commit(),
        "config_yaml": yaml.safe_dump(dict(config) if config else {}, sort_keys=True),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_provenance(h5obj: Any, config: Mapping[str, Any] | None = None) -> None:
    """Set the provenance attributes on an open ``h5py`` file or group."""
    for key, value in provenance(config).items():
        h5obj.attrs[key] = value
