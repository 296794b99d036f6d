"""Where each simulated beat's QRS ends on its ECG, against when its heart finished activating.

The QRS end of :func:`pipeline.signals.features.beat_features` is read from the ECG alone
(the spatial velocity). A simulation also knows when the ventricles were activated: the
latest activation time of the whole map where a shard stores it
(``simulate.save_activation_map``), else at the 75 recording points (``activation_ms``; a
lower bound, since the points do not sample every voxel). A QRS that ends well after the
last activation has run into the ST-T; one that ends well before has cut off terminal
forces. This script reads simulation shards (``results/sims/<campaign>/*.h5``), or with
``--fixed`` simulates the resolution study's fixed parameters on the given hearts (R-E+,
2 mm, every pattern, 400 ms, the map stored), and prints, per pattern, the QRS end minus
the last activation (min / median / max) and the rule that ended each QRS, and every beat
further than ``--tolerance-ms`` from it. Figures: docs/fidelity-log.md, "Session 14".

    python benchmarks/qrs_end.py results/sims/demo/*.h5 [--max-qrs-ms 250] [--json out.json]
    python benchmarks/qrs_end.py --fixed 1 llnl [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from pipeline.signals.features import MAX_QRS_MS, beat_features
from pipeline.simulate.shard import read_shard


def beats(paths: list[Path], max_qrs_ms: float = MAX_QRS_MS) -> list[dict]:
    """One row per simulation: shard, index, pattern, QRS end, last activation (ms)."""
    rows = []
    for path in paths:
        data = read_shard(path)
        patterns = data.params.get("pattern", np.full(data.ecg.shape[0], "?"))
        for i, ecg in enumerate(data.ecg):
            f = beat_features(ecg, data.dt_ms, max_qrs_ms=max_qrs_ms)
            amap = data.activation_map_ms
            last = float(np.nanmax(data.activation_ms[i] if amap is None else amap[i]))
            rows.append({"shard": path.name, "index": i, "pattern": str(patterns[i]),
                         "qrs_onset_ms": f.qrs_onset_ms, "qrs_end_ms": f.qrs_end_ms,
                         "qrs_end_by": f.qrs_end_by,
                         "last_activation_ms": last,
                         "end_minus_activation_ms": f.qrs_end_ms - last})
    return rows


def fixed_shards(hearts: list[str], folder: Path) -> list[Path]:
    """Shards of the study's fixed parameters, every pattern, on ``hearts`` (``llnl`` or a
    parametric heart's index), with their activation maps."""
    import sys
    from dataclasses import replace

    from pipeline.params import PATTERNS
    from pipeline.settings import RunSettings, SimulateSettings
    from pipeline.simulate.convergence import simulate_fixed, write_fixed_inputs
    from pipeline.simulate.shard import write_shard

    sys.path.insert(0, str(Path(__file__).parent))
    from textbook_criteria import anatomy_for

    patterns = sorted(PATTERNS)
    settings = replace(SimulateSettings.defaults(), dt_ms=0.1, duration_ms=400.0,
                       save_activation_map=True)
    run = RunSettings(device="cpu", dtype="float32", compile=True,
                      batch_size=len(patterns), threads=2)
    paths = []
    for heart in hearts:
        inputs = folder / heart
        inputs.mkdir()
        data = simulate_fixed(write_fixed_inputs(inputs, anatomy_for(heart, 2.0)),
                              "reaction_eikonal", patterns, settings, run)
        paths.append(folder / f"{data.anatomy}.h5")
        write_shard(paths[-1], data)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shards", nargs="*", type=Path)
    ap.add_argument("--fixed", nargs="+", metavar="HEART",
                    help="simulate these hearts (llnl, or a parametric index) instead")
    ap.add_argument("--tolerance-ms", type=float, default=40.0,
                    help="list the beats whose QRS end is further than this from the last "
                         "activation at the points")
    ap.add_argument("--max-qrs-ms", type=float, default=MAX_QRS_MS,
                    help="beat_features' limit on the QRS (inf: no limit, the rule before "
                         "session 14)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if bool(args.shards) == bool(args.fixed):
        ap.error("give shard files or --fixed hearts")
    if args.fixed:
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            rows = beats(fixed_shards(args.fixed, Path(tmp)), args.max_qrs_ms)
    else:
        rows = beats(sorted(args.shards), args.max_qrs_ms)
    by_pattern: dict[str, list[float]] = defaultdict(list)
    rules: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        by_pattern[r["pattern"]].append(r["end_minus_activation_ms"])
        rules[r["pattern"]][r["qrs_end_by"]] += 1
    summary = {}
    print(f"{'pattern':<11} {'beats':>5}  QRS end - last activation (ms): min / median / max"
          "   ended by")
    for name, d in sorted(by_pattern.items()):
        d_arr = np.asarray(d)
        summary[name] = {"n": len(d), "min": float(d_arr.min()),
                         "median": float(np.median(d_arr)), "max": float(d_arr.max()),
                         "ended_by": dict(rules[name])}
        print(f"{name:<11} {len(d):>5}  {d_arr.min():7.1f} / {np.median(d_arr):7.1f} / "
              f"{d_arr.max():7.1f}   {dict(rules[name])}")
    far = [r for r in rows if abs(r["end_minus_activation_ms"]) > args.tolerance_ms]
    print(f"{len(far)} of {len(rows)} beats end further than {args.tolerance_ms:g} ms from "
          "their last activation:")
    for r in (rows if args.fixed else far):
        print(f"  {r['shard']}[{r['index']}] {r['pattern']}: QRS end {r['qrs_end_ms']:.0f} ms, "
              f"last activation {r['last_activation_ms']:.0f} ms")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "beats": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
