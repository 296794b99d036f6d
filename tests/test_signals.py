"""Measurements: leads, pseudo-ECG against closed forms, activation and APD, shard files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from pipeline.errors import InputError
from pipeline.signals.activation import (
    activation_labels,
    activation_times,
    apd90,
    sustained_activation,
)
from pipeline.signals.ecg import PseudoECG, dipole_potential, pseudo_ecg_weights
from pipeline.signals.leads import (ELECTRODE_NAMES, LEAD_NAMES, ElectrodePotentials,
                                    lead_matrix, leads_from_electrodes)
from pipeline.params import COLUMNS, validate_table
from pipeline.simulate.shard import ShardData, read_shard, write_shard


# ---------------------------------------------------------------------------- leads
def test_lead_identities_hold_to_float_precision() -> None:
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(5, 10, 300))
    rec = ElectrodePotentials.from_array(phi)
    leads = rec.leads()
    assert leads.shape == (5, 12, 300)
    lead = {name: leads[:, i] for i, name in enumerate(LEAD_NAMES)}
    tol = dict(rtol=0, atol=1e-12)
    np.testing.assert_allclose(lead["III"], lead["II"] - lead["I"], **tol)      # Einthoven
    np.testing.assert_allclose(lead["aVR"] + lead["aVL"] + lead["aVF"], 0.0, **tol)
    np.testing.assert_allclose(lead["aVR"], -(lead["I"] + lead["II"]) / 2, **tol)
    np.testing.assert_allclose(lead["aVL"], lead["I"] - lead["II"] / 2, **tol)
    np.testing.assert_allclose(lead["aVF"], lead["II"] - lead["I"] / 2, **tol)
    wilson = phi[:, :3].mean(axis=1)
    for k in range(1, 7):
        np.testing.assert_allclose(lead[f"V{k}"], phi[:, 3 + k] - wilson, **tol)
    np.testing.assert_allclose(lead["I"], phi[:, 1] - phi[:, 0], **tol)
    # The right leg (ground) enters no lead; the linear map gives the same leads.
    assert np.all(lead_matrix()[:, ELECTRODE_NAMES.index("RL")] == 0)
    np.testing.assert_allclose(np.einsum("le,bet->blt", lead_matrix(), phi), leads, **tol)
    np.testing.assert_allclose(leads_from_electrodes(phi), leads, **tol)
    np.testing.assert_array_equal(rec.to_array(), phi)
    with pytest.raises(ValueError, match="length 10"):
        ElectrodePotentials.from_array(phi[:, :9])


# ---------------------------------------------------------------------------- pseudo-ECG
def test_dipole_matches_closed_form() -> None:
    """Two opposite point sources one voxel apart: the far field of a current dipole."""
    h, sigma_b, q = 0.5, 0.2, 3.0                    # mm, S/m, uA/mm^3
    mask = np.zeros((9, 9, 9), dtype=bool)
    mask[4, 4, 4] = mask[5, 4, 4] = True             # order: (4,4,4) then (5,4,4)
    origin = np.array([1.0, -2.0, 0.5])
    rng = np.random.default_rng(1)
    directions = rng.normal(size=(10, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    centre = origin + np.array([4.5, 4.0, 4.0]) * h
    electrodes = centre + 60.0 * directions
    pecg = PseudoECG.from_grid(mask, origin, np.full(3, h), electrodes, sigma_b)
    phi = pecg(np.array([-q, q]))                     # sink at (4,4,4), source at (5,4,4)
    moment = q * h ** 3 * np.array([h, 0.0, 0.0])     # uA * mm, from sink to source
    exact = dipole_potential(moment, centre, electrodes, sigma_b)
    scale = np.abs(exact).max()
    assert np.max(np.abs(phi - exact)) < 0.02 * scale
    print(f"dipole: max |pseudo-ECG - closed form| / max |closed form| = "
          f"{np.max(np.abs(phi - exact)) / scale:.2e}")


def _rect_solid_angle(x1: float, x2: float, y1: float, y2: float, d: float) -> float:
    """Solid angle of [x1,x2]x[y1,y2] in a plane at distance d from a point above the origin."""
    def corner(x: float, y: float) -> float:
        return math.atan(x * y / (d * math.sqrt(x * x + y * y + d * d)))
    return corner(x2, y2) - corner(x1, y2) - corner(x2, y1) + corner(x1, y1)


def test_planar_wavefront_in_slab_matches_closed_form() -> None:
    """A tanh wavefront crossing a 30 x 16 x 12 mm slab; electrodes 40-70 mm away.

    Closed form: integrating I_m = sigma Vm''(x) over y, z against 1/r gives the solid angle
    of the slab's cross-section, so phi = sigma / (4 pi sigma_b) int -Vm'(x) Omega(x) dx.
    """
    h, sigma, sigma_b = 0.5, 0.12, 0.2
    lx, ly, lz = 30.0, 16.0, 12.0
    nx, ny, nz = int(lx / h), int(ly / h), int(lz / h)
    mask = np.ones((nx, ny, nz), dtype=bool)
    origin = np.full(3, h / 2)                        # voxel centres in (0, lx) etc.
    x = origin[0] + h * np.arange(nx)
    x_front, width, dv = 12.0, 0.8, 110.0             # mm, mm, mV
    vm_x = -85.0 + 0.5 * dv * (1.0 - np.tanh((x - x_front) / width))
    # Conservative second difference, zero flux at both ends (the flux-form operator).
    flux = sigma * np.diff(vm_x) / h                  # uA/mm^2 at the faces
    im_x = (np.concatenate([flux, [0.0]]) - np.concatenate([[0.0], flux])) / h
    source = np.broadcast_to(im_x[:, None, None], mask.shape).ravel()
    electrodes = np.array([[lx + 40.0, 8.0, 6.0],     # ahead of the front, on the axis
                           [-50.0, 8.0, 6.0],          # behind it
                           [lx + 30.0, 30.0, -20.0],   # ahead, off axis
                           [15.0, 8.0, 70.0]])         # beside the slab
    pecg = PseudoECG.from_grid(mask, origin, np.full(3, h), electrodes, sigma_b)
    phi = pecg(source)

    def dvm(xx: float) -> float:
        return -0.5 * dv / width / math.cosh((xx - x_front) / width) ** 2

    exact = []
    for xe, ye, ze in electrodes:
        def integrand(xx: float) -> float:
            # Plane x = xx, seen from the electrode; normal +x; flux -sigma Vm' along +x.
            d = xe - xx
            omega = _rect_solid_angle(0.0 - ye, ly - ye, 0.0 - ze, lz - ze, abs(d))
            return -dvm(xx) * math.copysign(omega, d)
        val, _ = integrate.quad(integrand, 0.0, lx, points=[x_front], limit=200)
        exact.append(sigma / (4 * math.pi * sigma_b) * val)
    exact = np.array(exact)
    rel = np.abs(phi - exact) / np.abs(exact)
    print("planar wave: pseudo-ECG", np.round(phi, 5), "closed form", np.round(exact, 5),
          "relative error", np.round(rel, 5))
    assert exact[0] > 0 > exact[1]                    # positive ahead of the wave
    assert np.all(rel < 0.02)


def test_weights_reject_electrode_inside_tissue() -> None:
    with pytest.raises(ValueError, match="outside the tissue"):
        pseudo_ecg_weights(np.zeros((2, 3)), np.array([[0.1, 0.0, 0.0]]), 1.0, 0.2)


# ---------------------------------------------------------------------------- activation / APD
def _piecewise_ap(t: np.ndarray) -> np.ndarray:
    """Rest -85 mV; upstroke 10-12 ms to +35; plateau; linear repolarisation 200-300 ms."""
    return np.interp(t, [0, 10, 12, 200, 300, 1000], [-85, -85, 35, 35, -85, -85])


def test_activation_label_and_apd90_on_exact_trace() -> None:
    t = np.arange(500.0)
    traces = np.stack([_piecewise_ap(t), _piecewise_ap(t - 50.3), np.full_like(t, -85.0),
                       np.interp(t, [0, 10, 12, 1000], [-85, -85, 35, 0])])
    act = activation_times(traces, 1.0)
    t0 = 10 + 85 / 120 * 2                             # 0 mV on the upstroke
    np.testing.assert_allclose(act[0], t0, atol=1e-9)
    # The shifted upstroke is linear between 60.3 and 62.3 ms but the 1-ms samples straddle
    # a kink; the interpolated time stays within a fraction of a sample.
    assert abs(act[1] - (t0 + 50.3)) < 0.5
    assert np.isnan(act[2])
    np.testing.assert_array_equal(activation_labels(traces, 1.0)[[0, 1]], [12.0, 62.0])
    assert np.isnan(activation_labels(traces, 1.0)[2])
    apd = apd90(traces, 1.0)
    v90 = 35 - 0.9 * 120
    t_rep = 200 + (35 - v90) / 120 * 100
    np.testing.assert_allclose(apd[0], t_rep - t0, atol=1e-9)
    assert np.isnan(apd[2]) and np.isnan(apd[3])      # never activated / never repolarised
    fine = np.arange(0, 500, 0.01)
    np.testing.assert_allclose(activation_times(_piecewise_ap(fine - 50.3), 0.01), t0 + 50.3,
                               atol=1e-6)


def test_a_brief_bump_above_zero_is_not_the_sustained_activation() -> None:
    """A predicted-Vm artefact: a 3-ms bump to +5 mV at 14-16 ms, then rest, then the
    upstroke at 60.3 ms. The paper's label fires on the bump; the sustained reading on the
    upstroke, exactly where the plain crossing of the bump-free trace is."""
    t = np.arange(500.0)
    clean = _piecewise_ap(t - 50.3)
    bump = clean + np.interp(t, [13, 14, 16, 17], [0, 90, 90, 0])
    late = np.interp(t, [0, 470, 472, 500], [-85, -85, 35, 30])   # held to the end: 28 ms
    never = np.interp(t, [0, 100, 102, 130, 132, 500], [-85, -85, 20, -20, -85, -85])
    traces = np.stack([clean, bump, late, never])
    assert activation_labels(bump, 1.0) == 14.0                    # the paper's label: bump
    held = sustained_activation(traces, 1.0)
    np.testing.assert_array_equal(held[:3], [62.0, 62.0, 472.0])
    assert np.isnan(held[3])       # 30 ms above -40 mV: shorter than the 50-ms hold
    np.testing.assert_allclose(sustained_activation(traces[:3], 1.0, interpolate=True),
                               activation_times(traces[[0, 0, 2]], 1.0), atol=1e-12)


# ---------------------------------------------------------------------------- params
def _table(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"sim_id": np.arange(n), "anatomy": "param000", "pattern": "normal",
                         "sigma_l": 0.15, "sigma_t": 0.04, "sigma_fast_endo": 0.8,
                         "gkr_scale": 1.0, "bcl_ms": 1000.0, "seed": np.arange(n) + 7,
                         "site_jitter_mm": 2.0, "site_delay_max_ms": 5.0})


def test_params_validation_names_row_column_and_range() -> None:
    ok = validate_table(_table(), "t.csv", anatomy_name="param000")
    assert list(ok.columns) == list(COLUMNS) and ok["seed"].dtype == np.int64
    bad = _table()
    bad.loc[1, "gkr_scale"] = 7.0
    with pytest.raises(InputError, match=r"sim_id 1: column gkr_scale = 7.0 .*\[0, 5\]"):
        validate_table(bad, "t.csv")
    bad = _table()
    bad.loc[2, "pattern"] = "wpw"
    with pytest.raises(InputError, match="unknown pattern 'wpw'"):
        validate_table(bad, "t.csv")
    with pytest.raises(InputError, match="missing column.*sigma_t"):
        validate_table(_table().drop(columns="sigma_t"), "t.csv")
    bad = _table()
    bad.loc[0, "sigma_t"] = 0.3
    with pytest.raises(InputError, match="sigma_t .* exceeds sigma_l"):
        validate_table(bad, "t.csv")
    with pytest.raises(InputError, match="anatomy file is 'param001'"):
        validate_table(_table(), "t.csv", anatomy_name="param001")
    bad = _table().astype({"seed": float})
    bad.loc[0, "seed"] = 1.5
    with pytest.raises(InputError, match="column seed"):
        validate_table(bad, "t.csv")


# ---------------------------------------------------------------------------- shard file
def _shard(n: int = 2, t: int = 20) -> ShardData:
    rng = np.random.default_rng(3)
    table = validate_table(_table(n), "t.csv")
    names = [f"P{i}" for i in range(75)]
    return ShardData(ecg=rng.normal(size=(n, 12, t)), electrodes=rng.normal(size=(n, 10, t)),
                     vm=rng.normal(size=(n, 75, t)), activation_ms=rng.normal(size=(n, 75)),
                     activation_label_ms=rng.normal(size=(n, 75)),
                     apd90_ms=np.full((n, 75), np.nan),
                     params={c: table[c].to_numpy() for c in table.columns},
                     point_names=names, dt_ms=1.0, anatomy="param000")


def test_shard_round_trip_and_atomic_write(tmp_path) -> None:
    data = _shard()
    path = write_shard(tmp_path / "s.h5", data, {"dt_ms": 0.04})
    back = read_shard(path)
    np.testing.assert_array_equal(back.ecg, data.ecg.astype(np.float32))
    np.testing.assert_array_equal(back.vm, data.vm.astype(np.float32))
    assert np.isnan(back.apd90_ms).all()
    assert list(back.params["pattern"]) == ["normal", "normal"]
    np.testing.assert_array_equal(back.params["seed"], [7, 8])
    assert back.point_names == data.point_names and back.dt_ms == 1.0
    # A failure while writing leaves neither the file nor a temporary behind.
    broken = _shard()
    broken.extra_attrs["bad"] = object()           # h5py cannot store it: fails mid-write
    with pytest.raises(TypeError):
        write_shard(tmp_path / "broken.h5", broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]
    with pytest.raises(ValueError, match="shape"):
        bad = _shard()
        bad.vm = bad.vm[:, :74]
        write_shard(tmp_path / "bad.h5", bad)


# ---------------------------------------------------------------------------- ECG features
def test_beat_features_on_synthetic_beat() -> None:
    """A QRS of 10-90 ms (smooth bumps) and a T wave peaking at 300 ms."""
    from pipeline.signals.features import beat_features

    t = np.arange(500.0)
    window = np.where((t > 10) & (t < 90), np.sin(np.pi * (t - 10) / 80) ** 2, 0.0)
    qrs = window * np.sin(2 * np.pi * (t - 10) / 80)
    twave = 0.4 * np.exp(-0.5 * ((t - 300) / 35) ** 2)
    gains = np.linspace(-1.5, 2.0, 12)
    ecg = gains[:, None] * qrs + np.linspace(1.0, -0.5, 12)[:, None] * twave
    f = beat_features(ecg, 1.0)
    print(f.as_dict())
    assert 8 <= f.qrs_onset_ms <= 20 and 80 <= f.qrs_end_ms <= 92
    assert f.t_lead == "I" and abs(f.t_peak_ms - 300) <= 1
    np.testing.assert_allclose(f.t_amplitude_mV, 0.4, rtol=0.05)
    assert f.qrs_amplitude_lead == "V6" and f.qrs_end_by == "quiet"


def test_a_qrs_that_runs_into_a_sloping_st_ends_at_the_valley() -> None:
    """A wide QRS (10-150 ms, two non-collinear components like a real heart vector loop)
    whose ST segment slopes straight into a large, broad T wave: S never stays below 1.5 %
    of its peak for 20 ms (the quiet rule finds no end, which used to give the last sample),
    so the end is the start of the quietest 20 ms between QRS and T."""
    from pipeline.signals.features import _quiet_end, beat_features, spatial_velocity

    t = np.arange(450.0)
    phase = np.clip((t - 10) / 140, 0.0, 1.0)
    window = np.sin(np.pi * phase) ** 2
    loop = [window * np.sin(2 * np.pi * phase), window * np.cos(np.pi * phase)]
    twave = [0.4 * np.exp(-0.5 * ((t - 280) / 70) ** 2),
             0.3 * np.exp(-0.5 * ((t - 300) / 60) ** 2)]
    a, b = np.linspace(-1.0, 1.5, 12)[:, None], np.linspace(0.8, -0.6, 12)[:, None]
    ecg = (a * loop[0] + b * loop[1]) + np.flip(a) * twave[0] + b * twave[1]
    s = spatial_velocity(ecg, 1.0, 5.0)
    peak = int(np.argmax(s))
    assert _quiet_end(s > 0.015 * s.max(), peak, 20) is None        # never quiet
    f = beat_features(ecg, 1.0)
    r = np.array([s[i:i + 20].max() for i in range(120, 220)])   # the next 20 ms
    quietest = 120 + int(np.argmin(r))
    print(f.as_dict(), quietest)
    assert abs(f.qrs_end_ms - quietest) <= 2 and 140 <= f.qrs_end_ms <= 180, f.qrs_end_ms


def test_a_qrs_does_not_end_after_the_t_wave() -> None:
    """A wide QRS (10-160 ms) followed by a discordant T wave (peak 260 ms): S dips below
    1.5 % of its peak for 11 ms after the QRS and again for 15 ms at the T wave's apex,
    then stays quiet from 349 ms. The first quiet stretch lies after the T wave (seven
    LBBB beats of the demo read 450-475 ms this way, with activation over by 160 ms), so
    the QRS ends within MAX_QRS_MS of its onset: at the dip, where S is least before the
    T wave."""
    from pipeline.signals.features import MAX_QRS_MS, _quiet_end, beat_features, \
        spatial_velocity

    t = np.arange(500.0)
    phase = np.clip((t - 10) / 150, 0.0, 1.0)
    window = np.sin(np.pi * phase) ** 2
    loop = [window * np.sin(2 * np.pi * phase), window * np.cos(np.pi * phase)]
    a, b = np.linspace(-1.0, 1.5, 12)[:, None], np.linspace(0.8, -0.6, 12)[:, None]
    twave = 0.1 * np.exp(-0.5 * ((t - 260) / 40) ** 2)
    ecg = a * loop[0] + b * loop[1] - a * twave
    s = spatial_velocity(ecg, 1.0, 5.0)
    peak = int(np.argmax(s))
    assert _quiet_end(s > 0.015 * s.max(), peak, 20) > 300           # after the T wave
    f = beat_features(ecg, 1.0)
    dip = peak + int(np.argmin(s[peak:200]))
    print(f.as_dict(), dip)
    assert abs(f.qrs_end_ms - dip) <= 5 and 150 <= f.qrs_end_ms <= 170, f.qrs_end_ms
    assert f.qrs_end_by == "valley"
    assert 250 <= f.t_peak_ms <= 270 and f.t_lead in ("I", "V6")
    # a QRS that has not ended by the limit is read as lasting the limit
    slow = np.clip((t - 10) / 400, 0.0, 1.0)
    wide = np.sin(np.pi * slow) ** 2 * np.sin(6 * np.pi * slow)
    f = beat_features(np.linspace(-1.0, 1.0, 12)[:, None] * wide, 1.0)
    assert f.qrs_duration_ms == pytest.approx(MAX_QRS_MS - 1, abs=1.0), f.qrs_duration_ms
    assert f.qrs_end_by == "limit"
