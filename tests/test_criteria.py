"""Textbook ECG criteria on synthetic beats with known morphology (pipeline.signals.criteria)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.signals.criteria import lbbb_criteria, morphology, normal_criteria, rbbb_criteria
from pipeline.signals.leads import LEAD_NAMES

DT = 1.0
T = np.arange(500) * DT


def _wave(t0: float, width: float, amp: float) -> np.ndarray:
    return amp * np.exp(-0.5 * ((T - t0) / width) ** 2)


def _beat(qrs: dict[str, list[tuple[float, float, float]]], t_amp: dict[str, float],
          spread: float = 1.25) -> np.ndarray:
    """Leads from Gaussian waves (t0 ms, width ms, mV); QRS times scaled by ``spread``."""
    ecg = np.zeros((12, T.size))
    for i, name in enumerate(LEAD_NAMES):
        for t0, w, a in qrs.get(name, []):
            ecg[i] += _wave(20 + (t0 - 20) * spread, w * spread, a)
        ecg[i] += _wave(300, 40, t_amp.get(name, 0.0))
    return ecg


NORMAL_QRS = {
    "I": [(50, 10, 1.0), (75, 6, -0.2)], "II": [(50, 10, 1.2), (75, 6, -0.2)],
    "III": [(50, 10, 0.3)], "aVR": [(50, 10, -1.0)], "aVL": [(50, 10, 0.4)],
    "aVF": [(50, 10, 0.7)],
    "V1": [(35, 6, 0.25), (58, 10, -1.2)], "V2": [(38, 6, 0.5), (60, 10, -1.4)],
    "V3": [(45, 8, 0.9), (65, 8, -0.9)], "V4": [(48, 9, 1.4), (70, 7, -0.5)],
    "V5": [(50, 10, 1.6), (75, 6, -0.3)], "V6": [(50, 10, 1.2), (75, 6, -0.15)],
}
UPRIGHT_T = {"I": 0.3, "II": 0.35, "V2": 0.4, "V3": 0.4, "V4": 0.35, "V5": 0.3, "V6": 0.2,
             "aVR": -0.3}


def test_a_normal_beat_meets_every_normal_criterion_and_no_block():
    m = morphology(_beat(NORMAL_QRS, UPRIGHT_T), DT)
    assert 80 <= m.qrs_ms <= 110, m.qrs_ms
    found = normal_criteria(m)
    assert all(found.values()), found
    assert not all(lbbb_criteria(m).values()) and not all(rbbb_criteria(m).values())


@pytest.mark.parametrize("change, failed", [
    ({"V1": [(35, 6, 1.2), (58, 10, -0.3)]}, "rS_in_V1"),
    ({"I": [(50, 10, -1.0)]}, "positive_qrs_I_II_V5_V6"),
    ({"V5": [(50, 10, 4.5), (75, 6, -0.3)]}, "precordial_amplitude"),
    ({"aVF": [(50, 10, -0.9)]}, "normal_axis"),   # I +0.8, aVF -0.9 mV: -52 deg
])
def test_each_broken_normal_criterion_is_caught(change, failed):
    found = normal_criteria(morphology(_beat({**NORMAL_QRS, **change}, UPRIGHT_T), DT))
    assert not found[failed], found


def test_inverted_t_and_a_wide_qrs_are_caught():
    inverted = normal_criteria(morphology(_beat(NORMAL_QRS, {**UPRIGHT_T, "V6": -0.2}), DT))
    assert not inverted["upright_t_I_II_V5_V6"]
    wide = normal_criteria(morphology(_beat(NORMAL_QRS, UPRIGHT_T, spread=2.0), DT))
    assert not wide["qrs_duration"]


def test_lbbb_and_rbbb_patterns():
    lbbb_qrs = {**NORMAL_QRS, "V1": [(40, 8, 0.1), (80, 25, -1.5)],
                "V6": [(80, 25, 1.6)], "I": [(80, 25, 1.2)]}
    m = morphology(_beat(lbbb_qrs, {}, spread=1.0), DT)
    assert m.qrs_ms >= 120, m.qrs_ms
    assert all(lbbb_criteria(m).values()), lbbb_criteria(m)
    assert not all(rbbb_criteria(m).values())
    rbbb_qrs = {**NORMAL_QRS, "V1": [(35, 6, 0.3), (55, 8, -0.6), (115, 15, 0.9)],
                "V6": [(50, 10, 1.2), (115, 15, -0.5)], "I": [(50, 10, 1.0), (115, 15, -0.4)]}
    m = morphology(_beat(rbbb_qrs, {}), DT)
    assert m.qrs_ms >= 120, m.qrs_ms
    assert all(rbbb_criteria(m).values()), rbbb_criteria(m)
    assert not all(lbbb_criteria(m).values())


def test_the_terminal_wave_is_the_last_wave_not_the_slow_return_after_it():
    """RBBB's terminal S in V6 followed by a slow, small return to the baseline that keeps
    the QRS open: the terminal wave is the S (the mean of the last 40 ms was positive);
    an R' ending the QRS, and a lead that ends at the bottom of its S, are read as such."""
    from pipeline.signals.criteria import terminal_wave

    t = np.arange(150.0)
    v6 = _wave_at(t, 40, 10, 1.2) + _wave_at(t, 85, 12, -0.5) + _wave_at(t, 125, 12, 0.08)
    assert v6[-40:].mean() > 0                       # the old reading: a positive terminal
    assert terminal_wave(v6, 1.0) == pytest.approx(-0.5, abs=0.05)
    v1 = _wave_at(t, 30, 6, 0.3) + _wave_at(t, 55, 8, -0.6) + _wave_at(t, 110, 15, 0.9)
    assert terminal_wave(v1, 1.0) == pytest.approx(0.9, abs=0.05)
    ends_low = np.concatenate([_wave_at(t[:80], 30, 10, 1.0), -np.linspace(0, 0.6, 70)])
    assert terminal_wave(ends_low, 1.0) < -0.5
    assert terminal_wave(np.zeros(50), 1.0) == 0.0


