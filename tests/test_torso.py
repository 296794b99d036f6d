"""The pseudo-ECG in a bounded, insulated torso (pipeline.signals.torso) against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.signals.ecg import pseudo_ecg_weights
from pipeline.signals.torso import (BoundedTorso, adult_torso, ellipsoid_mesh,
                                    pose_from_electrodes, solid_angles)


def test_solid_angles_of_a_closed_surface() -> None:
    """4 pi from any inside point, 2 pi from a point on the surface, 0 from outside; a
    point in a triangle's own plane sees it under 0 sr."""
    mesh = ellipsoid_mesh(100.0, 80.0, 120.0, 32, 16)
    c = mesh.centroids
    total = solid_angles(np.array([[0.0, 0.0, 0.0], [60.0, -30.0, 50.0], [300.0, 0.0, 0.0]]),
                         mesh).sum(axis=1)
    np.testing.assert_allclose(total, [4 * np.pi, 4 * np.pi, 0.0], atol=1e-9)
    on = solid_angles(c[:5], mesh)
    np.testing.assert_allclose(np.diag(on[:, :5]), 0.0)
    np.testing.assert_allclose(on.sum(axis=1), 2 * np.pi, atol=2e-2)
    assert mesh.volume_mm3 == pytest.approx(4 / 3 * np.pi * 100 * 80 * 120, rel=0.03)


def test_a_dipole_at_the_centre_of_an_insulated_sphere_reads_three_times_the_infinite():
    """On the surface of an insulated homogeneous sphere of radius R, a dipole p at the
    centre gives 3 p cos(theta) / (4 pi sigma R^2), three times the infinite medium's
    potential at the same point (e.g. Plonsey & Barr, Bioelectricity, ch. 8); the BEM with
    2,304 triangles is within 1 % of it away from the dipole's equator."""
    radius, sigma, d = 100.0, 0.2, 2.0
    torso = BoundedTorso(ellipsoid_mesh(radius, radius, radius, 48, 24))
    theta = np.concatenate([np.linspace(0.2, 1.2, 4), np.linspace(1.95, 2.95, 4)])
    want = np.stack([radius * np.cos(theta), radius * np.sin(theta), 0 * theta], axis=1)
    sites = torso.centroids[[np.argmin(np.linalg.norm(torso.centroids - w, axis=1))
                             for w in want]]
    sources = np.array([[d / 2, 0.0, 0.0], [-d / 2, 0.0, 0.0]])
    charge = np.array([1.0, -1.0])                       # uA in a 1 mm^3 voxel each
    bounded = torso.weights(sources, sites, 1.0, sigma, chunk=1) @ charge
    infinite = pseudo_ecg_weights(sources, sites, 1.0, sigma) @ charge
    r = np.linalg.norm(sites, axis=1)
    exact = 3 * d * (sites[:, 0] / r) / (4 * np.pi * sigma * r ** 2)
    np.testing.assert_allclose(bounded, exact, rtol=0.01)
    np.testing.assert_allclose(bounded / infinite, 3.0, rtol=0.03)


def test_the_pose_is_recovered_from_the_electrodes_and_a_heart_outside_is_refused():
    """Electrodes placed at any radii along R^T d (pipeline.anatomy.electrodes) give R back;
    electrodes placed otherwise, and tissue outside the torso or touching its surface,
    are refused with what was wrong."""
    from scipy.spatial.transform import Rotation

    from pipeline.anatomy.electrodes import body_directions

    rot = Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix()
    centre = np.array([10.0, -5.0, 40.0])
    radii = np.array([259.0, 222.0, 381.0, 398.0] + [100.0] * 6)
    xyz = centre + radii[:, None] * (body_directions() @ rot)
    np.testing.assert_allclose(pose_from_electrodes(centre, xyz, body_directions()), rot,
                               atol=1e-9)
    bad = xyz.copy()
    bad[4] += [0.0, 30.0, 0.0]
    with pytest.raises(ValueError, match="not the body-frame sites"):
        pose_from_electrodes(centre, bad, body_directions())
    torso = BoundedTorso(ellipsoid_mesh(100.0, 100.0, 100.0, 24, 12))
    site = torso.centroids[:1]
    with pytest.raises(ValueError, match="outside the torso"):
        torso.weights(np.array([[150.0, 0.0, 0.0]]), site, 1.0, 0.2)
    with pytest.raises(ValueError, match="from the torso surface"):
        torso.weights(np.array([[0.0, 0.0, 0.0], 0.99 * site[0]]), site, 1.0, 0.2)


