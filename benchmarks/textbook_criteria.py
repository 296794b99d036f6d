"""The textbook criteria (pipeline.signals.criteria) of the normal, LBBB and RBBB beats on the
demo's parametric hearts and the LLNL mesh at 2 mm (R-E+, the study's fixed parameters,
400 ms), for each ECG source setting of the fast layers (``simulate.ecg_fast_layer_source``)
and, optionally, several basal extents of the fast layer
(``simulate.fast_endo_max_apicobasal``, ``simulate.fast_endo_septal_max_apicobasal``) and
limb-electrode distances (``anatomy.limb_electrode_radius_mm``).

Prints one row per beat: QRS duration, net QRS (R + S) in I, II, aVF, V1, V5, V6, the
terminal wave in I, V1, V6, the T wave in I, II, V5, V6, limb and precordial peak to peak,
the R and S wave durations in I and V6, and the criteria missed. Measured figures:
docs/fidelity-log.md, "Session 11" to "Session 16".

    python benchmarks/textbook_criteria.py --hearts 0 1 2 3 llnl --patterns normal \
        --sources tissue myocardium --max-apicobasal 0.85 --septal-max-apicobasal 0.85 0.95 \
        [--electrode-radius 100] [--limb-radius none torso 1000] [--eikonal-resolution 0.5]
        [--set t_rv=7] [--medium infinite torso] [--cv-relation continuum] [--json out.json]
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

ROOT = Path(__file__).resolve().parents[1]
SEED = int(yaml.safe_load((ROOT / "config.yaml").read_text())["seed"])
MESH = ROOT.parent / "shared" / "data" / "anatomy" / "cardiac_ml_heart" / "heart_mesh.vtk"
NET = ("I", "II", "aVF", "V1", "V5", "V6")
TERMINAL = ("I", "V1", "V6")
T_LEADS = ("I", "II", "V5", "V6")
LIMB = ("I", "II", "III", "aVR", "aVL", "aVF")


def anatomy_for(heart: str, dx: float, electrode_radius: float = 100.0,
                limb_radius: float | str | None = None, changes: dict | None = None):
    """Parametric heart ``int(heart)`` of config.yaml's seed, or the LLNL mesh (``llnl``),
    with the electrodes ``electrode_radius`` mm from its centre (the limb electrodes at
    ``limb_radius``: ``anatomy.limb_electrode_radius_mm``); ``changes``: shape parameters
    of the parametric heart replaced (``pipeline.anatomy.parametric.HeartShape``)."""
    from pipeline.anatomy.build import assemble, build_mesh, build_parametric
    from pipeline.anatomy.parametric import shape_for, voxelise_shape
    from pipeline.config import resolve

    cfg = resolve({"anatomy": {"resolution_mm": dx, "electrode_radius_mm": electrode_radius,
                               "limb_electrode_radius_mm": limb_radius}})["anatomy"]
    if heart == "llnl":
        return build_mesh(MESH, cfg, name="llnl")[0]
    if not changes:
        return build_parametric(int(heart), SEED, cfg)[0]
    shape = replace(shape_for(SEED, int(heart)), **changes)
    if not shape.valid():
        raise SystemExit(f"--set {changes}: heart {heart}'s shape is not valid")
    return assemble(voxelise_shape(shape, dx, f"param{int(heart):03d}"), cfg)[0]


def run_heart(heart: str, patterns: list[str], source: str, max_apicobasal: float,
              dx: float, septal_max_apicobasal: float = 0.95, electrode_radius: float = 100.0,
              limb_radius: float | str | None = None,
              eikonal_dx: float | None = None, changes: dict | None = None,
              medium: str = "infinite", cv_relation: str = "continuum") -> list[dict]:
    """The beats of ``patterns`` on one heart; each beat's morphology and criteria.
    ``eikonal_dx``: solve the eikonal on the same heart at this voxel size
    (``simulate.eikonal_resolution_mm``; None: on the ``dx`` grid); ``changes``: the
    parametric heart's shape parameters replaced; ``medium``: ``simulate.ecg_medium``;
    ``cv_relation``: ``simulate.cv_relation``."""
    from pipeline.settings import RunSettings, SimulateSettings
    from pipeline.simulate.convergence import simulate_fixed, write_fixed_inputs

    settings = replace(SimulateSettings.defaults(), dt_ms=0.1, duration_ms=400.0,
                       ecg_fast_layer_source=source, fast_endo_max_apicobasal=max_apicobasal,
                       fast_endo_septal_max_apicobasal=septal_max_apicobasal, ecg_medium=medium,
                       cv_relation=cv_relation)
    run = RunSettings(device="cpu", dtype="float32", compile=True, batch_size=len(patterns),
                      threads=2)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        anatomy = anatomy_for(heart, dx, electrode_radius, limb_radius, changes)
        fine = None if eikonal_dx is None else write_fixed_inputs(
            Path(tmp) / "eikonal",
            anatomy_for(heart, eikonal_dx, electrode_radius, limb_radius, changes))
        data = simulate_fixed(write_fixed_inputs(Path(tmp), anatomy),
                              "reaction_eikonal", patterns, settings, run, eikonal_inputs=fine)
    wall = round(time.perf_counter() - t0, 1)
    rows = []
    for k, pattern in enumerate(patterns):
        m = morphology(data.ecg[k], data.dt_ms)
        found = CRITERIA[pattern](m)
        L = m.leads
        rows.append({
            "heart": heart if heart == "llnl" else f"param{int(heart):03d}",
            "pattern": pattern, "source": source, "max_apicobasal": max_apicobasal,
            "septal_max_apicobasal": septal_max_apicobasal,
            "electrode_radius_mm": electrode_radius, "limb_electrode_radius_mm": limb_radius,
            "dx_mm": dx, "eikonal_dx_mm": eikonal_dx, "shape_changes": changes or {},
            "ecg_medium": medium, "cv_relation": cv_relation,
            "qrs_ms": m.qrs_ms, "axis_deg": round(m.frontal_axis_deg, 1),
            "net_mV": {n: round(L[n].net, 3) for n in NET},
            "terminal_mV": {n: round(L[n].terminal, 3) for n in TERMINAL},
            "r_s_ms": {n: [round(L[n].r_ms, 1), round(L[n].s_ms, 1)] for n in ("I", "V6")},
            "t_mV": {n: round(L[n].t, 3) for n in T_LEADS},
            "limb_p2p_mV": round(max(L[n].p2p for n in LIMB), 3),
            "precordial_p2p_mV": round(max(L[f"V{i}"].p2p for i in range(1, 7)), 3),
            "missed": [k for k, ok in found.items() if not ok], "wall_s": wall})
    return rows


def _line(r: dict) -> str:
    def fmt(d: dict) -> str:
        return " ".join(f"{n} {v:+.2f}" for n, v in d.items())
    waves = " ".join(f"{n} {a:.0f}/{b:.0f}" for n, (a, b) in r["r_s_ms"].items())
    return (f"{r['heart']} {r['pattern']:6s} {r['source']:10s} top {r['max_apicobasal']:.2f} "
            f"septum {r['septal_max_apicobasal']:.2f} electrodes {r['electrode_radius_mm']:g}"
            f"/{r['limb_electrode_radius_mm'] or r['electrode_radius_mm']} mm, "
            f"eikonal {r['eikonal_dx_mm'] or r['dx_mm']:g} mm, {r['ecg_medium']}: "
            f"QRS {r['qrs_ms']:.0f} ms, "
            f"axis {r['axis_deg']:+.0f} deg; net {fmt(r['net_mV'])}; "
            f"terminal {fmt(r['terminal_mV'])}; R/S ms {waves}; T {fmt(r['t_mV'])}; "
            f"limb {r['limb_p2p_mV']:.2f} precordial {r['precordial_p2p_mV']:.2f} mV; "
            f"missed {r['missed'] or '-'}")


def _limb(text: str) -> float | str | None:
    """``--limb-radius`` values: a distance in mm, 'torso', or 'none'."""
    return None if text == "none" else text if text == "torso" else float(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hearts", nargs="+", default=["0", "1", "2", "3"],
                    help="parametric heart indices, or llnl")
    ap.add_argument("--patterns", nargs="+", default=["normal"], choices=sorted(CRITERIA))
    ap.add_argument("--sources", nargs="+", default=["tissue", "myocardium"],
                    choices=["tissue", "myocardium"])
    ap.add_argument("--max-apicobasal", type=float, nargs="+", default=[0.85],
                    help="simulate.fast_endo_max_apicobasal (free walls)")
    ap.add_argument("--septal-max-apicobasal", type=float, nargs="+", default=[0.95],
                    help="simulate.fast_endo_septal_max_apicobasal")
    ap.add_argument("--dx", type=float, default=2.0, help="voxel size (mm)")
    ap.add_argument("--eikonal-resolution", type=float, nargs="+", default=[None],
                    help="simulate.eikonal_resolution_mm (mm; default: the --dx grid); "
                         "several values run each")
    ap.add_argument("--electrode-radius", type=float, default=100.0,
                    help="anatomy.electrode_radius_mm (DESIGN.md section 5: 100)")
    ap.add_argument("--limb-radius", nargs="+", default=[None], type=_limb,
                    help="anatomy.limb_electrode_radius_mm: mm, 'torso' or 'none' (the "
                         "electrode radius); several values run each")
    ap.add_argument("--medium", nargs="+", default=["infinite"], choices=["infinite", "torso"],
                    help="simulate.ecg_medium; several values run each")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="parametric hearts: replace drawn shape parameters "
                         "(pipeline.anatomy.parametric.RANGES), e.g. t_rv=7")
    ap.add_argument("--cv-relation", default="continuum", choices=["cable_0.1mm", "continuum"],
                    help="simulate.cv_relation")
    ap.add_argument("--json", type=Path, help="write the rows here")
    args = ap.parse_args()
    from pipeline.anatomy.parametric import RANGES

    changes = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in RANGES or not value:
            ap.error(f"--set {item}: expected KEY=VALUE with KEY one of {sorted(RANGES)}")
        changes[key] = float(value)
    if "llnl" in args.hearts and not MESH.exists():
        ap.error(f"--hearts llnl needs the shared mesh {MESH}")
    rows = []
    for source in args.sources:
        for top in args.max_apicobasal:
            for septal in args.septal_max_apicobasal:
                for limb, eik, medium, heart in ((lr, e, md, h) for lr in args.limb_radius
                                                 for e in args.eikonal_resolution
                                                 for md in args.medium
                                                 for h in args.hearts):
                    for r in run_heart(heart, args.patterns, source, top, args.dx, septal,
                                       args.electrode_radius, limb, eik, changes, medium,
                                       args.cv_relation):
                        rows.append(r)
                        print(_line(r), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main()