def test_rbbb_s_in_v6_is_read_by_its_duration_as_the_guideline_states():
    """AHA/ACCF/HRS 2009: in I and V6 an S wave longer than the R wave or than 40 ms. A
    small, slow S after a tall R (the RV's late forces seen from across the heart, about
    -0.07 mV for 50 ms after a 1 mV R on the 2 mm shells) is such an S; a short one is
    not, nor a dip of 20 uV (under IEC 60601-2-51's least wave of 30 uV for 6 ms)."""
    from pipeline.signals.criteria import wave_durations

    t = np.arange(160.0)
    r = _wave_at(t, 35, 6, 1.0)                      # R above 30 uV for 2 * 6 * 2.63 ms
    small_wide = r + _wave_at(t, 90, 20, -0.07)       # below -30 uV for about 52 ms
    r_ms, s_ms = wave_durations(small_wide, 1.0)
    assert r_ms == pytest.approx(2 * 6 * np.sqrt(2 * np.log(1.0 / 0.03)), abs=2.0)
    assert s_ms == pytest.approx(2 * 20 * np.sqrt(2 * np.log(0.07 / 0.03)), abs=2.0)
    short = r + _wave_at(t, 70, 4, -0.5)              # deep but 20 ms: shorter than R too
    assert 0 < wave_durations(short, 1.0)[1] < min(r_ms, 40.0)
    assert wave_durations(r + _wave_at(t, 90, 20, -0.02), 1.0)[1] == 0.0
    assert wave_durations(-r, 1.0) == (0.0, pytest.approx(r_ms, abs=1.0))   # a QS: no R

    def rbbb(v6: np.ndarray) -> dict[str, bool]:
        v1 = _wave_at(t, 30, 6, 0.3) + _wave_at(t, 55, 8, -0.6) + _wave_at(t, 110, 15, 0.9)
        lead_i = _wave_at(t, 40, 8, 0.8) + _wave_at(t, 100, 20, -0.4)
        beat = np.zeros((12, t.size + 300))
        for name, trace in (("I", lead_i), ("V1", v1), ("V6", v6)):
            beat[LEAD_NAMES.index(name), 20:20 + t.size] = trace
        return rbbb_criteria(morphology(beat, 1.0))

    assert rbbb(small_wide)["wide_S_I_V6"]
    assert not rbbb(short)["wide_S_I_V6"]
    assert not rbbb(r)["wide_S_I_V6"]


def _wave_at(t: np.ndarray, t0: float, width: float, amp: float) -> np.ndarray:
    return amp * np.exp(-0.5 * ((t - t0) / width) ** 2)


