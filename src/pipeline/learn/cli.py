"""Subcommands of the learning stage: ``train``, ``evaluate``, ``predict``, ``fit-ood``,
``learning-curve``, ``adapt``, ``export-onnx``, ``eval-summary``, ``pipeline bench learn``
and ``pipeline bench predict``. Torch and friends are imported inside the handlers."""

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
    import sys

    from pipeline.learn.predict import predict_file

    _threads(args.threads)
    result = predict_file(args.model, args.ecg, args.out, fs=args.fs, unit=args.unit,
                          onset_ms=args.onset_ms, notch_hz=args.notch, dataset=args.dataset,
                          anatomy=args.anatomy, beats_figure=args.beats_figure)
    for w in result["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    keys = ("network", "ecg", "layout", "ood", "nearest")
    summary = {k: result[k] for k in keys}
    if summary["ood"]:
        summary["ood"] = {k: summary["ood"][k] for k in ("score", "threshold", "ood")}
    print(json.dumps(summary))
    return 0


def cmd_fit_ood(args: argparse.Namespace) -> int:
    from pipeline.learn.ood import attach_ood

    _threads(args.threads)
    ood = attach_ood(args.model, args.dataset, args.quantile)
    print(json.dumps({"model": args.model, "threshold": ood.threshold,
                      "shrinkage": ood.shrinkage, **ood.reference}))
    return 0


def cmd_learning_curve(args: argparse.Namespace) -> int:
    from pipeline.learn.curve import learning_curve

    learn, seed = _settings(args)
    _threads(args.threads)
    if args.epochs is not None:
        learn["epochs"] = args.epochs
    res = learning_curve(args.dataset, _network(args.network), args.sizes, args.out,
                         settings=learn, seed=seed)
    print(f"{'fraction':>8s} {'n_train':>7s} {'val MAE':>8s} {'test MAE':>8s} "
          f"{'ridge val':>9s} {'ridge test':>10s}  (ms)")
    for r in res["rows"]:
        vals = [r[k] if r[k] is not None else float("nan") for k in
                ("val_mae_ms", "test_mae_ms", "ridge_val_mae_ms", "ridge_test_mae_ms")]
        print(f"{r['fraction']:8g} {r['n_train']:7d} {vals[0]:8.3f} {vals[1]:8.3f} "
              f"{vals[2]:9.3f} {vals[3]:10.3f}")
    return 0


def cmd_adapt(args: argparse.Namespace) -> int:
    from pipeline.learn.adapt import run_adaptation

    _threads(args.threads)
    shift = {k: getattr(args, k) for k in ("noise", "mains", "wander", "gain_sd")
             if getattr(args, k) is not None}
    res = run_adaptation(args.model, args.dataset, args.out, shift=shift,
                         emulator_epochs=args.emulator_epochs, steps=args.steps, lr=args.lr,
                         anchor=args.anchor, seed=args.seed,
                         emulator_kw={"hidden": args.emulator_hidden, "lr": args.emulator_lr,
                                      "batch_size": args.emulator_batch})
    sup, ada = res["supervised"], res["adapted"]
    print(f"emulator relative val MSE {res['emulator']['val_relative_mse']:.3f}")
    print(f"{'':12s} {'clean test':>10s} {'shifted test':>12s}  (activation MAE, ms)")
    for name, r in (("supervised", sup), ("adapted", ada)):
        print(f"{name:12s} {r['clean_test_mae_ms']:10.3f} {r['shifted_test_mae_ms']:12.3f}")
    return 0


def cmd_bench_predict(args: argparse.Namespace) -> int:
    """Time prediction on real recordings after loading the model."""
    from pathlib import Path

    from pipeline.clinical.cli import SHARED_ECG, SHARED_RECORDS
    from pipeline.learn.predict import bench_predict

    _threads(args.threads)
    paths = args.ecg or [SHARED_ECG / r for r in SHARED_RECORDS]
    missing = [str(p) for p in paths if not Path(str(p)).parent.exists()]
    if missing:
        raise InputError(f"recordings not found: {missing}; pass --ecg")
    rows = bench_predict(args.model, paths, args.out, dataset=args.dataset, repeat=args.repeat)
    print(f"{'recording':24s} {'compute s':>9s} {'outputs s':>9s} {'total s':>8s} "
          f"{'OOD score':>9s} {'threshold':>9s}  (best of {args.repeat}, after loading)")
    for r in rows:
        score = r["ood_score"] if r["ood_score"] is not None else float("nan")
        thr = r["ood_threshold"] if r["ood_threshold"] is not None else float("nan")
        print(f"{Path(r['path']).name:24s} {r['compute_s']:9.4f} {r['outputs_s']:9.4f} "
              f"{r['total_s']:8.4f} {score:9.2f} {thr:9.2f}")
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


def _register_predict(sub: argparse._SubParsersAction, common: Any) -> None:
    """Add ``predict``."""
    p = sub.add_parser("predict", help="activation times from a patient's 12-lead ECG")
    p.add_argument("--model", required=True, help="checkpoint {network}.pt")
    p.add_argument("--ecg", required=True,
                   help="WFDB record (.hea + .dat/.mat), .csv (lead-name header), .npy "
                        "(with --fs), or a (12, T) .npy beat at 1 kHz (dataset layout)")
    p.add_argument("--out", default=".", help="folder for activation.csv/.json and figures")
    p.add_argument("--fs", type=float, default=None, help="sampling rate (Hz) of .npy/.csv")
    p.add_argument("--unit", default=None, help="mV, uV or V (.npy/.csv; default mV)")
    p.add_argument("--onset-ms", "--pre-ms", dest="onset_ms", type=float, default=0.0,
                   help="QRS onset position in the window (ms, default 0)")
    p.add_argument("--notch", type=float, default=None, help="mains notch (50 or 60 Hz)")
    p.add_argument("--dataset", default=None,
                   help="training dataset: figure and JSON with the nearest training sample")
    p.add_argument("--anatomy", nargs="+", default=None,
                   help="anatomy.h5 file(s) for the 3-D figure (with several: the nearest "
                        "training sample's heart)")
    p.add_argument("--beats-figure", action="store_true",
                   help="also draw beats.png (every beat and the median beat)")
    common(p, settings=False)
    p.set_defaults(func=cmd_predict)


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

    _register_predict(sub, common)
    _register_patients(sub, common)

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

    p = bench.add_parser("predict", help="time pipeline predict per recording after loading")
    p.add_argument("--model", required=True, help="checkpoint {network}.pt")
    p.add_argument("--ecg", nargs="+", default=None,
                   help="recordings (default: the two shared ones in ../shared/data/ecg)")
    p.add_argument("--dataset", default=None, help="training dataset (nearest sample)")
    p.add_argument("--out", default="bench-predict", help="folder for the outputs")
    p.add_argument("--repeat", type=int, default=5)
    common(p, settings=False)
    p.set_defaults(func=cmd_bench_predict)


def _register_patients(sub: argparse._SubParsersAction, common: Any) -> None:
    """Add ``fit-ood``, ``learning-curve`` and ``adapt``."""
    p = sub.add_parser("fit-ood", help="fit the out-of-distribution score of a checkpoint")
    p.add_argument("--model", required=True, help="checkpoint {network}.pt (rewritten)")
    p.add_argument("--dataset", required=True, help="its dataset (train and val splits)")
    p.add_argument("--quantile", type=float, default=0.99,
                   help="threshold = this quantile of the validation scores")
    common(p, settings=False)
    p.set_defaults(func=cmd_fit_ood)

    p = sub.add_parser("learning-curve", help="val/test MAE against the training set size")
    p.add_argument("--network", required=True, help="preset")
    p.add_argument("--dataset", required=True, help="dataset HDF5")
    p.add_argument("--sizes", type=float, nargs="+", default=[0.25, 0.5, 1.0],
                   help="fractions of the training split")
    p.add_argument("--out", required=True, help="folder for learning_curve.json/.png")
    p.add_argument("--epochs", type=int, default=None, help="override learn.epochs")
    common(p)
    p.set_defaults(func=cmd_learning_curve)

    p = sub.add_parser("adapt", help="self-supervised adaptation through a learned "
                                     "ECG emulator, on domain-shifted test ECGs")
    p.add_argument("--model", required=True, help="supervised activation checkpoint")
    p.add_argument("--dataset", required=True, help="its dataset")
    p.add_argument("--out", required=True, help="folder for adapt.json, emulator.pt, "
                                                "{network}.adapted.pt")
    p.add_argument("--emulator-epochs", type=int, default=200)
    p.add_argument("--emulator-hidden", type=int, default=256, help="emulator MLP width")
    p.add_argument("--emulator-lr", type=float, default=1e-3)
    p.add_argument("--emulator-batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=200, help="adaptation steps")
    p.add_argument("--lr", type=float, default=1e-4, help="adaptation learning rate")
    p.add_argument("--anchor", type=float, default=1e-2, help="weight of sum (w - w0)^2")
    p.add_argument("--seed", type=int, default=0)
    for name, help_ in (("noise", "white noise SD"), ("mains", "50-Hz amplitude"),
                        ("wander", "baseline wander amplitude"),
                        ("gain-sd", "SD of log lead gain")):
        p.add_argument(f"--{name}", type=float, default=None,
                       help=f"domain shift: {help_} (relative to the lead range)")
    common(p, settings=False)
    p.set_defaults(func=cmd_adapt)
