"""The frontal QRS axis of the normal beat per heart and ECG source, beside each heart's
anatomy: where does the parametric hearts' leftward axis come from?

For each heart (parametric hearts of config.yaml's seed by index, and/or the LLNL mesh at
``llnl``) at 2 mm: the R-E+ normal beat with the study's fixed parameters (200 ms), once
per ``simulate.ecg_fast_layer_source``; the frontal axis from the net QRS of I and aVF
(:attr:`pipeline.signals.criteria.Morphology.frontal_axis_deg`), the net QRS of I, II and
aVF, and the heart's voxel shares of LV free wall, RV free wall and septum, with the drawn
shape of a parametric heart. Measured figures: docs/fidelity-log.md, "Session 12".

Also, per heart, the QRS integral of I and aVF split by wall sector: under uniform
double-layer theory a lead's QRS area is its lead vector times ``sum sigma grad T dV`` over
the tissue (T the activation time, sigma the myocardial tensor), here summed per sector
(LV anterior, inferior and lateral walls by rotational angle, RV free wall, septum) with the
lead vectors of the heart's own electrodes seen from its tissue centroid.

And the same vector integral by the divergence theorem, ``sum grad T dV = sum T n dA`` over
the tissue's boundary faces (n the outward unit normal), split by surface (base, epicardium,
LV and RV endocardium) and given along the heart's own axes (toward the apex, toward the
RV, anterior = long axis x septal): which surfaces' timing and tilt set the QRS's
apex-ward force (``surface_time_integral``, mm^2 ms / 1e3; myocardial tensor left out).

    python benchmarks/qrs_axis.py --hearts 0 1 2 3 llnl [--json out.json]
    python benchmarks/qrs_axis.py --hearts 0 --set rv_width=17.65 t_apex=9   # a changed shape
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from textbook_criteria import MESH, SEED  # noqa: E402

from pipeline.signals.criteria import morphology  # noqa: E402

SOURCES = ("tissue", "myocardium")


def sector_forces(anatomy, activation_ms: np.ndarray, sigma_l: float, sigma_t: float,
                  frame=None) -> dict[str, dict[str, float]]:
    """QRS integrals of I and aVF per wall sector (module docstring), units 1e3 mS mm^2 ms/mm
    per mm^2 of lead vector (the same for every heart); with the heart's ``frame``, also
    the sector's ``sum sigma grad T dV`` along its axes (``apexward``, ``septal``,
    ``anterior``; S/m ms mm^2), free of the lead vectors."""
    from pipeline.anatomy.fibres import gradient, neighbours
    from pipeline.anatomy.laplace import tissue_graph

    mask = np.asarray(anatomy.mask)
    dx = float(np.asarray(anatomy.spacing)[0])
    grad = gradient(np.asarray(activation_ms, np.float64), neighbours(tissue_graph(mask)), dx)
    fibre = np.asarray(anatomy.fibre)[:, mask].T.astype(np.float64)
    flux = sigma_t * grad + (sigma_l - sigma_t) * np.einsum("ni,ni->n", fibre, grad)[:, None] \
        * fibre
    xyz = np.asarray(anatomy.origin) + np.argwhere(mask) * np.asarray(anatomy.spacing)
    centre = xyz.mean(axis=0)
    el = dict(zip(anatomy.electrode_names, np.asarray(anatomy.electrode_xyz), strict=True))

    def lead(name: str) -> np.ndarray:
        d = el[name] - centre
        return 1e6 * d / np.linalg.norm(d) ** 3

    leads = {"I": lead("LA") - lead("RA"), "aVF": lead("LL") - (lead("RA") + lead("LA")) / 2}
    region = np.asarray(anatomy.region)[mask]
    rot = np.asarray(anatomy.rotational)[mask].astype(np.float64)

    def near(angle: float) -> np.ndarray:
        return (region == 1) & (np.abs(np.angle(np.exp(1j * (rot - angle)))) < np.pi / 4)

    sectors = {"lv_anterior": near(np.pi / 2), "lv_inferior": near(-np.pi / 2),
               "lv_lateral": near(np.pi), "rv_free": region == 2, "septum": region == 3}
    if frame is not None:
        leads.update(apexward=-1e3 * np.asarray(frame.long_axis),
                     septal=1e3 * np.asarray(frame.septal),
                     anterior=1e3 * np.asarray(frame.anterior))
    sectors["all"] = np.ones(region.size, bool)
    return {name: {k: round(float(flux[sel].sum(axis=0) @ v * dx ** 3 / 1e3), 1)
                   for k, v in leads.items()} for name, sel in sectors.items()}


def surface_terms(voxel_heart, frame, activation_ms: np.ndarray) -> dict[str, dict]:
    """``sum T n dA`` per labelled surface along the heart's axes (module docstring)."""
    from pipeline.anatomy.grid import BASE, DIRECTIONS, EPI, LV_ENDO, RV_ENDO

    mask = voxel_heart.mask
    t = np.zeros(mask.shape)
    t[mask] = np.asarray(activation_ms, np.float64)
    t_face = t.ravel()[voxel_heart.face_voxel]
    normal = DIRECTIONS[voxel_heart.face_dir].astype(np.float64)
    area = float(voxel_heart.grid.spacing) ** 2
    axes = {"apexward": -np.asarray(frame.long_axis), "septal": np.asarray(frame.septal),
            "anterior": np.asarray(frame.anterior)}
    out = {}
    for name, label in (("base", BASE), ("epi", EPI), ("lv_endo", LV_ENDO),
                        ("rv_endo", RV_ENDO), ("all", None)):
        sel = np.ones(t_face.size, bool) if label is None else voxel_heart.face_label == label
        vec = (t_face[sel, None] * normal[sel]).sum(axis=0) * area / 1e3
        out[name] = {"area_mm2": round(float(sel.sum() * area)),
                     "mean_T_ms": round(float(t_face[sel].mean()), 1),
                     **{k: round(float(vec @ a), 1) for k, a in axes.items()}}
    return out


