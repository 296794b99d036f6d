"""The textbook criteria of simulated beats, per heart and pattern, from simulation shards.

Reads one or more folders of shards (``results/sims/<campaign>``), each a run of the same
design under a different setting (say ``simulate.ecg_fast_layer_source``), reads every
beat with :func:`pipeline.signals.criteria.morphology` and the pattern's criteria, and
prints, per folder, heart and pattern, how many beats meet all of them, how many miss each
criterion, and the QRS duration and frontal axis (median). Figures: docs/monodomain.md,
"Session 14".

    python benchmarks/shard_criteria.py tissue=results/sims/demo \
        myocardium=../run2/results/sims/demo [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from pipeline.signals.criteria import CRITERIA, morphology
from pipeline.simulate.shard import read_shard


def read_folder(folder: Path) -> list[dict]:
    """One row per beat with criteria: heart, pattern, criteria missed, QRS, axis."""
    rows = []
    for path in sorted(folder.glob("*.h5")):
        data = read_shard(path)
        for i, pattern in enumerate(np.asarray(data.params["pattern"]).astype(str)):
            if pattern not in CRITERIA:
                continue
            m = morphology(data.ecg[i], data.dt_ms)
            found = CRITERIA[pattern](m)
            rows.append({"shard": path.name, "index": i, "heart": data.anatomy,
                         "pattern": pattern, "missed": [k for k, ok in found.items() if not ok],
                         "qrs_ms": m.qrs_ms, "axis_deg": round(m.frontal_axis_deg, 1)})
    return rows


def table(rows: list[dict]) -> dict[str, dict[str, dict]]:
    """Per heart (and ``all``) and pattern: n, all_met, missed counts, QRS and axis medians."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["heart"], r["pattern"])].append(r)
        groups[("all", r["pattern"])].append(r)
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    for (heart, pattern), rs in sorted(groups.items()):
        missed: dict[str, int] = defaultdict(int)
        for r in rs:
            for k in r["missed"]:
                missed[k] += 1
        out[heart][pattern] = {
            "n": len(rs), "all_met": sum(not r["missed"] for r in rs), "missed": dict(missed),
            "qrs_ms_median": float(np.median([r["qrs_ms"] for r in rs])),
            "axis_deg_median": float(np.median([r["axis_deg"] for r in rs]))}
    return dict(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", metavar="NAME=FOLDER")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    result = {}
    for run in args.runs:
        name, _, folder = run.partition("=")
        if not folder:
            ap.error(f"{run!r}: expected NAME=FOLDER")
        result[name] = table(read_folder(Path(folder)))
        print(f"== {name} ({folder})")
        for heart, patterns in result[name].items():
            for pattern, t in patterns.items():
                print(f"  {heart:9s} {pattern:7s} {t['all_met']:3d} of {t['n']:3d} meet all; "
                      f"QRS {t['qrs_ms_median']:.0f} ms, axis {t['axis_deg_median']:+.0f} deg; "
                      f"missed {t['missed'] or '-'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
