"""The heart's pose per simulation (campaigns.<name>.heart_pose; pipeline.params.HeartPose):
the design's draws, the weights in both media against independent constructions, and a
shard whose simulations differ only by their pose."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.config import section
from pipeline.errors import InputError
from pipeline.params import POSE_COLUMNS, HeartPose, validate_table
from pipeline.settings import SimulateSettings

TURN = HeartPose(rotation_deg=(10.0, -25.0, 40.0))


@pytest.fixture(scope="module")
def heart(tmp_path_factory):
    """A 2 mm parametric heart, its cells file (TP06's initial states) and a two-row table."""
    from pipeline.anatomy.build import build_parametric
    from pipeline.anatomy.io import write_anatomy
    from pipeline.cell import tp06
    from pipeline.cell.steady import InitialStates, write_initial_states

    root = tmp_path_factory.mktemp("pose")
    settings, seed = section({"anatomy": {"resolution_mm": 2.0}}, "anatomy")
    anatomy, _ = build_parametric(0, seed, settings)
    write_anatomy(root / "anatomy.h5", anatomy)
    start = tp06.initial_state(["endo", "M", "epi"], dtype=torch.float64).T.numpy()
    write_initial_states(root / "cells.h5", InitialStates(
        states=np.broadcast_to(start[:, None, None, :], (3, 1, 1, tp06.N_STATES)).copy(),
        celltypes=("endo", "M", "epi"), bcl_ms=np.array([1000.0]), gkr_scale=np.array([1.0])))
    table = pd.DataFrame({"sim_id": [0, 1], "anatomy": [anatomy.name] * 2,
                          "pattern": ["normal"] * 2, "sigma_l": [0.15] * 2,
                          "sigma_t": [0.04] * 2, "sigma_fast_endo": [0.8] * 2,
                          "gkr_scale": [1.0] * 2, "bcl_ms": [1000.0] * 2, "seed": [11] * 2,
                          "site_jitter_mm": [0.0] * 2, "site_delay_max_ms": [0.0] * 2})
    return root, anatomy, table


def _body_rotation(anatomy) -> np.ndarray:
    from pipeline.anatomy.electrodes import BODY_HEART_CENTRE, BODY_SITES
    from pipeline.signals.torso import pose_from_electrodes

    d = BODY_SITES - BODY_HEART_CENTRE
    return pose_from_electrodes(anatomy.centres().mean(axis=0), anatomy.electrode_xyz,
                                d / np.linalg.norm(d, axis=1, keepdims=True))


def test_a_turned_heart_in_the_infinite_medium_is_read_in_the_body_frame(heart):
    """In the infinite medium a turned heart is read by electrodes turned the other way:
    the weights equal those computed in the body frame, heart turned, electrodes still; the
    identity pose changes nothing; a shift or a torso scale is refused by name."""
    from pipeline.signals.ecg import pseudo_ecg_weights
    from pipeline.simulate.lead_field import pseudo_ecg

    _, anatomy, _ = heart
    settings = SimulateSettings.defaults()
    plain = pseudo_ecg(anatomy, settings)
    np.testing.assert_array_equal(pseudo_ecg(anatomy, settings, HeartPose()).weights,
                                  plain.weights)
    xyz, centre = anatomy.centres(), anatomy.centres().mean(axis=0)
    body = _body_rotation(anatomy)
    expected = pseudo_ecg_weights((xyz - centre) @ (TURN.rotation() @ body).T,
                                  (anatomy.electrode_xyz - centre) @ body.T,
                                  float(np.prod(anatomy.spacing)), settings.sigma_bath_S_per_m)
    turned = pseudo_ecg(anatomy, settings, TURN)
    np.testing.assert_allclose(turned.weights, expected, rtol=1e-10)
    assert np.abs(turned.weights - plain.weights).max() > 0.1 * np.abs(plain.weights).max()
    np.testing.assert_allclose(np.linalg.norm(turned.electrode_xyz - centre, axis=1),
                               np.linalg.norm(anatomy.electrode_xyz - centre, axis=1))
    with pytest.raises(InputError, match=f"heart {anatomy.name}: a heart shift or torso scale"):
        pseudo_ecg(anatomy, settings, HeartPose(shift_mm=(0.0, 5.0, 0.0)))


def test_the_torso_scale_leaves_the_boundary_element_system_as_it_is():
    """Weights in a torso scaled by s, built and factorised anew, equal w_1(x / s) / s of
    the unscaled one (what torso_pseudo_ecg uses for every scale)."""
    from pipeline.signals.torso import BoundedTorso, ellipsoid_mesh

    s = 1.2
    small = BoundedTorso(ellipsoid_mesh(120.0, 90.0, 150.0, n_around=24, n_rings=12))
    mesh = small.mesh
    large = BoundedTorso(replace(mesh, vertices=s * mesh.vertices))
    rng = np.random.default_rng(0)
    sources = rng.uniform(-40.0, 40.0, (50, 3))
    sites = small.centroids[[3, 50, 120, 200]]
    a = large.weights(sources, s * sites, 8.0, 0.2)
    b = small.weights(sources / s, sites, 8.0, 0.2) / s
    np.testing.assert_allclose(a, b, rtol=1e-9)


def test_a_pose_in_the_torso_moves_the_heart_against_its_electrodes(heart):
    """In the bounded torso: the recording sites follow the pose (each electrode's distance
    from the heart's centre is that of its scaled site from the shifted centre); a heart
    moved 15 mm towards the chest wall reads larger V2 and V3; a torso 20 % larger reads
    smaller limb leads; a heart shifted through the wall is refused with its pose."""
    from pipeline.anatomy.electrodes import BODY_HEART_CENTRE
    from pipeline.signals.torso import body_torso
    from pipeline.simulate.lead_field import pseudo_ecg

    _, anatomy, _ = heart
    settings = replace(SimulateSettings.defaults(), ecg_medium="torso")
    centre = anatomy.centres().mean(axis=0)
    plain = pseudo_ecg(anatomy, settings)
    np.testing.assert_array_equal(pseudo_ecg(anatomy, settings, HeartPose()).weights,
                                  plain.weights)
    pose = HeartPose(rotation_deg=(0.0, 10.0, -15.0), shift_mm=(5.0, -8.0, 12.0),
                     torso_scale=1.1)
    posed = pseudo_ecg(anatomy, settings, pose)
    sites = (plain.electrode_xyz - centre) @ _body_rotation(anatomy).T + BODY_HEART_CENTRE
    assert np.abs(sites[:, None] - body_torso(15.0).centroids[None]).sum(-1).min(1).max() < 1e-6
    np.testing.assert_allclose(
        np.linalg.norm(posed.electrode_xyz - centre, axis=1),
        np.linalg.norm(1.1 * sites - BODY_HEART_CENTRE - np.array(pose.shift_mm), axis=1),
        rtol=1e-9)
    names = list(plain.electrode_names)

    def size(w, electrode):
        return float(np.abs(w[names.index(electrode)] - w[:3].mean(axis=0)).sum())

    forward = pseudo_ecg(anatomy, settings, HeartPose(shift_mm=(0.0, 15.0, 0.0))).weights
    for lead in ("V2", "V3"):
        assert size(forward, lead) > 1.15 * size(plain.weights, lead)
    larger = pseudo_ecg(anatomy, settings, HeartPose(torso_scale=1.2)).weights
    for a, b in (("LA", "RA"), ("LL", "RA"), ("LL", "LA")):
        i, j = names.index(a), names.index(b)
        assert np.abs(larger[i] - larger[j]).sum() < 0.95 * np.abs(
            plain.weights[i] - plain.weights[j]).sum()
    with pytest.raises(InputError, match=rf"heart {anatomy.name} \(pose HeartPose"):
        pseudo_ecg(anatomy, settings, HeartPose(shift_mm=(0.0, 60.0, 0.0)))


def test_the_design_draws_a_pose_per_simulation_and_keeps_the_rest():
    """heart_pose ranges add the seven pose columns, inside their ranges and space-filling,
    leave every other column as the design without a pose, stay prefix-stable; a shift in
    the infinite medium is refused naming the key; a table with some pose columns is
    refused naming the missing ones."""
    from pipeline.campaign.design import design_table, shard_names, shard_settings, shard_table

    base = {"seed": 5, "anatomy": {"parametric": {"count": 2}},
            "simulate": {"ecg_medium": "torso"},
            "campaigns": {"c": {"n_simulations": 64}}}
    plain = design_table(base, "c")
    assert not set(POSE_COLUMNS) & set(plain.columns)
    pose = {"rotation_deg": [20, 10, 30], "shift_mm": [0, 10, 5], "torso_scale": [0.9, 1.1]}
    cfg = {**base, "campaigns": {"c": {"n_simulations": 64, "heart_pose": pose}}}
    posed = design_table(cfg, "c")
    pd.testing.assert_frame_equal(posed[plain.columns], plain)
    for col, half in zip(POSE_COLUMNS[:6], pose["rotation_deg"] + pose["shift_mm"]):
        v = posed[col].to_numpy()
        assert np.all(np.abs(v) <= half) and (half == 0 or np.ptp(v) > 1.6 * half), col
    assert posed["torso_scale"].between(0.9, 1.1).all()
    assert (posed["heart_shift_x_mm"] == 0.0).all() and not np.signbit(
        posed["heart_shift_x_mm"]).any()
    prefix = design_table({**cfg, "campaigns": {"c": {"n_simulations": 20,
                                                      "heart_pose": pose}}}, "c")
    pd.testing.assert_frame_equal(prefix, posed.iloc[:20])
    validate_table(posed[posed["anatomy"] == "param000"], "posed")   # a valid shard table
    # The workflow's --settings of one shard reproduce it alone (the medium comes along);
    # without a pose they hold neither, as before the pose existed.
    shard = shard_names(cfg, "c")[1]
    alone = shard_settings(cfg, "c", shard)
    pd.testing.assert_frame_equal(shard_table(alone, "c", shard), shard_table(cfg, "c", shard))
    assert alone["simulate"] == {"ecg_medium": "torso"}
    plain_settings = shard_settings(base, "c", shard)
    assert "heart_pose" not in plain_settings["campaigns"]["c"] and "simulate" not in \
        plain_settings
    with pytest.raises(InputError, match=r"'campaigns.c.heart_pose': shift_mm \[0, 10, 5\].*"
                                         "simulate.ecg_medium is 'infinite'"):
        design_table({**cfg, "simulate": {}}, "c")
    with pytest.raises(InputError, match="all or none; missing heart_shift_z_mm, torso_scale"):
        validate_table(posed.drop(columns=["heart_shift_z_mm", "torso_scale"]), "partial.csv")


def test_a_shards_lead_field_reads_each_batch_its_own_poses_from_a_temporary_file(heart):
    """Three simulations, two of them in one pose: two weight sets computed, kept in a file
    not in memory, and every batch gets exactly :func:`pseudo_ecg`'s weights of its rows'
    poses; without poses one set serves every batch; closed, the file is gone."""
    from pipeline.simulate.lead_field import ShardLeadField, pseudo_ecg

    _, anatomy, table = heart
    settings = SimulateSettings.defaults()
    three = pd.concat([table, table.iloc[[1]]], ignore_index=True).assign(
        sim_id=[0, 1, 2], **HeartPose().columns())
    three.loc[[0, 2], ["heart_rot_x_deg", "heart_rot_z_deg"]] = [12.0, -20.0]
    want = [pseudo_ecg(anatomy, settings, HeartPose.from_row(r)) for _, r in three.iterrows()]
    with ShardLeadField(anatomy, settings, three) as field:
        assert field.n_sets == 2 and isinstance(field._weights, np.memmap)
        assert field.n_tissue == int(anatomy.mask.sum())
        for start, stop in ((0, 2), (2, 3), (1, 3)):
            got = field.weights(start, stop)
            assert got.shape == (stop - start, 10, field.n_tissue)
            for k in range(start, stop):
                np.testing.assert_array_equal(got[k - start], want[k].weights)
        batch = field.tensor(1, 3, "cpu")
        assert batch.dtype == torch.float64 and batch.shape == (2, 10, field.n_tissue)
        np.testing.assert_array_equal(field.electrode_xyz,
                                      np.stack([w.electrode_xyz for w in want]))
        kept = field._file
    assert kept.closed
    with ShardLeadField(anatomy, settings, table) as plain:
        assert plain.n_sets == 1 and plain.electrode_xyz.shape == (10, 3)
        np.testing.assert_array_equal(plain.weights(0, 2), pseudo_ecg(anatomy, settings).weights)
        assert plain.tensor(0, 1, "cpu") is plain.tensor(1, 2, "cpu")


def test_a_lead_field_the_disk_cannot_hold_is_an_error_naming_the_folder():
    """The weights' file is reserved on disk before the memory map is written: no room is
    an OSError naming the size and TMPDIR, not a bus error in the middle of a shard."""
    import tempfile

    from pipeline.simulate.lead_field import _reserved_file

    with pytest.raises(OSError, match=f"no room for the lead field's .* MB in "
                                      f"{tempfile.gettempdir()}"):
        _reserved_file(2 ** 60)


def test_a_shard_of_two_poses_records_one_heart_through_two_sets_of_electrodes(heart):
    """Two simulations that differ only by their pose, in one batch: the same Vm, the first
    (identity) ECG equal to the shard's without pose columns, the second another, the
    electrode positions per simulation; one simulation per batch records the same; in the
    infinite medium a shift is refused before any simulation, naming the file and row."""
    from pipeline.settings import RunSettings
    from pipeline.simulate.run import prepare_shard, run_shard

    root, anatomy, table = heart
    settings = replace(SimulateSettings.defaults(), model="reaction_eikonal", dt_ms=0.1,
                       duration_ms=20.0, eikonal_resolution_mm=None)
    run = RunSettings(device="cpu", dtype="float32", compile=False, batch_size=2, threads=1)
    one_by_one = replace(run, batch_size=1)
    (root / "plain.csv").write_text(table.to_csv(index=False))
    posed = table.assign(**HeartPose().columns())
    posed.loc[1, ["heart_rot_y_deg", "heart_rot_z_deg"]] = [20.0, -30.0]
    posed.to_csv(root / "posed.csv", index=False)
    cells = root / "cells.h5"
    plain = run_shard(prepare_shard(root / "anatomy.h5", cells, root / "plain.csv", settings),
                      None, run, progress=False)
    data = run_shard(prepare_shard(root / "anatomy.h5", cells, root / "posed.csv", settings),
                     None, run, progress=False)
    np.testing.assert_array_equal(data.vm[1], data.vm[0])
    apart = run_shard(prepare_shard(root / "anatomy.h5", cells, root / "posed.csv", settings),
                      None, one_by_one, progress=False)
    np.testing.assert_allclose(apart.electrodes, data.electrodes, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(data.electrodes[0], plain.electrodes[0], rtol=1e-12, atol=1e-12)
    assert np.abs(data.ecg[1] - data.ecg[0]).max() > 0.1 * np.abs(data.ecg[0]).max()
    assert np.asarray(data.extra_attrs["electrode_xyz_mm"]).shape == (2, 10, 3)
    assert data.params["heart_rot_z_deg"].tolist() == [0.0, -30.0]
    posed.loc[1, "heart_shift_y_mm"] = 5.0
    posed.to_csv(root / "shifted.csv", index=False)
    with pytest.raises(InputError, match=r"shifted.csv: sim_id 1: heart_shift_\*_mm"):
        prepare_shard(root / "anatomy.h5", cells, root / "shifted.csv", settings)
