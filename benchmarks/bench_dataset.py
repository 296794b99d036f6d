"""Time the design and the dataset assembly; prints figures, asserts nothing.

    python benchmarks/bench_dataset.py [--n 480] [--shard-size 60] [--samples 500]

Writes ``n`` synthetic simulations (analytic action potentials, see tests/campaign_synth.py)
as shards in a temporary folder, assembles them, and reports seconds, samples per second
and bytes per sample; also times the paper campaign's design (16,140 rows, 280 shards).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=480)
    parser.add_argument("--shard-size", type=int, default=60)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()

    from campaign_synth import make_shard
    from pipeline.campaign import design
    from pipeline.campaign.assemble import assemble
    from pipeline.config import load

    paper = load(ROOT / "workflow" / "configs" / "paper.yaml")
    t0 = time.perf_counter()
    names = design.shard_names(paper, "paper")
    t1 = time.perf_counter()
    table = design.design_table(paper, "paper")
    t2 = time.perf_counter()
    settings = [design.shard_settings(paper, "paper", s) for s in names]
    t3 = time.perf_counter()
    print(f"paper design: {len(names)} shards in {t1 - t0:.3f} s, {len(table)} rows in "
          f"{t2 - t1:.2f} s, {len(settings)} shard settings in {t3 - t2:.2f} s")

    config = {"seed": 1, "anatomy": {"parametric": {"count": 4}},
              "campaigns": {"b": {"n_simulations": args.n, "shard_size": args.shard_size}}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        shards = [make_shard(folder / f"{s}.h5", design.shard_table(config, "b", s), args.samples)
                  for s in design.shard_names(config, "b")]
        t1 = time.perf_counter()
        out = folder / "b.h5"
        assemble(shards, out, split_cfg={"by": "sample", "val_fraction": 0.05,
                                         "test_fraction": 0.05},
                 seed=1, campaign="b", design=design.design_table(config, "b"))
        t2 = time.perf_counter()
        size = out.stat().st_size
    print(f"{len(shards)} synthetic shards ({args.n} x T={args.samples}) written in "
          f"{t1 - t0:.1f} s")
    print(f"assembly with checks: {t2 - t1:.1f} s = {args.n / (t2 - t1):.0f} samples/s; "
          f"file {size / 1e6:.1f} MB = {size / args.n / 1e3:.1f} kB per sample "
          f"(raw float32 {(12 + 10 + 75) * args.samples * 4 / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
