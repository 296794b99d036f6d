"""Carry a resolution-study run between machines in files of at most 16 MiB.

A 0.25 mm monodomain reference of the LLNL heart (7.0 M tissue voxels) runs in minutes on a
GPU and in hours on 2 cores, so it is run on a lent GPU machine
(``benchmarks/gpu_session.sh``) and its cached run (``pipeline bench convergence --cache``)
comes back here, where the coarser runs are compared with it. What comes back from such a
machine is at most 8 files of 16 MiB each; a cached run holds one float32 activation map
per pattern (28 MB at 0.25 mm), so ``pack`` writes the map of every pattern as uint16 in
units of 0.01 ms (65535 for a voxel never activated; at most 0.005 ms off) in a
compressed file of its own, and everything else in one more file. ``unpack`` writes the
cached run back, maps in float32, under its own name in the study's cache folder.

    python benchmarks/fine_reference.py pack RUN.npz OUT_DIR
    python benchmarks/fine_reference.py unpack OUT_DIR CACHE_DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

#: Quantum (ms) of a packed activation map, and the code of a voxel never activated.
QUANTUM_MS, NEVER = 0.01, np.uint16(65535)
#: Largest file a lent machine gives back (bytes).
MAX_BYTES = 16 * 2 ** 20


def pack(run: Path, out: Path) -> list[Path]:
    """Split the cached run ``run`` into ``out/NAME.core.npz`` and ``out/NAME.PATTERN.map.npz``."""
    out.mkdir(parents=True, exist_ok=True)
    with np.load(run, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    patterns = json.loads(str(arrays["patterns"]))
    written = []
    for p in patterns:
        amap = arrays.pop(f"{p}/map", None)
        if amap is None:
            continue
        if np.nanmax(amap) >= (int(NEVER) - 1) * QUANTUM_MS:
            raise ValueError(f"{run}: {p}/map reaches {np.nanmax(amap):.1f} ms; a packed map "
                             f"holds at most {(int(NEVER) - 1) * QUANTUM_MS:.0f} ms")
        q = np.where(np.isnan(amap), NEVER,
                     np.rint(np.nan_to_num(amap) / QUANTUM_MS)).astype(np.uint16)
        written.append(out / f"{run.stem}.{p}.map.npz")
        np.savez_compressed(written[-1], map=q, quantum_ms=np.array(QUANTUM_MS))
    written.append(out / f"{run.stem}.core.npz")
    np.savez_compressed(written[-1], **arrays)
    for f in written:
        if f.stat().st_size > MAX_BYTES:
            raise ValueError(f"{f}: {f.stat().st_size / 2 ** 20:.1f} MiB, over the "
                             f"{MAX_BYTES / 2 ** 20:.0f} MiB a lent machine gives back")
    return written


def unpack(folder: Path, cache: Path) -> list[Path]:
    """Write every run packed in ``folder`` back as ``cache/NAME.npz``."""
    cache.mkdir(parents=True, exist_ok=True)
    written = []
    for core in sorted(folder.glob("*.core.npz")):
        name = core.name[:-len(".core.npz")]
        with np.load(core, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        for p in json.loads(str(arrays["patterns"])):
            part = folder / f"{name}.{p}.map.npz"
            if not part.is_file():
                continue
            with np.load(part, allow_pickle=False) as z:
                q, quantum = z["map"], float(z["quantum_ms"])
            arrays[f"{p}/map"] = np.where(q == NEVER, np.nan,
                                          q.astype(np.float32) * quantum).astype(np.float32)
        target = cache / f"{name}.npz"
        tmp = target.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(target)
        written.append(target)
    if not written:
        raise FileNotFoundError(f"{folder}: no packed run (*.core.npz)")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("pack")
    p.add_argument("run", type=Path)
    p.add_argument("out", type=Path)
    u = sub.add_parser("unpack")
    u.add_argument("folder", type=Path)
    u.add_argument("cache", type=Path)
    args = parser.parse_args(argv)
    files = pack(args.run, args.out) if args.verb == "pack" else unpack(args.folder, args.cache)
    for f in files:
        print(f, f"{f.stat().st_size / 2 ** 20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
