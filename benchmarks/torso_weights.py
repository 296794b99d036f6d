"""Time of one heart pose's electrode weights in the bounded torso (``ecg_medium: torso``).

The parametric heart at ``--resolution`` mm, posed in the 15 mm torso as the simulate
stage poses it (:func:`pipeline.signals.torso.torso_pseudo_ecg`), ``--poses`` rotations;
the torso's factorisation (once per process) is timed apart. With a heart pose per
simulation a shard computes one such set per simulation, before its time loop.

    python benchmarks/torso_weights.py --resolution 1.0 --poses 3 [--chunk 512]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    import numpy as np

    from pipeline.anatomy.electrodes import BODY_HEART_CENTRE, BODY_SITES
    from pipeline.monodomain.throughput import _heart
    from pipeline.params import HeartPose
    from pipeline.signals import torso

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=float, default=1.0)
    ap.add_argument("--poses", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=None, help="voxels per block (the default's)")
    args = ap.parse_args()
    heart = _heart(None, args.resolution)
    t0 = time.perf_counter()
    bem = torso.body_torso(15.0)
    print(f"torso factorisation: {time.perf_counter() - t0:.1f} s "
          f"({len(bem.centroids)} triangles)")
    if args.chunk:
        default = bem.weights

        def chunked(*a, **k):
            return default(*a, chunk=args.chunk, **k)
        bem.weights = chunked   # this process's torso only
    rng = np.random.default_rng(0)
    times = []
    for _ in range(args.poses):
        pose = HeartPose(rotation_deg=tuple(rng.uniform(-20.0, 20.0, 3)))
        t0 = time.perf_counter()
        torso.torso_pseudo_ecg(heart, 0.2, BODY_SITES, BODY_HEART_CENTRE, pose=pose)
        times.append(time.perf_counter() - t0)
    print(f"{int(heart.mask.sum())} voxels at {args.resolution:g} mm: one pose's weights "
          f"{min(times):.2f} s (best) / {np.median(times):.2f} s (median) over {args.poses}")


if __name__ == "__main__":
    main()
