"""The QRS of an activation map, alone: a template upstroke at every voxel's time.

Separates what an activation map's errors cost the ECG from what the grid of the ECG
source costs. Every tissue voxel of a grid takes the same upstroke, from -86 to +20 mV
with a 0.4 ms tanh time constant, at its activation time. The time comes from the
reference's map (the study's cache), sampled at that grid's voxel centres, or from a run's
own map on that grid (``DX=FILE``). The source is the solver's own
(``MonodomainSolver.current_source``: the tissue's conductivities, the fast layers at the
myocardial tensor), and the electrodes are the contract's pseudo-ECG in the infinite
medium. Prints the correlation of each lead over the first ``--window`` ms with the
reference run's ECG. The ECG is the template's QRS, not a beat: repolarisation and the
upstroke's real shape are left out.

    python benchmarks/template_ecg.py --cache results/bench/convergence --heart param001 \\
        --reference-dx 0.25 --grid 2 1 0.5 \\
        2=param001_2mm_reaction_eikonal_eik0.5mm_curv_srcmyo_250ms.npz

Figures: docs/fidelity-log.md, "Session 28: a parametric heart's 0.25 mm reference".
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def template_leads(anatomy_h5: Path, times_ms: np.ndarray | None, pattern: str, window: int,
                   reference: tuple[np.ndarray, np.ndarray, float, np.ndarray]) -> np.ndarray:
    """(12, window) mV: the template QRS on the grid of ``anatomy_h5``, with ``times_ms``
    (n_tissue,) or, if None, the reference's map (mask, origin, spacing, map) sampled."""
    import torch

    from pipeline.anatomy.grid import sample_tissue
    from pipeline.anatomy.io import read_anatomy
    from pipeline.monodomain.batch import build_problem, prepare_anatomy
    from pipeline.monodomain.solver import MonodomainSolver
    from pipeline.params import SimParams
    from pipeline.signals.ecg import PseudoECG
    from pipeline.signals.leads import leads_from_electrodes
    from pipeline.simulate.convergence import STUDY_ROW

    anatomy = read_anatomy(anatomy_h5)
    prep = prepare_anatomy(anatomy)
    spec = SimParams(sim_id=0, pattern=pattern, **STUDY_ROW)
    problem = build_problem(prep, [spec], dt_ms=0.01, duration_ms=0.02)
    solver = MonodomainSolver(problem, parts=prep.parts, device="cpu", dtype=torch.float64,
                              fast_layer_source="myocardium")
    if times_ms is None:
        xyz = anatomy.origin + np.argwhere(anatomy.mask) * anatomy.spacing
        times_ms = sample_tissue(*reference, xyz)
    t = np.arange(window, dtype=np.float64)[:, None]
    ecg = PseudoECG.from_anatomy(anatomy, 0.2)
    electrodes = []
    for t0 in range(0, window, 10):            # 10 ms at a time: (10, n) potentials
        v = -86.0 + 53.0 * (1.0 + np.tanh((t[t0:t0 + 10] - times_ms[None, :]) / 0.4))
        electrodes.append(ecg(solver.current_source(torch.as_tensor(v))))
    return leads_from_electrodes(np.concatenate(electrodes).T)


def main(argv: list[str] | None = None) -> int:
    from pipeline.anatomy.io import read_anatomy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--heart", default="param001")
    ap.add_argument("--reference-dx", type=float, default=0.25)
    ap.add_argument("--duration", type=float, default=250.0, help="the runs' ms (file names)")
    ap.add_argument("--pattern", default="normal")
    ap.add_argument("--window", type=int, default=130, help="ms from the first stimulus")
    ap.add_argument("--grid", nargs="+", default=["2", "1", "0.5"],
                    help="DX (the reference's map sampled there) or DX=FILE (that run's map)")
    args = ap.parse_args(argv)
    h = args.heart
    ref_file = args.cache / f"{h}_{args.reference_dx:g}mm_monodomain_srcmyo_{args.duration:g}ms.npz"
    with np.load(ref_file) as z:
        ref_map = z[f"{args.pattern}/map"].astype(np.float64)
        ref_ecg = z[f"{args.pattern}/ecg"][:, : args.window]
    ref = read_anatomy(args.cache / f"{h}_{args.reference_dx:g}mm" / "anatomy.h5")
    reference = (ref.mask, ref.origin, float(np.max(ref.spacing)), ref_map)
    for item in args.grid:
        dx, _, run = item.partition("=")
        times = None
        if run:
            with np.load(args.cache / run) as z:
                times = z[f"{args.pattern}/map"].astype(np.float64)
        leads = template_leads(args.cache / f"{h}_{float(dx):g}mm" / "anatomy.h5", times,
                               args.pattern, args.window, reference)
        corr = [float(np.corrcoef(a, b)[0, 1]) for a, b in zip(leads, ref_ecg)]
        print(f"{args.pattern}, source on {float(dx):g} mm, map {run or 'the reference'}: "
              f"median {np.median(corr):.3f}, min {min(corr):.2f} | "
              + " ".join(f"{n} {c:.2f}" for n, c in zip(LEADS, corr)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