def build(heart: str, dx: float, changes: dict[str, float]):
    """The heart at ``dx`` mm (a parametric heart with ``changes`` to its drawn shape):
    (anatomy, voxelised heart, anatomical frame)."""
    from pipeline.anatomy.build import assemble
    from pipeline.anatomy.mesh import read_heart_mesh
    from pipeline.anatomy.parametric import shape_for, voxelise_shape
    from pipeline.anatomy.voxelise import voxelise_surface
    from pipeline.config import resolve

    cfg = resolve({"anatomy": {"resolution_mm": dx}})["anatomy"]
    if heart == "llnl":
        voxel_heart = voxelise_surface(read_heart_mesh(MESH), dx, "llnl")
    else:
        shape = replace(shape_for(SEED, int(heart)), **changes)
        if not shape.valid():
            raise SystemExit(f"--set {changes}: heart {heart}'s RV ellipsoid is not valid")
        voxel_heart = voxelise_shape(shape, dx, f"param{int(heart):03d}")
    anatomy, coords, _ = assemble(voxel_heart, cfg)
    return anatomy, voxel_heart, coords.frame


def anatomy_record(heart: str, anatomy, changes: dict[str, float]) -> dict:
    """Voxel shares per region and, for a parametric heart, its drawn shape (mm, deg)."""
    region = np.asarray(anatomy.region)[np.asarray(anatomy.mask)]
    out = {"n_voxels": int(region.size),
           "share": {name: round(float((region == k).mean()), 3)
                     for k, name in ((1, "lv_free"), (2, "rv_free"), (3, "septum"))}}
    if heart != "llnl":
        from pipeline.anatomy.parametric import shape_for
        shape = replace(shape_for(SEED, int(heart)), **changes)
        out["shape"] = {k: round(float(v), 2) for k, v in asdict(shape).items()}
        out["changed"] = changes
    return out


