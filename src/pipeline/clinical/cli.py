"""Subcommands for clinical recordings: ``ecg-preprocess`` and ``pipeline bench clinical``."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The shared real recordings (``/work/shared/data/ecg`` beside the repository).
SHARED_ECG = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "ecg"
SHARED_RECORDS = ("ptbxl_00001/00001_hr", "cinc2021_E07509_rbbb/E07509")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {"band": tuple(args.band), "notch_hz": args.notch,
                            "onset_ms": args.onset_ms}
    return opts


def cmd_preprocess(args: argparse.Namespace) -> int:
    """Read and preprocess one recording; write the median beat, a JSON summary and a PNG."""
    import numpy as np

    from pipeline.clinical.figure import plot_beats
    from pipeline.clinical.preprocess import preprocess
    from pipeline.clinical.read import read_ecg
    from pipeline.io import atomic_path, provenance, write_json

    rec = read_ecg(args.ecg, unit=args.unit, fs=args.fs)
    beats = preprocess(rec, **_options(args))
    out = Path(args.out)
    with atomic_path(out / "median_beat.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, beats.median)
    summary = beats.summary()
    summary.update({"derived_leads": list(rec.derived), "original_names": list(rec.original_names),
                    "input_fs_hz": rec.fs, "duration_s": rec.duration_s,
                    "median_file": "median_beat.npy",
                    "median_layout": "(12, L) mV at 1 kHz, lead_names order, QRS onset at "
                                     "sample onset_ms, isoelectric level 0",
                    "provenance": {k: v for k, v in provenance().items() if k != "config_yaml"}})
    write_json(out / "summary.json", summary)
    plot_beats(beats, out / "beats.png")
    rate = beats.heart_rate_bpm
    print(f"{args.ecg}: {beats.n_beats} beats, {rate:.1f} bpm, QRS {beats.qrs_duration_ms:.0f} "
          f"ms, median beat {beats.median.shape} -> {out}")
    for w in beats.warnings:
        print(f"warning: {w}")
    return 0


def bench_clinical(paths: list[str | Path], repeat: int = 5) -> list[dict[str, Any]]:
    """Time reading + preprocessing of each recording (after one warm-up run).

    Returns
    -------
    list of dict
        Per recording: ``path``, ``read_s`` and ``preprocess_s`` (best of ``repeat``),
        ``total_s``, ``n_beats``, ``heart_rate_bpm``, ``qrs_duration_ms``.
    """
    from pipeline.clinical.preprocess import preprocess
    from pipeline.clinical.read import read_ecg

    rows = []
    for path in paths:
        beats = preprocess(read_ecg(path))                      # warm-up (imports, caches)
        reads, preps = [], []
        for _ in range(max(1, repeat)):
            t0 = time.perf_counter()
            rec = read_ecg(path)
            t1 = time.perf_counter()
            beats = preprocess(rec)
            t2 = time.perf_counter()
            reads.append(t1 - t0)
            preps.append(t2 - t1)
        rows.append({"path": str(path), "read_s": min(reads), "preprocess_s": min(preps),
                     "total_s": min(r + p for r, p in zip(reads, preps)),
                     "n_beats": beats.n_beats, "heart_rate_bpm": beats.heart_rate_bpm,
                     "qrs_duration_ms": beats.qrs_duration_ms})
    return rows


def cmd_bench(args: argparse.Namespace) -> int:
    """Print the reading and preprocessing time of each recording."""
    from pipeline.errors import InputError

    paths = args.ecg or [SHARED_ECG / r for r in SHARED_RECORDS]
    missing = [str(p) for p in paths if not Path(str(p)).parent.exists()]
    if missing:
        raise InputError(f"recordings not found: {missing}; pass --ecg")
    rows = bench_clinical(paths, args.repeat)
    print(f"{'recording':44s} {'read s':>7s} {'prep s':>7s} {'total s':>8s} {'beats':>5s} "
          f"{'bpm':>6s} {'QRS ms':>6s}  (best of {args.repeat})")
    for r in rows:
        print(f"{Path(r['path']).name:44s} {r['read_s']:7.4f} {r['preprocess_s']:7.4f} "
              f"{r['total_s']:8.4f} {r['n_beats']:5d} {r['heart_rate_bpm']:6.1f} "
              f"{r['qrs_duration_ms']:6.0f}")
    return 0


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    """Add ``ecg-preprocess`` and ``bench clinical``."""
    from pipeline.cliutil import add_common

    p = sub.add_parser("ecg-preprocess",
                       help="read a real 12-lead ECG; median beat aligned on the QRS onset")
    p.add_argument("--ecg", required=True, help="WFDB record (.hea + .dat/.mat), .csv or .npy")
    p.add_argument("--out", required=True,
                   help="folder for median_beat.npy, summary.json, beats.png")
    p.add_argument("--fs", type=float, default=None, help="sampling rate (Hz) of .npy/.csv")
    p.add_argument("--unit", default=None, help="mV, uV or V (.npy/.csv; default mV)")
    p.add_argument("--band", type=float, nargs=2, default=(0.5, 150.0), metavar=("LOW", "HIGH"),
                   help="band-pass corners (Hz), default 0.5 150")
    p.add_argument("--notch", type=float, default=None, help="mains notch (50 or 60 Hz)")
    p.add_argument("--onset-ms", type=float, default=0.0,
                   help="QRS onset position in the aligned beat (ms, default 0)")
    add_common(p)
    p.set_defaults(func=cmd_preprocess)

    p = bench.add_parser("clinical", help="time reading + preprocessing of real recordings")
    p.add_argument("--ecg", nargs="+", default=None,
                   help="recordings (default: the two shared ones in ../shared/data/ecg)")
    p.add_argument("--repeat", type=int, default=5)
    add_common(p)
    p.set_defaults(func=cmd_bench)
