"""Helpers every stage's command line shares: common options and the ``--settings`` option.

A ground-floor module: it imports only :mod:`pipeline.config` and :mod:`pipeline.errors`,
so stage CLIs use it without importing :mod:`pipeline.cli` (which imports them).

``--settings`` takes the workflow config (or part of it) as inline JSON/YAML, or ``@FILE``
for a JSON/YAML file. :func:`load_settings` parses it, validates it against the schema and
fills the defaults; every failure is an :class:`~pipeline.errors.InputError` whose message
starts with ``--settings:``, so ``pipeline ... --settings '{bad'`` prints one named error
line and exits 1. Call it before reading any input file.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, overload

import yaml

from pipeline.errors import InputError

SETTINGS_HELP = ("workflow config as JSON/YAML (or @FILE); schema defaults fill what is "
                 "missing")


def add_common(parser: argparse.ArgumentParser) -> None:
    """Add the options every subcommand shares: ``--log FILE`` and ``-v``."""
    parser.add_argument("--log", metavar="FILE", default=None,
                        help="also write the log to FILE (Snakemake's log file)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def add_settings(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """Add ``--settings JSON|YAML|@FILE`` (read it with :func:`load_settings`)."""
    parser.add_argument("--settings", metavar="JSON|YAML|@FILE", default=None,
                        help=help or SETTINGS_HELP)


def parse_settings(text: str | None) -> dict[str, Any]:
    """Parse a ``--settings`` value (inline JSON/YAML or ``@FILE``) into a mapping.

    Raises
    ------
    InputError
        ``--settings: ...``: a missing or unreadable file, a JSON/YAML syntax error (with
        the parser's message), or a value that is not a mapping.
    """
    if not text:
        return {}
    source = "--settings"
    if text.startswith("@"):
        path = Path(text[1:])
        source = f"--settings @{path}"
        try:
            text = path.read_text()
        except FileNotFoundError as exc:
            raise InputError(f"{source}: file not found") from exc
        except OSError as exc:
            raise InputError(f"{source}: cannot read the file ({exc.strerror or exc})") from exc
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid JSON/YAML: {_yaml_problem(exc)}") from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{source}: must be a mapping such as '{{\"seed\": 1}}', "
                         f"got a {type(value).__name__}")
    return value


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's message in one line: the problem and where (line, column)."""
    problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if not problem:
        return " ".join(str(exc).split())
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return f"{problem}{where}"


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with ``extra`` merged in (mappings merged key by key)."""
    out = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@overload
def load_settings(args: argparse.Namespace, section: None = None, *,
                  overrides: Mapping[str, Any] | None = None) -> dict[str, Any]: ...
@overload
def load_settings(args: argparse.Namespace, section: str, *,
                  overrides: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], int]: ...


def load_settings(args: argparse.Namespace, section: str | None = None, *,
                  overrides: Mapping[str, Any] | None = None) -> Any:
    """Parse, merge and resolve ``args.settings``.

    Parameters
    ----------
    args
        Parsed arguments with a ``settings`` attribute (see :func:`add_settings`).
    section
        If given, return ``(config[section], seed)``; else the whole resolved config.
    overrides
        Merged (deeply) over the parsed mapping before validation: command-line options
        that override config keys, e.g. ``{"simulate": {"device": "cpu"}}``.

    Raises
    ------
    InputError
        ``--settings: ...`` naming what was wrong; schema errors give the key's dotted path.
    """
    from pipeline.config import resolve

    raw = merge(parse_settings(getattr(args, "settings", None)), overrides or {})
    try:
        full = resolve(raw)
    except InputError as exc:
        head, *keys = str(exc).split("\n  ")
        raise InputError(f"--settings: {head} " + "; ".join(keys)) from exc
    if section is None:
        return full
    return full[section], int(full["seed"])
