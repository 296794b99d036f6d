"""Subcommands of the learning stage: ``train``, ``evaluate``, ``predict``, ``export-onnx``
and ``pipeline bench learn``. Torch and friends are imported inside the handlers."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from pipeline.cliutil import add_common, add_settings, load_settings
from pipeline.errors import InputError

log = logging.getLogger(__name__)


def _settings(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    over = {"learn": {"device": args.device}} if getattr(args, "device", None) else {}
    return load_settings(args, "learn", overrides=over)


def _threads(n: int | None) -> None:
    import torch

    if n:
        torch.set_num_threads(n)


def _network(name: str) -> str:
    from pipeline.learn.models import PRESETS

    if name not in PRESETS:
        raise InputError(f"--network {name!r}: unknown; choose one of {', '.join(PRESETS)}")
    return name


def cmd_train(args: argparse.Namespace) -> int:
    from pipeline.learn.train import train

    learn, seed = _settings(args)
    _threads(args.threads)
    if args.epochs is not None:
        learn["epochs"] = args.epochs
    train(args.dataset, _network(args.network), args.out, settings=learn, seed=seed,
          resume=args.resume, progress=not args.no_progress)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pipeline.learn.evaluate import evaluate

    learn, _ = _settings(args)
    _threads(args.threads)
    evaluate(args.model, args.dataset, args.out, anatomy=args.anatomy, device=learn["device"])
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from pipeline.learn.predict import predict_file

    _threads(args.threads)
    result = predict_file(args.model, args.ecg, args.out, fs=args.fs, pre_ms=args.pre_ms)
    print(json.dumps({k: result[k] for k in ("network", "ecg")}))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pipeline.learn.onnx_export import export_onnx

    diff = export_onnx(args.model, args.out)
    print(f"{args.out}: max |onnx - torch| = {diff:.3g}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from pipeline.learn.summary import summarise

    summarise(args.metrics, args.out)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Train each network with the same split and budget; print validation figures."""
    from pathlib import Path

    from pipeline.learn.evaluate import evaluate
    from pipeline.learn.train import train

    learn, seed = _settings(args)
    _threads(args.threads)
    learn["epochs"] = args.epochs
    rows = []
    for name in args.networks:
        ckpt = train(args.dataset, _network(name), args.out, settings=learn, seed=seed,
                     progress=False)
        m = evaluate(ckpt, args.dataset, Path(args.out) / f"eval-{name}")
        v = m["splits"]["val"]
        rows.append((name, m["n_parameters"], v["activation_mae_ms"], v["activation_sd_ms"],
                     m["baselines"]["mean"]["val"]["activation_mae_ms"],
                     m["baselines"]["ridge"]["val"]["activation_mae_ms"]))
    print(f"{'network':10s} {'params':>9s} {'val MAE':>8s} {'val SD':>7s} {'mean':>7s} "
          f"{'ridge':>7s}  (ms, {args.epochs} epochs, {args.dataset})")
    for r in rows:
        print(f"{r[0]:10s} {r[1]:9d} {r[2]:8.3f} {r[3]:7.3f} {r[4]:7.3f} {r[5]:7.3f}")
    return 0


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    """Add ``train``, ``evaluate``, ``predict``, ``export-onnx``, ``eval-summary`` and
    ``bench learn``."""
    def common(p: argparse.ArgumentParser, settings: bool = True) -> None:
        if settings:
            add_settings(p, "JSON/YAML {'seed': .., 'learn': {..}} or @FILE")
            p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                           help="override learn.device (a run setting: the workflow passes it "
                                "outside the job's params)")
        p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
        add_common(p)

    p = sub.add_parser("train", help="train a network (I, II, I_scaled, resnet, ensemble) on a dataset")
    p.add_argument("--network", required=True, help="preset: I, II, I_scaled, resnet, ensemble")
    p.add_argument("--dataset", required=True, help="dataset HDF5 (DESIGN.md section 6)")
    p.add_argument("--out", required=True, help="folder for {network}.pt and curves")
    p.add_argument("--epochs", type=int, default=None, help="override learn.epochs")
    p.add_argument("--resume", action="store_true", help="continue from {network}.state.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics.json, baselines and figures of a network")
    p.add_argument("--model", required=True, help="checkpoint {network}.pt")
    p.add_argument("--dataset", required=True, help="dataset HDF5")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--anatomy", nargs="+", default=None,
                   help="anatomy.h5 file(s) for the 3-D figure (the drawn sample's heart)")
    common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="activation times from a patient's 12-lead ECG")
    p.add_argument("--model", required=True, help="checkpoint {network}.pt")
    p.add_argument("--ecg", required=True, help=".npy, .csv (12 leads) or WFDB record")
    p.add_argument("--out", default=".", help="folder for activation.csv/.json, bullseye.png")
    p.add_argument("--fs", type=float, default=None, help="sampling rate (Hz) of .npy/.csv")
    p.add_argument("--pre-ms", type=float, default=10.0, help="window start before QRS onset")
    common(p, settings=False)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export-onnx", help="export a checkpoint to ONNX (checked with ORT)")
    p.add_argument("--model", required=True, help="checkpoint {network}.pt")
    p.add_argument("--out", required=True, help="output .onnx file")
    common(p, settings=False)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("eval-summary", help="table and figure comparing evaluated networks")
    p.add_argument("--metrics", nargs="+", required=True, help="metrics.json files")
    p.add_argument("--out", required=True, help="folder for summary.csv and summary.png")
    common(p, settings=False)
    p.set_defaults(func=cmd_summary)

    p = bench.add_parser("learn", help="train networks with one budget; compare on validation")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--networks", nargs="+", default=["I", "resnet", "ensemble"])
    common(p)
    p.set_defaults(func=cmd_bench)
