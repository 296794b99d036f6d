"""Host memory of a shard's lead field when every simulation has its own heart pose.

The parametric heart at ``--resolution`` mm, ``--poses`` rotations of up to 20 degrees,
infinite medium, batches of ``--batch``; ``--mode before`` stacks every pose's weights in
memory (as the simulate stage did until session 21), ``after`` reads each batch's from
:class:`pipeline.simulate.lead_field.ShardLeadField`'s temporary file. Prints the peak
RSS (file pages of the temporary file included: the kernel may drop them) and the largest
anonymous RSS while the batches are read (what must stay in memory). Run each mode in its
own process:

    python benchmarks/lead_field_memory.py --mode before
    python benchmarks/lead_field_memory.py --mode after
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd


def anonymous_mb() -> float:
    """This process's anonymous resident memory (MB), from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    from pipeline.monodomain.throughput import _heart
    from pipeline.params import HeartPose
    from pipeline.settings import SimulateSettings
    from pipeline.simulate.lead_field import ShardLeadField, pseudo_ecg

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["before", "after"], required=True)
    ap.add_argument("--resolution", type=float, default=1.0)
    ap.add_argument("--poses", type=int, default=60)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    heart = _heart(None, args.resolution)
    rng = np.random.default_rng(0)
    poses = [HeartPose(rotation_deg=tuple(rng.uniform(-20.0, 20.0, 3)))
             for _ in range(args.poses)]
    table = pd.DataFrame([{"sim_id": i, **p.columns()} for i, p in enumerate(poses)])
    settings = SimulateSettings.defaults()
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    anon = 0.0
    starts = range(0, args.poses, args.batch)
    if args.mode == "before":
        stacked = np.stack([pseudo_ecg(heart, settings, p).weights for p in poses])
        for b in starts:
            stacked[b:b + args.batch].sum()
            anon = max(anon, anonymous_mb())
    else:
        with ShardLeadField(heart, settings, table) as field:
            for b in starts:
                field.weights(b, b + args.batch).sum()
                anon = max(anon, anonymous_mb())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.mode}: {int(heart.mask.sum())} voxels, {args.poses} poses, batch "
          f"{args.batch}: peak RSS {peak:.0f} MB ({before_mb:.0f} MB with the heart built), "
          f"largest anonymous RSS while reading the batches {anon:.0f} MB, "
          f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