@pytest.mark.parametrize("theta", [-60.0, 0.0, 45.0, 100.0])
def test_the_frontal_axis_is_the_direction_of_the_heart_vector(theta):
    """Limb leads of a heart vector at ``theta`` in the frontal plane (Einthoven's triangle:
    I = cos, II = cos(theta - 60), III = cos(theta - 120), aVF = (II + III)/2): the
    net-amplitude axis returns theta."""
    rad = np.radians(theta)
    proj = {"I": np.cos(rad), "II": np.cos(rad - np.pi / 3), "III": np.cos(rad - 2 * np.pi / 3)}
    proj["aVR"] = -(proj["I"] + proj["II"]) / 2
    proj["aVL"] = (proj["I"] - proj["III"]) / 2
    proj["aVF"] = (proj["II"] + proj["III"]) / 2
    qrs = {**NORMAL_QRS, **{k: [(50, 10, 1.2 * v)] for k, v in proj.items()}}
    assert morphology(_beat(qrs, UPRIGHT_T), DT).frontal_axis_deg == pytest.approx(theta, abs=0.5)


def test_the_dataset_summary_tallies_each_pattern_against_its_criteria():
    """pipeline.campaign.summary.CriteriaTally: a textbook normal beat labelled normal
    meets all of the normal criteria and, labelled LBBB, not the LBBB's; at a fifth of its
    amplitude it meets all but the limb amplitude (``all_met_but``); a textbook RBBB
    meets the RBBB's; a non-finite ECG is unreadable; a pattern without criteria is left
    out."""
    from pipeline.campaign.summary import CriteriaTally

    normal = _beat(NORMAL_QRS, UPRIGHT_T)
    rbbb_qrs = {**NORMAL_QRS, "V1": [(35, 6, 0.3), (55, 8, -0.6), (115, 15, 0.9)],
                "V6": [(50, 10, 1.2), (115, 15, -0.5)], "I": [(50, 10, 1.0), (115, 15, -0.4)]}
    tally = CriteriaTally(DT)
    for pattern, beat in (("normal", normal), ("normal", normal), ("normal", 0.2 * normal),
                          ("lbbb", normal),
                          ("rbbb", _beat(rbbb_qrs, {})), ("rbbb", np.full_like(normal, np.nan)),
                          ("rv_apex", normal)):
        tally.add(pattern, beat)
    out = tally.result()
    assert set(out) == {"normal", "lbbb", "rbbb"}
    # a fifth of the amplitude: the limb leads fail their amplitude and nothing else
    assert out["normal"]["n"] == 3 and out["normal"]["all_met"] == 2
    assert out["normal"]["met"]["rS_in_V1"] == 3 and out["normal"]["met"]["limb_amplitude"] == 2
    assert out["normal"]["all_met_but"]["limb_amplitude"] == 3
    assert out["normal"]["all_met_but"]["rS_in_V1"] == 2
    assert out["lbbb"]["all_met"] == 0 and out["lbbb"]["met"]["qrs_duration"] == 0
    assert out["rbbb"] == {**out["rbbb"], "n": 2, "all_met": 1, "unreadable": 1}
    assert 80 <= out["normal"]["qrs_ms"]["median"] <= 110


SHARED_ECG = Path(__file__).resolve().parents[2] / "shared" / "data" / "ecg"


@pytest.mark.skipif(not SHARED_ECG.exists(), reason="shared ECG recordings not present")
def test_recorded_ecgs_meet_their_own_criteria_and_no_others():
    """Two real 12-lead recordings (median beats and QRS windows of pipeline.clinical): PTB-XL
    record 1 (sinus rhythm, normal; QRS 85 ms) meets every normal criterion and neither
    block's; the Georgia RBBB (CinC 2021 E07509, labelled RBBB; QRS 149 ms) meets every RBBB
    criterion and neither of the others'. Its V6 ends on an S of -0.11 mV for 54 ms after
    an R of +0.62 mV for 41 ms, which the old reading (a terminal wave of at least 20 % of
    the largest deflection) called a positive terminal wave."""
    from pipeline.clinical.preprocess import preprocess
    from pipeline.clinical.read import read_ecg
    from pipeline.signals.criteria import CRITERIA

    def passed(record: str) -> set[str]:
        beats = preprocess(read_ecg(SHARED_ECG / record))
        m = morphology(np.asarray(beats.median), 1000.0 / beats.fs,
                       qrs_window_ms=(beats.qrs_onset_ms, beats.qrs_offset_ms))
        return {name for name, rule in CRITERIA.items() if all(rule(m).values())}

    assert passed("ptbxl_00001/00001_hr") == {"normal"}
    assert passed("cinc2021_E07509_rbbb/E07509") == {"rbbb"}
    with pytest.raises(ValueError, match="qrs_window_ms"):
        morphology(np.zeros((12, 100)), 1.0, qrs_window_ms=(50.0, 200.0))
