"""How far the heart's pose in the body moves its ECG (``campaigns.<name>.heart_pose``).

The same beats (the study's fixed parameters, R-E+ on the 2 mm grid, optionally with the
eikonal at a finer voxel size, 400 ms) in ``--poses`` poses drawn as a campaign draws them
(its own scrambled Sobol sequence over the configured ranges; the first pose is the
identity, DESIGN.md section 5's pose), through the simulate stage itself
(:func:`pipeline.simulate.convergence.simulate_fixed` with pose columns). Per pose and
pattern it reports the textbook criteria missed (:mod:`pipeline.signals.criteria`), the
frontal QRS axis and the median QRS correlation over the 12 leads with the shared clinical
recording of the same pattern (``benchmarks/patient_similarity.py``: PTB-XL record 1 for
the normal beat, Georgia E07509 for RBBB); then, per heart, the spread over the poses.
Measured figures: docs/fidelity-log.md, "Session 19".

    python benchmarks/heart_pose.py --hearts 0 1 2 --poses 24 --medium torso \
        --rotation 20 20 20 --shift 10 10 10 --torso-scale 0.9 1.1 \
        [--eikonal-resolution 0.5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from patient_similarity import PATIENTS, compare, patient_beat, summarise  # noqa: E402
from textbook_criteria import anatomy_for  # noqa: E402

PATTERNS = ("normal", "rbbb")


def draw_poses(n: int, rotation: list[float], shift: list[float], scale: list[float]) -> list:
    """The identity, then ``n - 1`` poses of a campaign's draw (one anatomy's sequence)."""
    from pipeline.campaign.design import design_table
    from pipeline.params import HeartPose

    cfg = {"seed": 1, "anatomy": {"parametric": {"count": 1}},
           "simulate": {"ecg_medium": "torso"},
           "campaigns": {"pose": {"n_simulations": max(n - 1, 1), "patterns": ["normal"],
                                  "heart_pose": {"rotation_deg": rotation, "shift_mm": shift,
                                                 "torso_scale": scale}}}}
    table = design_table(cfg, "pose")
    return [HeartPose()] + [HeartPose.from_row(row) for _, row in table.iterrows()][:n - 1]


def run_heart(heart: str, poses: list, medium: str, eikonal_dx: float | None) -> list[dict]:
    """Every pattern in every pose on one heart: criteria, axis, patient correlation."""
    from pipeline.settings import RunSettings, SimulateSettings
    from pipeline.signals.criteria import CRITERIA, morphology
    from pipeline.signals.features import beat_features
    from pipeline.simulate.convergence import simulate_fixed, write_fixed_inputs

    settings = replace(SimulateSettings.defaults(), dt_ms=0.1, duration_ms=400.0,
                       ecg_medium=medium)
    run = RunSettings(device="cpu", dtype="float32", compile=True, batch_size=8, threads=2)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        fine = None if eikonal_dx is None else write_fixed_inputs(
            Path(tmp) / "eikonal", anatomy_for(heart, eikonal_dx))
        data = simulate_fixed(write_fixed_inputs(Path(tmp), anatomy_for(heart, 2.0)),
                              "reaction_eikonal", list(PATTERNS), settings, run,
                              eikonal_inputs=fine, poses=poses)
    wall = round(time.perf_counter() - t0, 1)
    patients = {k: patient_beat(p) for k, p in PATIENTS.items()}
    step = int(round(1.0 / data.dt_ms))
    rows = []
    for i, pose in enumerate(poses):
        row = {"heart": heart, "medium": medium, "eikonal_dx_mm": eikonal_dx,
               **{k: round(v, 2) for k, v in pose.columns().items()}, "wall_s": wall}
        for k, pattern in enumerate(PATTERNS):
            ecg = data.ecg[i * len(PATTERNS) + k]
            m = morphology(ecg, data.dt_ms)
            sim = ecg[:, ::step]
            f = beat_features(sim, 1.0)
            pat, onset, qrs = patients[pattern]
            corr = summarise(compare(sim, f.qrs_onset_ms, f.qrs_duration_ms, pat, onset, qrs))
            row[pattern] = {"missed": [c for c, ok in CRITERIA[pattern](m).items() if not ok],
                            "axis_deg": round(m.frontal_axis_deg, 1),
                            "qrs_ms": m.qrs_ms,
                            "median_corr": round(corr["median_corr"], 3),
                            "limb_median_corr": round(corr["limb_median_corr"], 3),
                            "precordial_median_corr": round(corr["precordial_median_corr"], 3)}
        rows.append(row)
        print(f"{heart:5s} pose {i:2d} rot {pose.rotation_deg} shift {pose.shift_mm} "
              f"scale {pose.torso_scale:.3f}: " + "; ".join(
                  f"{p} axis {row[p]['axis_deg']:+.0f} r {row[p]['median_corr']:.2f} "
                  f"missed {row[p]['missed'] or '-'}" for p in PATTERNS), flush=True)
    return rows


def spread(rows: list[dict]) -> dict:
    """Per pattern: the identity pose's figures and the spread over all poses."""
    out = {}
    for p in PATTERNS:
        axis = np.array([r[p]["axis_deg"] for r in rows])
        corr = np.array([r[p]["median_corr"] for r in rows])
        out[p] = {"identity_axis_deg": float(axis[0]), "identity_corr": float(corr[0]),
                  "axis_deg_min_max": [float(axis.min()), float(axis.max())],
                  "corr_min_median_max": [float(corr.min()), float(np.median(corr)),
                                          float(corr.max())],
                  "all_criteria_met": int(sum(not r[p]["missed"] for r in rows)),
                  "identity_all_met": not rows[0][p]["missed"], "poses": len(rows)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hearts", nargs="+", default=["0", "1", "2"])
    ap.add_argument("--poses", type=int, default=24, help="poses, the identity first")
    ap.add_argument("--medium", default="torso", choices=["infinite", "torso"])
    ap.add_argument("--rotation", nargs=3, type=float, default=[20.0, 20.0, 20.0],
                    help="heart_pose.rotation_deg")
    ap.add_argument("--shift", nargs=3, type=float, default=[10.0, 10.0, 10.0],
                    help="heart_pose.shift_mm (torso only)")
    ap.add_argument("--torso-scale", nargs=2, type=float, default=[0.9, 1.1],
                    help="heart_pose.torso_scale (torso only)")
    ap.add_argument("--eikonal-resolution", type=float, default=None,
                    help="simulate.eikonal_resolution_mm (default: the 2 mm grid)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.medium == "infinite":
        args.shift, args.torso_scale = [0.0] * 3, [1.0, 1.0]
    if args.poses < 2:
        ap.error("--poses: at least 2 (the identity and one drawn pose)")
    poses = draw_poses(args.poses, args.rotation, args.shift, args.torso_scale)
    result = {"args": {k: (str(v) if isinstance(v, Path) else v)
                       for k, v in vars(args).items()}, "hearts": {}}
    for heart in args.hearts:
        rows = run_heart(heart, poses, args.medium, args.eikonal_resolution)
        result["hearts"][heart] = {"spread": spread(rows), "rows": rows}
        print(json.dumps({heart: result["hearts"][heart]["spread"]}), flush=True)
        if args.json:   # after every heart, so a stopped run keeps the hearts it finished
            args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
