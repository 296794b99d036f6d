"""Rule-based fibre and sheet directions after Bayer et al. 2012 (LDRB).

Bayer, Blake, Plank, Trayanova, "A novel rule-based algorithm for assigning myocardial
fiber orientation to computational heart models", Ann Biomed Eng 40:2243-2254 (2012).

Per tissue voxel, with the Laplace potentials of :mod:`pipeline.anatomy.coords`
(psi = phi_ab apico-basal, phi_lv, phi_rv, e = phi_epi) and d = phi_rv / (phi_lv + phi_rv):

    axis(u, v)      = [e0 e1 e2],  e1 = u/|u|,  e2 = unit(v - (e1.v) e1),  e0 = e1 x e2
    orient(Q, a, b) = Q R_e2(a) R_e0'(b)                       (helix a, sheet angle b)
    Q_lv = orient(axis(grad psi, -grad phi_lv), a_lv, b_lv)     (e2 out of the LV cavity)
    Q_rv = orient(axis(grad psi, -grad phi_rv), a_rv, b_rv)     (e2 out of the RV cavity)
    Q    = bislerp(Q_lv, Q_rv, d)
    a_lv = a_endo (1 - 2d)(1 - e) + a_epi e,   a_rv = a_endo (2d - 1)(1 - e) + a_epi e

(likewise b). As in Bayer's algorithm the helix angle is a_endo at both endocardia, a_epi
at the epicardium, and turns from a_endo (LV side) to -a_endo (RV side) through the
septum; ``bislerp`` is quaternion slerp after choosing, among the four frames equal up to
180-degree turns about the frame's axes, the one nearest the target. One change: Bayer
interpolates between an endocardial frame and an epicardial frame, which with a 120-degree
helix range takes the shorter way round and passes the fibre through the longitudinal
direction in mid-wall; here each ventricle's frame already carries the angle for its
depth, so the helix angle falls linearly from endo to epi through 0 (circumferential) at
mid-wall, and in the septum Q_lv and Q_rv describe the same fibre (frames flipped about
e1 with opposite angles), so their bislerp is exact.

The fibre is the first column of Q; the **sheet** is the third: perpendicular to the fibre,
across the wall (the transmural direction turned by the sheet angle b about the fibre), as
in LeGrice's laminae that run from endocardium to epicardium. The helix angle is measured
from the circumferential direction e0 (counter-clockwise seen from the base) toward the
apico-basal e1: +60 deg at the endocardium to -60 deg at the epicardium by default.
"""

from __future__ import annotations

import logging

import numpy as np

from pipeline.anatomy.grid import DIRECTIONS, EPI, LV_ENDO, RV_ENDO
from pipeline.anatomy.coords import Coordinates
from pipeline.anatomy.laplace import TissueGraph
from pipeline.anatomy.voxelise import VoxelHeart

log = logging.getLogger(__name__)


def neighbours(graph: TissueGraph) -> np.ndarray:
    """Tissue number of each tissue voxel's six face neighbours (n, 6), -1 if none."""
    pad = np.pad(graph.index, 1, constant_values=-1)
    ijk = np.argwhere(graph.index >= 0) + 1
    ijk = ijk[np.argsort(graph.index[tuple((ijk - 1).T)])]
    out = np.empty((graph.n, 6), dtype=np.int64)
    for code, step in enumerate(DIRECTIONS):
        q = ijk + step
        out[:, code] = pad[q[:, 0], q[:, 1], q[:, 2]]
    return out