def test_the_adult_torso_holds_the_electrode_sites() -> None:
    """The body-frame torso is closed with outward normals, about 40 L, and holds the
    heart's centre; the precordial sites of pipeline.anatomy.electrodes lie within 20 mm
    of its surface (V6 16 mm inside it), the Mason-Likar limb sites within 35 mm (RA and
    LA, 150 mm from the midline, move 32 mm medially onto the elliptic chest)."""
    from pipeline.anatomy.electrodes import BODY_HEART_CENTRE, BODY_SITES

    mesh = adult_torso()
    assert 35e6 < mesh.volume_mm3 < 50e6
    gap = np.linalg.norm(mesh.centroids[None] - BODY_SITES[:, None], axis=-1).min(axis=1)
    assert gap[4:].max() < 20.0 and gap.max() < 35.0, gap
    inside = solid_angles(BODY_HEART_CENTRE[None], mesh).sum()
    assert inside == pytest.approx(4 * np.pi)


def test_one_triangle_subtends_an_octant() -> None:
    """The triangle (1, 0, 0), (0, 1, 0), (0, 0, 1) cuts one octant of the unit directions
    round the origin: pi / 2 sr seen from the origin (the side opposite its normal), -pi / 2
    with its corners reversed; the same far from the coordinates' origin."""
    from pipeline.signals.torso import TorsoMesh

    corners = np.eye(3) * 40.0
    for shift in (np.zeros(3), np.array([500.0, -300.0, 250.0])):
        for order, want in (([0, 1, 2], np.pi / 2), ([0, 2, 1], -np.pi / 2)):
            mesh = TorsoMesh(corners + shift, np.array([order]))
            got = solid_angles(shift[None], mesh)[0, 0]
            assert got == pytest.approx(want, abs=1e-12)


def test_the_simulate_stage_refuses_a_heart_the_torso_cannot_pose() -> None:
    """simulate.ecg_medium torso on a built heart: its electrodes give the pose, the ten
    recording sites lie on the torso's surface, and a heart whose electrodes were moved
    off the body-frame directions is refused with its name, before any simulation."""
    from dataclasses import replace

    from pipeline.anatomy.build import build_parametric
    from pipeline.config import resolve
    from pipeline.errors import InputError
    from pipeline.settings import SimulateSettings
    from pipeline.simulate.lead_field import pseudo_ecg

    anatomy, _ = build_parametric(0, 7, resolve({"anatomy": {"resolution_mm": 2.0}})["anatomy"])
    settings = replace(SimulateSettings.defaults(), ecg_medium="torso")
    pecg = pseudo_ecg(anatomy, settings)
    assert pecg.medium == "torso" and pecg.weights.shape == (10, int(anatomy.mask.sum()))
    r = np.linalg.norm(pecg.electrode_xyz - anatomy.centres().mean(axis=0), axis=1)
    np.testing.assert_allclose(r, [241.5, 207.7, 376.0, 393.9, 92.7, 74.6, 68.2, 75.7, 104.7,
                                   142.2], atol=0.1)    # the body-frame sites on the torso
    moved = anatomy.electrode_xyz.copy()
    moved[4] += [0.0, 0.0, 40.0]
    with pytest.raises(InputError, match=f"heart {anatomy.name}: simulate.ecg_medium torso"):
        pseudo_ecg(replace(anatomy, electrode_xyz=moved), settings)
    with pytest.raises(InputError, match="ecg_medium 'bath'"):
        pseudo_ecg(anatomy, replace(settings, ecg_medium="bath"))
