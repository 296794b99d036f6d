"""The textbook criteria of the normal beat (pipeline.signals.criteria) on the demo's
parametric hearts at 2 mm (R-E+, the study's fixed parameters, 400 ms), for each ECG
source setting of the fast layers (``simulate.ecg_fast_layer_source``) and, optionally,
several basal extents of the fast layer (``simulate.fast_endo_max_apicobasal``).

Prints one row per run: QRS duration, net QRS (R + S) in I, II, aVF, V1, V5, V6, the T wave
in I, II, V5, V6, limb and precordial peak to peak, and the criteria missed. Measured
figures: docs/monodomain.md, "Session 11".

    python benchmarks/normal_beat_criteria.py --hearts 0 1 2 3 \
        --sources tissue myocardium --max-apicobasal 0.85 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import yaml

from pipeline.signals.criteria import CRITERIA, morphology

SEED = int(yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
           ["seed"])
NET = ("I", "II", "aVF", "V1", "V5", "V6")
T_LEADS = ("I", "II", "V5", "V6")


def run_one(index: int, source: str, max_apicobasal: float, dx: float) -> dict:
    """One normal beat of parametric heart ``index``; its morphology and criteria."""
    from pipeline.anatomy.build import build_parametric
    from pipeline.config import resolve
    from pipeline.settings import RunSettings, SimulateSettings
    from pipeline.simulate.convergence import simulate_fixed, write_fixed_inputs

    cfg = resolve({"anatomy": {"resolution_mm": dx}})["anatomy"]
    anatomy, _ = build_parametric(index, SEED, cfg)
    settings = replace(SimulateSettings.defaults(), dt_ms=0.1, duration_ms=400.0,
                       ecg_fast_layer_source=source, fast_endo_max_apicobasal=max_apicobasal)
    run = RunSettings(device="cpu", dtype="float32", compile=True, batch_size=1, threads=2)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = simulate_fixed(write_fixed_inputs(Path(tmp), anatomy), "reaction_eikonal",
                              ("normal",), settings, run)
    m = morphology(data.ecg[0], data.dt_ms)
    found = CRITERIA["normal"](m)
    L = m.leads
    return {"heart": f"param{index:03d}", "source": source, "max_apicobasal": max_apicobasal,
            "qrs_ms": m.qrs_ms, "net_mV": {n: round(L[n].net, 3) for n in NET},
            "t_mV": {n: round(L[n].t, 3) for n in T_LEADS},
            "limb_p2p_mV": round(max(L[n].p2p for n in ("I", "II", "III", "aVR", "aVL",
                                                          "aVF")), 3),
            "precordial_p2p_mV": round(max(L[f"V{k}"].p2p for k in range(1, 7)), 3),
            "missed": [k for k, ok in found.items() if not ok],
            "wall_s": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hearts", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--sources", nargs="+", default=["tissue", "myocardium"],
                    choices=["tissue", "myocardium"])
    ap.add_argument("--max-apicobasal", type=float, nargs="+", default=[0.85])
    ap.add_argument("--dx", type=float, default=2.0, help="voxel size (mm)")
    ap.add_argument("--json", type=Path, help="write the rows here")
    args = ap.parse_args()
    rows = []
    for source in args.sources:
        for top in args.max_apicobasal:
            for index in args.hearts:
                r = run_one(index, source, top, args.dx)
                rows.append(r)
                print(f"{r['heart']} {source:10s} top {top:.2f}: QRS {r['qrs_ms']:.0f} ms; net "
                      + " ".join(f"{n} {v:+.2f}" for n, v in r["net_mV"].items()) + "; T "
                      + " ".join(f"{n} {v:+.2f}" for n, v in r["t_mV"].items())
                      + f"; limb {r['limb_p2p_mV']:.2f} precordial {r['precordial_p2p_mV']:.2f}"
                      f" mV; missed {r['missed'] or '-'} ({r['wall_s']:.0f} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main()
