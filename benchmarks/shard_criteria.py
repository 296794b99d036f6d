"""The textbook criteria of simulated beats, per heart and pattern, from simulation shards.

Reads one or more folders of shards (``results/sims/<campaign>``), each a run of the same
design under a different setting (say ``simulate.ecg_fast_layer_source``), reads every
beat as the dataset summary does (:class:`pipeline.campaign.summary.CriteriaTally`), and
prints, per folder, heart and pattern, how many beats meet all of the pattern's criteria
(and all but one, where that is more), how many miss each one, and the QRS duration and
frontal axis (median). Figures: docs/fidelity-log.md, "Session 14" to "Session 16".

    python benchmarks/shard_criteria.py tissue=results/sims/demo \
        myocardium=../run2/results/sims/demo [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pipeline.campaign.summary import CriteriaTally
from pipeline.simulate.shard import read_shard


def read_folder(folder: Path) -> dict[str, dict[str, dict]]:
    """Per heart (and ``all``) and pattern, the dataset summary's criteria tally
    (:class:`pipeline.campaign.summary.CriteriaTally`) of the folder's shards."""
    tallies: dict[str, CriteriaTally] = {}
    for path in sorted(folder.glob("*.h5")):
        data = read_shard(path)
        for heart in (data.anatomy, "all"):
            tallies.setdefault(heart, CriteriaTally(data.dt_ms))
        for i, pattern in enumerate(np.asarray(data.params["pattern"]).astype(str)):
            for heart in (data.anatomy, "all"):
                tallies[heart].add(pattern, data.ecg[i])
    return {heart: tally.result() for heart, tally in sorted(tallies.items())}


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
        result[name] = read_folder(Path(folder))
        print(f"== {name} ({folder})")
        for heart, patterns in result[name].items():
            for pattern, t in patterns.items():
                missed = {k: t["n"] - t["unreadable"] - v for k, v in t["met"].items()
                          if v < t["n"] - t["unreadable"]}
                but = {k: v for k, v in t["all_met_but"].items() if v > t["all_met"]}
                print(f"  {heart:9s} {pattern:7s} {t['all_met']:3d} of {t['n']:3d} meet all"
                      f"{''.join(f' ({v} all but {k})' for k, v in but.items())}; "
                      f"QRS {t['qrs_ms']['median']:.0f} ms, "
                      f"axis {t['axis_deg']['median']:+.0f} deg; missed {missed or '-'}; "
                      f"unreadable {t['unreadable']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