def gradient(u: np.ndarray, nbr: np.ndarray, spacing: float,
             face_tissue: np.ndarray | None = None, face_dir: np.ndarray | None = None,
             face_value: np.ndarray | None = None) -> np.ndarray:
    """Gradient (n, 3) of a tissue field u (n,): mean of the one-sided differences.

    Dirichlet faces (tissue number, direction, value; value NaN = none) add a one-sided
    difference over half a voxel, so one-voxel walls get a gradient too.
    """
    total = np.zeros((u.size, 3))
    count = np.zeros((u.size, 3))
    for code, step in enumerate(DIRECTIONS):
        axis, sign = int(np.argmax(np.abs(step))), int(step.sum())
        j = nbr[:, code]
        ok = j >= 0
        total[ok, axis] += sign * (u[j[ok]] - u[ok]) / spacing
        count[ok, axis] += 1
    if face_tissue is not None:
        ok = np.isfinite(face_value)
        t, d, g = face_tissue[ok], face_dir[ok], face_value[ok]
        axis = np.argmax(np.abs(DIRECTIONS[d]), axis=1)
        sign = DIRECTIONS[d].sum(axis=1)
        np.add.at(total, (t, axis), sign * (g - u[t]) / (0.5 * spacing))
        np.add.at(count, (t, axis), 1)
    return total / np.maximum(count, 1)


def _unit(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    bad = norm[:, 0] < 1e-10
    out = v / np.where(norm > 0, norm, 1.0)
    out[bad] = fallback[bad]
    return out


def axis_frame(u: np.ndarray, v: np.ndarray, fallback_v: np.ndarray) -> np.ndarray:
    """Bayer's axis(u, v): rotation matrices (n, 3, 3) with columns e0, e1, e2."""
    e1 = _unit(u, np.tile([0.0, 0.0, 1.0], (len(u), 1)))
    w = v - np.einsum("ij,ij->i", e1, v)[:, None] * e1
    alt = fallback_v - np.einsum("ij,ij->i", e1, fallback_v)[:, None] * e1
    e2 = _unit(w, _unit(alt, np.cross(e1, [1.0, 0.0, 0.0]) + np.cross(e1, [0.0, 1.0, 0.0])))
    e2 = _unit(e2 - np.einsum("ij,ij->i", e1, e2)[:, None] * e1, e2)
    e0 = np.cross(e1, e2)
    return np.stack([e0, e1, e2], axis=2)


def orient(q: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Bayer's orient: turn frames (n, 3, 3) by helix alpha and sheet angle beta (rad, (n,))."""
    ca, sa, cb, sb = np.cos(alpha), np.sin(alpha), np.cos(beta), np.sin(beta)
    zero, one = np.zeros_like(alpha), np.ones_like(alpha)
    ra = np.stack([np.stack([ca, -sa, zero], -1), np.stack([sa, ca, zero], -1),
                   np.stack([zero, zero, one], -1)], axis=1)
    rb = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cb, sb], -1),
                   np.stack([zero, -sb, cb], -1)], axis=1)
    return q @ ra @ rb


def to_quaternion(m: np.ndarray) -> np.ndarray:
    """Unit quaternions (n, 4) (w, x, y, z) of rotation matrices (n, 3, 3)."""
    t = np.trace(m, axis1=1, axis2=2)
    q = np.empty((len(m), 4))
    diag = np.stack([m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], axis=1)
    case = np.where(t > diag.max(axis=1), 3, np.argmax(diag, axis=1))
    s = np.sqrt(np.maximum(1.0 + t, 1e-300)) * 2
    c = case == 3
    q[c] = np.stack([0.25 * s[c], (m[c, 2, 1] - m[c, 1, 2]) / s[c],
                     (m[c, 0, 2] - m[c, 2, 0]) / s[c], (m[c, 1, 0] - m[c, 0, 1]) / s[c]], 1)
    for i, (j, k) in enumerate([(1, 2), (2, 0), (0, 1)]):
        c = case == i
        s = np.sqrt(np.maximum(1.0 + 2 * m[c, i, i] - t[c], 1e-300)) * 2
        qi = np.empty((int(c.sum()), 4))
        qi[:, 0] = (m[c, k, j] - m[c, j, k]) / s
        qi[:, 1 + i] = 0.25 * s
        qi[:, 1 + j] = (m[c, j, i] + m[c, i, j]) / s
        qi[:, 1 + k] = (m[c, k, i] + m[c, i, k]) / s
        q[c] = qi
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (n, 3, 3) of unit quaternions (n, 4)."""
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=1)


def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a.T
    bw, bx, by, bz = b.T
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], 1)


def bislerp(qa: np.ndarray, qb: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Bayer's bislerp of frames (n, 3, 3): from qa (t=0) to qb (t=1), t (n,)."""
    a, b = to_quaternion(qa), to_quaternion(qb)
    turns = np.eye(4)  # 1, i, j, k: 180-degree turns about the frame's own axes
    cands = np.stack([_qmul(a, np.tile(u, (len(a), 1))) for u in turns], axis=1)
    dots = np.einsum("nci,ni->nc", cands, b)
    best = np.argmax(np.abs(dots), axis=1)
    a = cands[np.arange(len(a)), best]
    dot = dots[np.arange(len(a)), best]
    a = np.where(dot[:, None] < 0, -a, a)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    small = theta < 1e-6
    sin = np.where(small, 1.0, np.sin(theta))
    wa = np.where(small, 1 - t, np.sin((1 - t) * theta) / sin)
    wb = np.where(small, t, np.sin(t * theta) / sin)
    q = wa[:, None] * a + wb[:, None] * b
    return to_matrix(q / np.linalg.norm(q, axis=1, keepdims=True))


