"""How like the two shared clinical recordings the simulated beats are, per ECG lead, with
the limb electrodes at DESIGN.md's 100 mm and at their torso distances
(``anatomy.limb_electrode_radius_mm``).

The PTB-XL record 1 (sinus rhythm, a normal ECG) is set against the simulated normal beats,
the Georgia record E07509 (RBBB) against the RBBB beats: demo parametric hearts and the LLNL
mesh at 2 mm, R-E+, the study's fixed parameters (``benchmarks/textbook_criteria.py``). The
recordings' median beats come from :func:`pipeline.clinical.preprocess.preprocess`; the
simulated QRS windows from :func:`pipeline.signals.features.beat_features`.

Per lead, it prints the Pearson correlation of the two QRS complexes, each from its own QRS
onset over the longer of the two QRS durations, at the best lag within +-10 ms, and whether
the net QRS (area) has the same sign. A single patient per pattern is one sample of
anatomy and torso, not a population; the figures compare electrode settings on the same
beats, not the model with patients at large. Measured figures: docs/fidelity-log.md,
"Session 16".

    python benchmarks/patient_similarity.py --hearts 0 1 2 3 llnl --limb-radius none torso \
        [--eikonal-resolution 0.5] [--medium torso] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from pipeline.signals.leads import LEAD_NAMES

ROOT = Path(__file__).resolve().parents[1]
ECG = ROOT.parent / "shared" / "data" / "ecg"
PATIENTS = {"normal": ECG / "ptbxl_00001" / "00001_hr",
            "rbbb": ECG / "cinc2021_E07509_rbbb" / "E07509"}
LIMB = ("I", "II", "III", "aVR", "aVL", "aVF")
MAX_LAG_MS = 10


def patient_beat(path: Path) -> tuple[np.ndarray, float, float]:
    """Median beat ``(12, L)`` mV at 1 kHz, QRS onset and duration (ms) of a recording."""
    from pipeline.clinical.preprocess import preprocess
    from pipeline.clinical.read import read_ecg

    beats = preprocess(read_ecg(path))
    return np.asarray(beats.median, np.float64), beats.qrs_onset_ms, beats.qrs_duration_ms


def simulated_beats(heart: str, limb_radius, dx: float = 2.0,
                    eikonal_dx: float | None = None,
                    medium: str = "infinite") -> tuple[np.ndarray, float]:
    """The normal and RBBB beats ``(2, 12, T)`` mV of one heart, and their sampling (ms);
    ``eikonal_dx``: the eikonal's voxel size (``simulate.eikonal_resolution_mm``);
    ``medium``: ``simulate.ecg_medium``."""
    from textbook_criteria import anatomy_for

    from pipeline.settings import RunSettings, SimulateSettings
    from pipeline.simulate.convergence import simulate_fixed, write_fixed_inputs

    settings = replace(SimulateSettings.defaults(), dt_ms=0.1, duration_ms=400.0,
                       ecg_medium=medium)
    run = RunSettings(device="cpu", dtype="float32", compile=True, batch_size=2, threads=2)
    with tempfile.TemporaryDirectory() as tmp:
        anatomy = anatomy_for(heart, dx, 100.0, limb_radius)
        fine = None if eikonal_dx is None else write_fixed_inputs(
            Path(tmp) / "eikonal", anatomy_for(heart, eikonal_dx, 100.0, limb_radius))
        data = simulate_fixed(write_fixed_inputs(Path(tmp), anatomy), "reaction_eikonal",
                              ["normal", "rbbb"], settings, run, eikonal_inputs=fine)
    return np.asarray(data.ecg, np.float64), float(data.dt_ms)


def compare(sim: np.ndarray, sim_onset: float, sim_qrs: float, pat: np.ndarray,
            pat_onset: float, pat_qrs: float) -> dict[str, dict[str, float | bool]]:
    """Per lead: QRS correlation at the best lag within +-MAX_LAG_MS, and net-sign match.

    Both beats at 1 ms sampling; onsets and durations in ms."""
    width = int(round(max(sim_qrs, pat_qrs)))
    p0, s0 = int(round(pat_onset)), int(round(sim_onset))
    out = {}
    for k, name in enumerate(LEAD_NAMES):
        p = pat[k, p0:p0 + width]
        best = -1.0
        for lag in range(-MAX_LAG_MS, MAX_LAG_MS + 1):
            a = s0 + lag
            if a < 0 or a + width > sim.shape[1]:
                continue
            best = max(best, float(np.corrcoef(sim[k, a:a + width], p)[0, 1]))
        same = bool(np.sign(sim[k, s0:s0 + width].sum()) == np.sign(p.sum()))
        out[name] = {"corr": round(best, 3), "same_sign": same}
    return out


def summarise(per_lead: dict[str, dict]) -> dict[str, float]:
    """Median correlation over all, limb and precordial leads; leads of the same sign."""
    corr = {n: v["corr"] for n, v in per_lead.items()}
    return {"median_corr": float(np.median(list(corr.values()))),
            "limb_median_corr": float(np.median([corr[n] for n in LIMB])),
            "precordial_median_corr": float(np.median([corr[n] for n in corr
                                                       if n not in LIMB])),
            "same_sign_leads": int(sum(v["same_sign"] for v in per_lead.values()))}


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from textbook_criteria import _limb

    from pipeline.signals.features import beat_features

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hearts", nargs="+", default=["0", "1", "2", "3", "llnl"])
    ap.add_argument("--limb-radius", nargs="+", type=_limb, default=[None, "torso"],
                    help="anatomy.limb_electrode_radius_mm: mm, 'torso' or 'none'")
    ap.add_argument("--eikonal-resolution", type=float, default=None,
                    help="simulate.eikonal_resolution_mm (default: the 2 mm grid)")
    ap.add_argument("--medium", default="infinite", choices=["infinite", "torso"],
                    help="simulate.ecg_medium")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    missing = [str(p) for p in PATIENTS.values() if not p.with_suffix(".hea").exists()]
    if missing:
        ap.error(f"the shared recordings are missing: {missing}")
    patients = {k: patient_beat(p) for k, p in PATIENTS.items()}
    for k, (_, onset, qrs) in patients.items():
        print(f"patient {k}: QRS onset {onset:.0f} ms, duration {qrs:.0f} ms")
    rows = []
    for limb in args.limb_radius:
        for heart in args.hearts:
            t0 = time.perf_counter()
            ecg, dt = simulated_beats(heart, limb, eikonal_dx=args.eikonal_resolution,
                                      medium=args.medium)
            step = int(round(1.0 / dt))
            for i, pattern in enumerate(("normal", "rbbb")):
                sim = ecg[i][:, ::step] if step > 1 else ecg[i]
                f = beat_features(sim, 1.0)
                pat, onset, qrs = patients[pattern]
                per_lead = compare(sim, f.qrs_onset_ms, f.qrs_duration_ms, pat, onset, qrs)
                row = {"heart": heart, "pattern": pattern, "limb_electrode_radius_mm": limb,
                       "eikonal_dx_mm": args.eikonal_resolution, "ecg_medium": args.medium,
                       "sim_qrs_ms": f.qrs_duration_ms, **summarise(per_lead),
                       "leads": per_lead, "wall_s": round(time.perf_counter() - t0, 1)}
                rows.append(row)
                print(f"{heart:5s} {pattern:6s} limb {limb or 100}: median r "
                      f"{row['median_corr']:.2f} (limb {row['limb_median_corr']:.2f}, "
                      f"precordial {row['precordial_median_corr']:.2f}), same sign "
                      f"{row['same_sign_leads']}/12; "
                      + " ".join(f"{n} {v['corr']:+.2f}" for n, v in per_lead.items()),
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main()
