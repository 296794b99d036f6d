"""Where the coarse R-E+ ECG loses the QRS; a fine-grid depolarisation source does not win it.

The resolution study (docs/fidelity-log.md, "Session 9") leaves R-E+ at 2 mm with an ECG
correlation of 0.59-0.89 (worst lead) against the 0.5 mm monodomain, although its
activation times, from an eikonal on the 0.5 mm grid, are within 1.3-2.5 ms. Split by
window, the loss is in the QRS (0-150 ms), not in the ST-T. On a 2 mm grid a depolarising
front is one voxel wide, so its source density ``div(sigma grad V)`` is sampled too coarsely,
whatever the accuracy of the activation times.

The experiment: an activation-time template field ``V(x, t) = U_c(t - T(x))`` (U_c: the
TP06 action potential of the voxel's cell type under the R-E+ drive, aligned at its 0 mV
crossing, held at its value 20 ms after it so that the field is uniform once every voxel is
past it) gives a QRS-only pseudo-ECG on any grid. The corrected ECG is

    ECG_coarse(t) + [template ECG on the 0.5 mm grid with the fine eikonal times]
                  - [template ECG on the 2 mm grid with the coarse run's activation times],

i.e. the coarse grid's depolarisation source is swapped for the fine one; after the QRS the
two template terms vanish and the coarse run's own ST-T is kept. Printed per heart and
pattern: the worst and median lead correlation with the 0.5 mm monodomain in the QRS window
and over the whole beat, before and after, and the amplitude ratios.

Run: ``python benchmarks/fine_qrs_source.py [--times reference] [--ecg-fast-layer-source
myocardium] [--json F]`` (needs the study's caches in
``results/bench/convergence``: ``pipeline bench convergence`` with the 0.5 mm references and
R-E+ runs with ``--eikonal-resolution 0.5``; about 5 minutes per heart on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from pipeline.anatomy.grid import sample_tissue
from pipeline.anatomy.io import read_anatomy
from pipeline.cell import tp06
from pipeline.monodomain.batch import prepare_anatomy, problem_from_settings
from pipeline.monodomain.curvature import corrected_times
from pipeline.monodomain.eikonal import EikonalSolver
from pipeline.monodomain.solver import MonodomainSolver
from pipeline.params import SimParams
from pipeline.settings import SimulateSettings
from pipeline.signals.ecg import PseudoECG
from pipeline.signals.leads import leads_from_electrodes
from pipeline.simulate.convergence import STUDY_ROW

FOLDER = Path("results/bench/convergence")
HOLD_MS = 20.0          # the template is held after its 0 mV crossing + this
QRS_MS = 150.0


def ap_templates(settings: SimulateSettings, dt: float = 0.01, length_ms: float = 60.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """TP06 APs of endo, M, epi under the R-E+ drive, time 0 at the 0 mV crossing.

    Returns the sample times (ms, from -10) and V (3, T) mV, held after ``HOLD_MS``."""
    state = tp06.initial_state(["endo", "M", "epi"], dtype=torch.float64)
    params = tp06.make_params(["endo", "M", "epi"])
    n = int(length_ms / dt)
    v = np.empty((3, n))
    for k in range(n):
        stim = settings.stim_amplitude_pA_per_pF if k * dt < settings.stim_duration_ms else 0.0
        v[:, k] = state[0].numpy()
        state = tp06.step(state, params, stim, dt)
    t = np.arange(n) * dt
    out_t = np.arange(-10.0, HOLD_MS + 1e-9, dt)
    out = np.empty((3, out_t.size))
    for c in range(3):
        k = int(np.argmax(v[c] >= 0.0))
        cross = t[k - 1] + dt * (0.0 - v[c, k - 1]) / (v[c, k] - v[c, k - 1])
        out[c] = np.interp(out_t + cross, t, v[c])
    return out_t, out


def template_ecg(solver: MonodomainSolver, sim: int, pecg: PseudoECG, times: np.ndarray,
                 celltype: np.ndarray, tmpl: tuple[np.ndarray, np.ndarray],
                 n_samples: int) -> np.ndarray:
    """12-lead ECG (12, T) of the field U_c(t - T(x)) at t = 0, 1, ... ms, with the source
    operator (tissue conductivities, fast layers) of simulation ``sim``."""
    tt, uu = tmpl
    weights = torch.as_tensor(pecg.weights)
    out = np.zeros((len(pecg.electrode_names), n_samples))
    codes = np.asarray(celltype, dtype=np.int64) - 1
    for k in range(n_samples):
        s = k - times
        v = np.empty_like(times)
        for c in range(3):
            sel = codes == c
            v[sel] = np.interp(s[sel], tt, uu[c], left=uu[c, 0], right=uu[c, -1])
        vb = torch.as_tensor(v, dtype=torch.float32)[None].expand(solver.problem.batch, -1)
        im = solver.current_source(vb)[sim].double()
        out[:, k] = (im @ weights.T).numpy()
    return leads_from_electrodes(out, axis=0)


def _corr(a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> list[float]:
    return [float(np.corrcoef(a[i, lo:hi], b[i, lo:hi])[0, 1]) for i in range(a.shape[0])]


def _amp(a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> list[float]:
    return [float(np.ptp(b[i, lo:hi]) / np.ptp(a[i, lo:hi])) for i in range(a.shape[0])]


def one_heart(heart: str, patterns: list[str], times: str = "eikonal",
              fast_layer_source: str = "tissue") -> list[dict]:
    """The rows of one heart; ``times`` ``reference``: the template's fine times are the
    0.5 mm monodomain's own activation map (a check of the template model itself)."""
    settings = replace(SimulateSettings.defaults(), model="reaction_eikonal", dt_ms=0.1,
                       duration_ms=450.0, eikonal_curvature=True,
                       ecg_fast_layer_source=fast_layer_source, eikonal_resolution_mm=None)
    src = "_srcmyo" if fast_layer_source == "myocardium" else ""
    tmpl = ap_templates(settings)
    anat = {dx: read_anatomy(FOLDER / f"{heart}_{dx:g}mm" / "anatomy.h5") for dx in (2.0, 0.5)}
    prep = {dx: prepare_anatomy(a, fast_depth_mm=settings.fast_endo_depth_mm,
                                fast_max_apicobasal=settings.fast_endo_max_apicobasal)
            for dx, a in anat.items()}
    rows = [SimParams(sim_id=i, pattern=p, **{k: v for k, v in STUDY_ROW.items()})
            for i, p in enumerate(patterns)]
    problems = {dx: problem_from_settings(prep[dx], rows, settings) for dx in prep}
    t0 = time.perf_counter()
    g = prep[0.5].grid
    ref = np.load(FOLDER / f"{heart}_0.5mm_monodomain{src}_450ms.npz")
    coarse = np.load(FOLDER / f"{heart}_2mm_reaction_eikonal_eik0.5mm_curv{src}_450ms.npz")
    if times == "reference":
        fine_times = np.stack([ref[f"{p}/map"].astype(np.float64) for p in patterns])
    else:
        eik = EikonalSolver(g.mask, g.spacing, prep[0.5].fibre)
        fine_times = corrected_times(eik, problems[0.5],   # as the cached runs above
                                     cv_relation="cable_0.1mm")[0].double().numpy()
    eik_s = time.perf_counter() - t0
    # the source operator only (no time stepping: implicit skips the explicit dt check)
    solvers = {dx: MonodomainSolver(problems[dx], diffusion="implicit",
                                    fast_layer_source=fast_layer_source) for dx in prep}
    pecg = {dx: PseudoECG.from_anatomy(anat[dx], settings.sigma_bath_S_per_m) for dx in anat}
    n_samples = int(QRS_MS + HOLD_MS + 10)
    rows_out = []
    for i, p in enumerate(patterns):
        t1 = time.perf_counter()
        amap = coarse[f"{p}/map"].astype(np.float64)
        # the coarse run's drive: the fine times at the coarse centres; its measured map
        # lags them by the upstroke's latency, which the fine template field takes too
        drive = sample_tissue(g.mask, g.origin, float(np.max(g.spacing)), fine_times[i],
                              prep[2.0].coords.xyz)
        lag = float(np.nanmedian(amap - drive)) if times == "eikonal" else 0.0
        fine_t = fine_times[i] + lag
        e_fine = template_ecg(solvers[0.5], i, pecg[0.5], fine_t, problems[0.5].celltype, tmpl,
                              n_samples)
        e_coarse = template_ecg(solvers[2.0], i, pecg[2.0], amap, problems[2.0].celltype, tmpl,
                                n_samples)
        base = coarse[f"{p}/ecg"].astype(np.float64)
        fixed = base.copy()
        fixed[:, :n_samples] += e_fine - e_coarse
        r = ref[f"{p}/ecg"].astype(np.float64)
        row = {"heart": heart, "pattern": p, "times": times,
               "ecg_fast_layer_source": fast_layer_source, "lag_ms": round(lag, 2),
               "eikonal_s": round(eik_s, 1), "template_s": round(time.perf_counter() - t1, 1)}
        for name, e in (("coarse", base), ("corrected", fixed), ("fine_template_only", None)):
            if e is None:
                e = np.zeros_like(base)
                e[:, :n_samples] = e_fine
            for win, (lo, hi) in (("qrs", (0, int(QRS_MS))), ("all", (0, r.shape[1]))):
                c = _corr(r, e, lo, hi)
                row[f"{name}_{win}_corr_min"] = round(min(c), 3)
                row[f"{name}_{win}_corr_median"] = round(float(np.median(c)), 3)
            row[f"{name}_qrs_amp_ratio"] = [round(x, 2) for x in _amp(r, e, 0, int(QRS_MS))]
            row[f"{name}_all_corr"] = [round(x, 3) for x in _corr(r, e, 0, r.shape[1])]
        print(json.dumps(row), flush=True)
        rows_out.append(row)
    return rows_out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hearts", nargs="+", default=["heart_mesh", "param000"])
    ap.add_argument("--patterns", nargs="+", default=["normal", "lbbb"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--times", default="eikonal", choices=["eikonal", "reference"],
                    help="the fine template's activation times: the 0.5 mm eikonal's (with "
                         "the curvature correction) or the reference's own map (a check)")
    ap.add_argument("--ecg-fast-layer-source", default="tissue",
                    choices=["tissue", "myocardium"],
                    help="source operator and cached runs (simulate.ecg_fast_layer_source)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = [r for h in args.hearts for r in one_heart(h, args.patterns, args.times,
                                                      args.ecg_fast_layer_source)]
    if args.json:
        Path(args.json).write_text(json.dumps({"fine_qrs_source": rows}, indent=2))


if __name__ == "__main__":
    main()
