"""Learning stage, fast units: exact parameter counts, scalings, labels, reading checks."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from learn_synthetic import (APD_SHIFT_MS, REPOL_MS, UPSTROKE_MS, exact_crossing, vm_model,
                             write_tiny_dataset)

from pipeline.errors import InputError
from pipeline.learn.data import (apd90, crossing_activation, paper_activation, read_dataset,
                                 scale_ecg, shift_batch)
from pipeline.learn.models import ModelConfig, build_model, n_parameters, preset


def test_parameter_counts_match_the_paper():
    torch.manual_seed(0)
    net1, net2 = build_model(preset("I")), build_model(preset("II"))
    assert n_parameters(net1) == 486_657
    assert n_parameters(net2) == 392_907
    x = torch.randn(2, 12, 500)
    net1.eval()
    net2.eval()
    with torch.no_grad():
        assert net1(x).shape == (2, 75)
        assert net2(x[:1]).shape == (1, 75, 500)
    # I_scaled is Network I trained differently (labels / 100 ms, cosine), not a new network
    scaled = preset("I_scaled")
    assert n_parameters(build_model(scaled)) == 486_657
    assert (scaled.arch, scaled.stride, scaled.dropout, scaled.shift_max_ms) == \
        ("squeezenet", 2, 0.1, 40)
    assert (scaled.label_scale_ms, scaled.schedule) == (100.0, "cosine")


def test_ensemble_is_the_mean_of_its_members():
    cfg = preset("ensemble", width=4, members=3, n_samples=64)
    model = build_model(cfg).eval()
    x = torch.randn(2, 12, 64)
    with torch.no_grad():
        each = torch.stack([m(x) for m in model.members])
        assert torch.allclose(model(x), each.mean(0), atol=1e-6)
        assert each.std(0).abs().sum() > 0     # members differ: a spread exists


def test_presets_reject_unknown_names_and_round_trip():
    with pytest.raises(ValueError, match="unknown network"):
        preset("III")
    cfg = preset("resnet", width=8)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        ModelConfig.from_dict({**cfg.to_dict(), "colour": 1})


def test_scale_ecg_gives_unit_range_per_sample_and_lead():
    rng = np.random.default_rng(1)
    ecg = rng.normal(size=(3, 12, 50)) * rng.uniform(0.1, 5, (3, 12, 1)) + 2.0
    ecg[0, 3] = 0.7                                           # a flat lead stays finite
    s = scale_ecg(ecg)
    rng_ = s.max(-1) - s.min(-1)
    expect = np.ones((3, 12))
    expect[0, 3] = 0.0
    np.testing.assert_allclose(rng_, expect, atol=1e-6)
    np.testing.assert_allclose(s[1, 2] * (ecg[1, 2].max() - ecg[1, 2].min()), ecg[1, 2],
                               rtol=1e-5)


def test_labels_against_the_closed_form_action_potential():
    t = np.arange(200.0)
    act = np.array([20.0, 33.4, 71.85])
    vm = vm_model(t, act)
    exact = exact_crossing(act)
    # paper label: first 1-ms sample above 0 mV = ceil of the exact crossing
    np.testing.assert_array_equal(paper_activation(vm), np.ceil(exact))
    np.testing.assert_allclose(crossing_activation(vm), exact, atol=0.1)
    # APD90: repolarisation to -85 + 0.1 * 125 mV at act + 40 + 3 ln 9, from the crossing
    apd_exact = APD_SHIFT_MS + REPOL_MS * np.log(9.0) - UPSTROKE_MS * np.log(85.0 / 40.0)
    np.testing.assert_allclose(apd90(vm), apd_exact, atol=0.15)
    flat = np.full((1, 200), -85.0)
    assert np.isnan(paper_activation(flat)).all() and np.isnan(apd90(flat)).all()


def test_shift_batch_delays_ecg_and_labels_alike():
    x = torch.arange(2 * 12 * 20, dtype=torch.float32).reshape(2, 12, 20) + 1
    y = torch.tensor([[5.0] * 75, [7.0] * 75])
    shifts = torch.tensor([0, 3])
    xs, ys = shift_batch(x, y, shifts, "activation", label_scale_ms=1.0)
    assert torch.equal(xs[0], x[0])
    assert torch.equal(xs[1, :, 3:], x[1, :, :-3]) and (xs[1, :, :3] == 0).all()
    assert torch.equal(ys[:, 0], torch.tensor([5.0, 10.0]))
    xs, ys = shift_batch(x, y / 100, shifts, "activation", label_scale_ms=100.0)
    assert torch.allclose(ys[1], torch.full((75,), 0.10))


def test_read_dataset_checks_fields_leads_and_splits(tmp_path):
    path = tmp_path / "d.h5"
    write_tiny_dataset(path, n=20, t_len=64)
    data = read_dataset(path)
    assert data.ecg.shape == (20, 12, 64) and len(data.point_names) == 75
    with h5py.File(path, "a") as f:
        f.attrs["lead_names"] = ["II", "I"] + list(f.attrs["lead_names"][2:])
    with pytest.raises(InputError, match="lead_names"):
        read_dataset(path)
    write_tiny_dataset(path, n=20, t_len=64)
    with h5py.File(path, "a") as f:
        val = f["split/val"][...]
        del f["split/test"]
        f["split/test"] = val
    with pytest.raises(InputError, match="overlaps"):
        read_dataset(path)
    write_tiny_dataset(path, n=20, t_len=64)
    with h5py.File(path, "a") as f:
        del f["vm"]
    with pytest.raises(InputError, match="'vm' is missing"):
        read_dataset(path)
    with pytest.raises(InputError, match="does not exist"):
        read_dataset(tmp_path / "nope.h5")