def ldrb(heart: VoxelHeart, graph: TissueGraph, coords: Coordinates, alpha_endo_deg: float,
         alpha_epi_deg: float, beta_endo_deg: float, beta_epi_deg: float,
         chunk: int = 500_000) -> tuple[np.ndarray, np.ndarray]:
    """Fibre and sheet unit vectors (n, 3) at the tissue voxels (tissue order)."""
    nbr = neighbours(graph)
    h = heart.grid.spacing
    ft = graph.index.ravel()[heart.face_voxel]
    lab = heart.face_label
    walls = np.isin(lab, (EPI, LV_ENDO, RV_ENDO))

    def faces(values: dict[int, float]) -> np.ndarray:
        g = np.full(lab.size, np.nan)
        g[walls] = 0.0
        for k, v in values.items():
            g[lab == k] = v
        return g

    g_lv = gradient(coords.phi_lv, nbr, h, ft, heart.face_dir, faces({LV_ENDO: 1.0}))
    g_rv = gradient(coords.phi_rv, nbr, h, ft, heart.face_dir, faces({RV_ENDO: 1.0}))
    g_epi = gradient(coords.phi_epi, nbr, h, ft, heart.face_dir, faces({EPI: 1.0}))
    g_ab = gradient(coords.phi_ab, nbr, h)
    g_ab = _unit(g_ab, np.tile(coords.frame.long_axis, (graph.n, 1)))
    d = coords.phi_rv / np.maximum(coords.phi_lv + coords.phi_rv, 1e-12)
    e = coords.phi_epi
    a_endo, a_epi = np.radians(alpha_endo_deg), np.radians(alpha_epi_deg)
    b_endo, b_epi = np.radians(beta_endo_deg), np.radians(beta_epi_deg)
    fibre = np.empty((graph.n, 3))
    sheet = np.empty((graph.n, 3))
    for s in range(0, graph.n, chunk):
        sl = slice(s, s + chunk)
        ds, es = d[sl], e[sl]
        q_lv = orient(axis_frame(g_ab[sl], -g_lv[sl], g_epi[sl]),
                      a_endo * (1 - 2 * ds) * (1 - es) + a_epi * es,
                      b_endo * (1 - 2 * ds) * (1 - es) + b_epi * es)
        q_rv = orient(axis_frame(g_ab[sl], -g_rv[sl], g_epi[sl]),
                      a_endo * (2 * ds - 1) * (1 - es) + a_epi * es,
                      b_endo * (2 * ds - 1) * (1 - es) + b_epi * es)
        q = bislerp(q_lv, q_rv, ds)
        fibre[sl] = q[:, :, 0]
        sheet[sl] = q[:, :, 2]
    log.info("LDRB fibres: helix %.0f -> %.0f deg, sheet angle %.0f -> %.0f deg, %d voxels",
             alpha_endo_deg, alpha_epi_deg, beta_endo_deg, beta_epi_deg, graph.n)
    return fibre, sheet