def run_heart(heart: str, dx: float, duration_ms: float,
              changes: dict[str, float] | None = None, max_apicobasal: float = 0.85) -> dict:
    """The normal beat's axis per ECG source on one heart."""
    from pipeline.settings import RunSettings, SimulateSettings
    from pipeline.simulate.convergence import STUDY_ROW, simulate_fixed, write_fixed_inputs

    changes = changes or {}
    anatomy, voxel_heart, frame = build(heart, dx, changes)
    row = {"heart": heart if heart == "llnl" else f"param{int(heart):03d}",
           **anatomy_record(heart, anatomy, changes), "sources": {}}
    run = RunSettings(device="cpu", dtype="float32", compile=False, batch_size=1, threads=2)
    with tempfile.TemporaryDirectory() as tmp:
        inputs = write_fixed_inputs(Path(tmp), anatomy)
        for source in SOURCES:
            settings = replace(SimulateSettings.defaults(), dt_ms=0.1, duration_ms=duration_ms,
                               ecg_fast_layer_source=source, save_activation_map=True,
                               fast_endo_max_apicobasal=max_apicobasal)
            t0 = time.perf_counter()
            data = simulate_fixed(inputs, "reaction_eikonal", ["normal"], settings, run)
            m = morphology(data.ecg[0], data.dt_ms)
            row["sources"][source] = {
                "axis_deg": round(m.frontal_axis_deg, 1), "qrs_ms": round(m.qrs_ms, 1),
                "net_mV": {n: round(m.leads[n].net, 3) for n in ("I", "II", "aVF")},
                "wall_s": round(time.perf_counter() - t0, 1)}
        row["sector_qrs_integral"] = sector_forces(anatomy, data.activation_map_ms[0],
                                                   STUDY_ROW["sigma_l"], STUDY_ROW["sigma_t"],
                                                   frame)
        row["surface_time_integral"] = surface_terms(voxel_heart, frame,
                                                     data.activation_map_ms[0])
    return row


def _line(r: dict) -> str:
    s = r["share"]
    cells = [f"{r['heart']:9s} LV/RV/sep {s['lv_free']:.2f}/{s['rv_free']:.2f}/{s['septum']:.2f}"]
    for source, v in r["sources"].items():
        n = v["net_mV"]
        cells.append(f"{source}: axis {v['axis_deg']:6.1f} (I {n['I']:+.2f} II {n['II']:+.2f} "
                     f"aVF {n['aVF']:+.2f}, QRS {v['qrs_ms']:.0f})")
    return " | ".join(cells)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hearts", nargs="+", default=["0", "1", "2", "3", "llnl"])
    ap.add_argument("--resolution", type=float, default=2.0)
    ap.add_argument("--duration", type=float, default=200.0)
    ap.add_argument("--max-apicobasal", type=float, default=0.85,
                    help="simulate.fast_endo_max_apicobasal (the fast layers' basal extent)")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="change drawn shape parameters of the parametric hearts (mm, deg)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    changes = {}
    for item in args.set:
        from pipeline.anatomy.parametric import RANGES
        key, _, value = item.partition("=")
        if key not in RANGES:
            ap.error(f"--set {item}: unknown shape parameter; expected one of {sorted(RANGES)}")
        changes[key] = float(value)
    rows = []
    for heart in args.hearts:
        rows.append(run_heart(heart, args.resolution, args.duration, changes,
                              args.max_apicobasal))
        print(_line(rows[-1]), flush=True)
        print("  QRS integral per sector (I, aVF; apexward, septal, anterior):",
              {k: (v["I"], v["aVF"], v["apexward"], v["septal"], v["anterior"])
               for k, v in rows[-1]["sector_qrs_integral"].items()})
        print("  sum T n dA per surface (apexward, septal, anterior):",
              {k: (v["apexward"], v["septal"], v["anterior"]) for k, v in
               rows[-1]["surface_time_integral"].items()})
    if args.json:
        args.json.write_text(json.dumps({"resolution_mm": args.resolution, "seed": SEED,
                                         "max_apicobasal": args.max_apicobasal,
                                         "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
