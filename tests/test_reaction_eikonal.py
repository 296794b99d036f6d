"""The reaction-eikonal mode through the simulate stage: the LLNL heart at 2 mm, normal,
LBBB and RBBB beats checked against the textbook criteria (pipeline.signals.criteria).

Measured (docs/monodomain.md, "Resolution study"): the monodomain at 2 mm distorts these
beats (QRS 100+ ms, amplitudes 2-5x clinical); the reaction-eikonal mode on the same grid
gives the figures asserted here. The criteria the model does not meet yet are listed in
``NOT_YET`` and reported by the test's output, not silently dropped.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.signals.criteria import CRITERIA, morphology

MESH = Path(__file__).resolve().parents[2] / "shared" / "data" / "anatomy" / "cardiac_ml_heart" \
    / "heart_mesh.vtk"
needs_mesh = pytest.mark.skipif(not MESH.exists(), reason="shared LLNL mesh not present")

#: Criteria the 2 mm reaction-eikonal beats do not meet yet (open work, docs/monodomain.md);
#: reported by the test's output. The LLNL RBBB's wide S in V6 (-0.61 mV at 40 ms) was
#: the ungated drive's: with the drive let go at -40 mV (the propagated upstroke, not a
#: +80 mV overshoot) V6 ends on its R (+1.9 mV at 30 ms, then a -0.07 mV S); lead I keeps
#: its wide S (-0.36 mV) and V1 its R' (+0.25 mV).
NOT_YET: set[tuple[str, str]] = {("rbbb", "terminal_negative_I_V6")}


def _simulate(root, anatomy, patterns):
    """R-E+ beats of ``patterns`` on one 2 mm anatomy (the study's fixed parameters)."""
    from pipeline.settings import RunSettings, SimulateSettings
    from pipeline.simulate.convergence import simulate_fixed, write_fixed_inputs

    settings = replace(SimulateSettings.defaults(), dt_ms=0.1, duration_ms=400.0,
                       save_activation_map=True)
    run = RunSettings(device="cpu", dtype="float32", compile=True, batch_size=len(patterns),
                      threads=2)
    return simulate_fixed(write_fixed_inputs(root, anatomy), "reaction_eikonal", patterns,
                          settings, run)


@pytest.fixture(scope="module")
def beats(tmp_path_factory):
    from pipeline.anatomy.build import build_mesh
    from pipeline.config import resolve

    cfg = resolve({"anatomy": {"resolution_mm": 2.0}})["anatomy"]
    anatomy, _ = build_mesh(MESH, cfg, name="llnl")
    return _simulate(tmp_path_factory.mktemp("re"), anatomy, ("normal", "lbbb", "rbbb"))


def test_the_demo_parametric_heart_beats_normally():
    """The demo's parametric heart 0 (config.yaml's seed) at 2 mm: a normal beat by every
    criterion, upright T in I, II, V5 and V6 included (inverted in I, V5, V6 with the M
    cells mid-wall, endo/M fractions 0.3/0.3; docs/monodomain.md)."""
    import tempfile

    import yaml

    from pipeline.anatomy.build import build_parametric
    from pipeline.config import resolve

    seed = int(yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml")
                              .read_text())["seed"])
    cfg = resolve({"anatomy": {"resolution_mm": 2.0}})["anatomy"]
    anatomy, _ = build_parametric(0, seed, cfg)
    with tempfile.TemporaryDirectory() as tmp:
        data = _simulate(Path(tmp), anatomy, ("normal",))
    m = morphology(data.ecg[0], data.dt_ms)
    found = CRITERIA["normal"](m)
    print(f"\nparametric normal: QRS {m.qrs_ms:.0f} ms, T "
          f"{ {n: round(m.leads[n].t, 2) for n in ('I', 'II', 'V5', 'V6')} }, {found}")
    assert all(found.values()), found


@needs_mesh
def test_every_voxel_activates_at_its_eikonal_time_and_repolarises(beats):
    amap = beats.activation_map_ms
    assert np.isfinite(amap).all()
    total = np.nanmax(amap, axis=1) - np.nanmin(amap, axis=1)
    assert 60.0 <= total[0] <= 90.0, total                       # normal: 60-90 ms
    assert total[1] > total[0] + 30 and total[2] > total[0] + 20, total  # blocks are slower
    assert np.isfinite(beats.apd90_ms[0]).all()                   # the normal beat repolarises
    assert beats.extra_attrs["solver"]["model"] == "reaction_eikonal"
    assert beats.extra_attrs["solver"]["cv_scale"] == 1.0          # no calibration


@needs_mesh
@pytest.mark.parametrize("index, pattern", [(0, "normal"), (1, "lbbb"), (2, "rbbb")])
def test_textbook_criteria(beats, index, pattern):
    m = morphology(beats.ecg[index], beats.dt_ms)
    found = CRITERIA[pattern](m)
    print(f"\n{pattern}: QRS {m.qrs_ms:.0f} ms, criteria {found}")
    missed = {name for name, ok in found.items() if not ok}
    assert missed <= {name for p, name in NOT_YET if p == pattern}, missed
    still = {name for p, name in NOT_YET if p == pattern} & missed
    if still:
        print(f"{pattern}: not met yet: {sorted(still)}")


def test_the_resolution_study_reports_model_and_grid_error(tmp_path):
    """`study` on the demo's parametric heart at 2 mm only, normal beat, 120 ms: the
    monodomain reference against itself is exact, R-E+ on the reference grid reports its
    model error (a few ms at the 75 points: eikonal against diffusion fronts, docs/
    monodomain.md), every row names its reference."""
    from pipeline.settings import RunSettings
    from pipeline.simulate.convergence import study

    run = RunSettings(device="cpu", dtype="float32", compile=False, batch_size=8, threads=2)
    result = study(["param000"], [2.0], ["monodomain", "reaction_eikonal"], ["normal"], 120.0,
                   tmp_path, 20221, run, finest_too=True)
    rows = {(r["model"], r["reference_model"]): r for r in result["runs"]}
    assert set(rows) == {("monodomain", "monodomain"), ("reaction_eikonal", "monodomain")}
    ref, re = rows["monodomain", "monodomain"], rows["reaction_eikonal", "monodomain"]
    assert ref["activation_mae_ms"] == 0.0 and ref["ecg_corr_min"] == pytest.approx(1.0)
    print(f"\nR-E+ against the monodomain on the same 2 mm grid: activation MAE "
          f"{re['activation_mae_ms']:.2f} ms, max {re['activation_max_ms']:.1f} ms, total "
          f"{re['total_activation_ms']:.1f} against {ref['total_activation_ms']:.1f} ms")
    # measured 4.10 ms; the 2 mm monodomain's total activation overshoots (93.9 against
    # R-E+ 80.4 ms here; 96 against 86 ms at 0.5 mm in the study)
    assert 2.0 < re["activation_mae_ms"] < 6.0
    assert re["total_activation_ms"] < ref["total_activation_ms"] - 5.0
