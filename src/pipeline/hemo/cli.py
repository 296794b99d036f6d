"""``pipeline hemo ...``: hemodynamic digital twins (Med-Real2Sim) from the command line.

Subcommands: ``simulate`` (one preset, optional LVAD), ``campaign`` (synthetic HDF5),
``emulator`` (pretext network), ``inverse`` (P-SSL and supervised inverse networks,
identifiability), ``evaluate`` (held-out cohort, per-patient fit baseline), ``twins``
(patient CSV -> parameters, PV loops, LVAD trial).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pipeline.cliutil import add_common, add_settings, load_settings
from pipeline.errors import InputError

log = logging.getLogger(__name__)


def _settings(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    settings = load_settings(args, "hemo")
    import torch

    torch.set_num_threads(1)  # small batched ops: one thread is fastest on a shared CPU
    return settings


def _parse_sets(items: list[str]) -> dict[str, float]:
    from pipeline.hemo.params import PARAMETERS

    values: dict[str, float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise InputError(f"--set {item!r}: expected NAME=VALUE")
        if name not in PARAMETERS:
            raise InputError(f"--set {item!r}: unknown parameter {name!r}; known: {', '.join(PARAMETERS)}")
        try:
            values[name] = float(text)
        except ValueError as exc:
            raise InputError(f"--set {item!r}: value {text!r} is not a number") from exc
    return values


def cmd_simulate(args: argparse.Namespace) -> int:
    """Simulate one parameter set to its periodic state and write its indices as JSON."""
    cfg, _ = _settings(args)
    values = _parse_sets(args.set or [])
    from pipeline.hemo.params import PRESETS

    if args.preset not in PRESETS:
        raise InputError(f"--preset {args.preset!r}: unknown; known: {sorted(PRESETS)}")
    for name in ("Tc", "Rm", "Ra", "Rs", "Ca", "Cs", "Cr", "Ls", "Emax", "Emin"):
        if name in values and values[name] <= 0:
            raise InputError(f"--set {name}={values[name]}: must be > 0")
    if args.lvad_speed is not None and args.lvad_speed < 0:
        raise InputError(f"--lvad-speed {args.lvad_speed}: must be >= 0 rpm")
    from pipeline.hemo.twins import simulate_one
    from pipeline.io import write_json

    result = simulate_one(args.preset, values, cfg["solver"], args.lvad_speed)
    write_json(args.json, result)
    log.info("EF %.1f %%, CO %.2f L/min, EDV %.1f mL, ESV %.1f mL -> %s", result["EF_percent"],
             result["CO_L_per_min"], result["EDV_mL"], result["ESV_mL"], args.json)
    return 0


def cmd_campaign(args: argparse.Namespace) -> int:
    """Run the synthetic campaign and write its HDF5 file."""
    cfg, seed = _settings(args)
    from pipeline.hemo.campaign import run_campaign

    run_campaign(args.out, cfg, seed)
    return 0


def cmd_emulator(args: argparse.Namespace) -> int:
    """Train the pretext emulator on a campaign."""
    cfg, seed = _settings(args)
    from pipeline.hemo.emulator import train_emulator

    train_emulator(args.campaign, args.out, args.metrics, cfg, seed)
    return 0


def cmd_inverse(args: argparse.Namespace) -> int:
    """Train the P-SSL and supervised inverse networks; report identifiability."""
    cfg, seed = _settings(args)
    from pipeline.hemo.inverse import train_inverse

    train_inverse(args.campaign, args.emulator, args.out_dir, cfg, seed)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Held-out cohort: EF recovery by re-simulation; per-patient fit baseline; timings."""
    cfg, seed = _settings(args)
    from pipeline.hemo.evaluate import evaluate

    evaluate(args.campaign, args.models, args.out_dir, cfg, seed)
    return 0


def cmd_twins(args: argparse.Namespace) -> int:
    """Patient CSV -> parameters, PV loops and an in-silico LVAD trial."""
    cfg, seed = _settings(args)
    csv = args.csv or cfg["patients"]["csv"]
    if not csv:
        raise InputError("no patient CSV: pass --csv FILE or set hemo.patients.csv")
    from pipeline.hemo.patients import read_patients

    patients = read_patients(csv, cfg["patients"]["default_hr_bpm"], cfg["patients"]["max_patients"])
    from pipeline.hemo.twins import make_twins

    make_twins(patients, args.model, args.out_dir, cfg, seed)
    return 0


def register(sub: Any, bench: Any) -> None:
    """Add ``pipeline hemo ...`` to the top-level subcommands."""
    hemo = sub.add_parser("hemo", help="hemodynamic digital twins (Simaan 2009 circulation, Med-Real2Sim)")
    hsub = hemo.add_subparsers(dest="hemo_command", metavar="HEMO_COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        add_settings(p, "JSON/YAML mapping {seed, hemo: {...}} or @FILE (defaults from the schema)")
        add_common(p)

    p = hsub.add_parser("simulate", help="simulate a preset to its periodic state; write EDV, ESV, EF, CO as JSON")
    p.add_argument("--preset", default="simaan2009", help="parameter preset (default simaan2009)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a parameter (repeatable)")
    p.add_argument("--lvad-speed", type=float, default=None, metavar="RPM", help="connect the LVAD at this speed")
    p.add_argument("--json", required=True, metavar="OUT", help="output JSON file")
    common(p)
    p.set_defaults(func=cmd_simulate)

    p = hsub.add_parser("campaign", help="synthetic campaign -> HDF5")
    p.add_argument("--out", required=True, help="output HDF5 file")
    common(p)
    p.set_defaults(func=cmd_campaign)

    p = hsub.add_parser("emulator", help="train the pretext emulator (parameters -> LV volume curve)")
    p.add_argument("--campaign", required=True, help="campaign HDF5")
    p.add_argument("--out", required=True, help="output checkpoint (.pt)")
    p.add_argument("--metrics", required=True, help="output JSON with the held-out errors (mL)")
    common(p)
    p.set_defaults(func=cmd_emulator)

    p = hsub.add_parser("inverse", help="train the P-SSL and supervised inverse networks")
    p.add_argument("--campaign", required=True, help="campaign HDF5")
    p.add_argument("--emulator", required=True, help="emulator checkpoint")
    p.add_argument("--out-dir", required=True, help="folder for pssl.pt, supervised.pt, identifiability.json/png")
    common(p)
    p.set_defaults(func=cmd_inverse)

    p = hsub.add_parser("evaluate", help="held-out cohort: EF recovery, per-patient fit baseline, timings")
    p.add_argument("--campaign", required=True, help="campaign HDF5")
    p.add_argument("--models", required=True, help="folder with pssl.pt and supervised.pt")
    p.add_argument("--out-dir", required=True, help="folder for metrics.json, figures and the cohort CSV")
    common(p)
    p.set_defaults(func=cmd_evaluate)

    p = hsub.add_parser("twins", help="patient CSV -> parameters, PV loops, in-silico LVAD trial")
    p.add_argument("--csv", default=None, help="patient CSV (default: hemo.patients.csv)")
    p.add_argument("--model", required=True, help="P-SSL inverse network checkpoint (pssl.pt)")
    p.add_argument("--out-dir", required=True, help="output folder")
    common(p)
    p.set_defaults(func=cmd_twins)

    def show_help(args: argparse.Namespace) -> int:
        hemo.print_help()
        return 2

    hemo.set_defaults(func=show_help)
