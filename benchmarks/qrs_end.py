"""Where each simulated beat's QRS ends on its ECG, against when its heart finished activating.

The QRS end of :func:`pipeline.signals.features.beat_features` is read from the ECG alone
(the spatial velocity). A simulation also knows when the ventricles were activated: the
latest activation time at the 75 recording points (``activation_ms``; a lower bound of the
total activation, since the points do not sample every voxel). A QRS that ends well after
the last activation has run into the ST-T; one that ends well before has cut off terminal
forces. This script reads simulation shards (``results/simulations/<campaign>/*.h5``) and
prints, per pattern, the QRS end minus the last activation at the points (min / median /
max), and every beat further than ``--tolerance-ms`` from it.

    python benchmarks/qrs_end.py results/simulations/demo/*.h5 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from pipeline.signals.features import beat_features
from pipeline.simulate.shard import read_shard


def beats(paths: list[Path]) -> list[dict]:
    """One row per simulation: shard, index, pattern, QRS end, last activation (ms)."""
    rows = []
    for path in paths:
        data = read_shard(path)
        patterns = data.params.get("pattern", np.full(data.ecg.shape[0], "?"))
        for i, ecg in enumerate(data.ecg):
            f = beat_features(ecg, data.dt_ms)
            last = float(np.nanmax(data.activation_ms[i]))
            rows.append({"shard": path.name, "index": i, "pattern": str(patterns[i]),
                         "qrs_onset_ms": f.qrs_onset_ms, "qrs_end_ms": f.qrs_end_ms,
                         "last_activation_ms": last,
                         "end_minus_activation_ms": f.qrs_end_ms - last})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shards", nargs="+", type=Path)
    ap.add_argument("--tolerance-ms", type=float, default=40.0,
                    help="list the beats whose QRS end is further than this from the last "
                         "activation at the points")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    rows = beats(sorted(args.shards))
    by_pattern: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        by_pattern[r["pattern"]].append(r["end_minus_activation_ms"])
    summary = {}
    print(f"{'pattern':<11} {'beats':>5}  QRS end - last activation (ms): min / median / max")
    for name, d in sorted(by_pattern.items()):
        d_arr = np.asarray(d)
        summary[name] = {"n": len(d), "min": float(d_arr.min()),
                         "median": float(np.median(d_arr)), "max": float(d_arr.max())}
        print(f"{name:<11} {len(d):>5}  {d_arr.min():7.1f} / {np.median(d_arr):7.1f} / "
              f"{d_arr.max():7.1f}")
    far = [r for r in rows if abs(r["end_minus_activation_ms"]) > args.tolerance_ms]
    print(f"{len(far)} of {len(rows)} beats end further than {args.tolerance_ms:g} ms from "
          "their last activation:")
    for r in far:
        print(f"  {r['shard']}[{r['index']}] {r['pattern']}: QRS end {r['qrs_end_ms']:.0f} ms, "
              f"last activation {r['last_activation_ms']:.0f} ms")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "beats": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
