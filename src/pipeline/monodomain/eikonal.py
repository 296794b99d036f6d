"""Activation times from the anisotropic eikonal equation on the tissue voxels (batched).

For the reaction-eikonal mode the activation time t(x) (ms) of every tissue voxel solves

    sqrt(grad t^T V grad t) = 1,     V = c_t^2 I + (c_l^2 - c_t^2) f f^T,

with c_l, c_t the conduction velocities along and across the fibres (mm/ms) and f the unit
fibre of the voxel, and t = t_s at the point sources. Equivalently t(x) is the shortest
travel time from a source, a path of direction d taking ``||d||_M = sqrt(d^T M d)`` with
M = V^-1 = I / c_t^2 + (1 / c_l^2 - 1 / c_t^2) f f^T; in a homogeneous medium
t(x) = t_s + ||x - s||_M (the anisotropic cone). Waves travel through tissue voxels only.

Method (:class:`EikonalSolver`): a batched Jacobi fast iterative method (Jeong & Whitaker
2008, SIAM J Sci Comput 30:2512) with the Hopf-Lax local solver over the simplices of
the 26-neighbour cube (Bornemann & Rasch 2006, Comput Visual Sci 9:57; Fu, Kirby &
Whitaker 2013, SIAM J Sci Comput 35:C473). The cube around voxel x is triangulated into
48 triangles (face neighbour F, edge neighbour E, corner neighbour C: the Kuhn simplices),
and for each simplex with vertices y_1..y_k (k = 1, 2, 3)

    t(x) <- min_lambda  sum_j lambda_j t(y_j) + || x - sum_j lambda_j y_j ||_M(x),

over barycentric lambda. The minimiser of this convex problem has a closed form (a 2x2
solve for a triangle); the constrained minimum is the interior stationary point of a
triangle, of one of its edges, or a vertex. Each update evaluates all 26 vertices and the
6 triangles and 12 edges of the upwind octant only (the octant of -V grad t, grad t from
central differences of the face neighbours): that octant holds the characteristic of a
planar wave, so the scheme stays exact for planar waves in a homogeneous medium at a
sixth of the cost of all 48 triangles, and converges for any anisotropy because it is
iterated to a fixed point, not solved in one pass. M is taken at x (the velocities of
the voxel being updated) or, with per-voxel velocities and ``mean_slowness`` (the
default), from the mean of the slownesses of x and of its upwind neighbour: each voxel is
then a cube of its own speed, and an interface (a fast layer over the myocardium) lies on
the voxels' faces, not half a voxel into the slow side.

Near a point source the front is strongly curved and linear interpolation of t leaves
errors that the characteristics carry outwards (measured 4-14 % ten voxels from the
source for c_l / c_t = 0.6 / 0.25 and 0.7 / 0.2 mm/ms). Every voxel therefore also carries
a source label, and a source-factored update (:meth:`EikonalSolver._factored`)
interpolates t - t0 instead of t, with t0 the lower envelope of the cones of the nearby
labels; it makes point sources exact in a homogeneous medium and is a consistent
Hopf-Lax value elsewhere. Around compact groups of sources with one start time (a
stimulus ball) the exact minimum of their cones is seeded first
(:meth:`EikonalSolver._seed_compact_groups`), so that the factored update carries the
ball's front as well.

A neighbour y of x is used only if a monotone path of face-adjacent tissue voxels leads
from x to y inside their bounding box (the monodomain couples voxels through faces only),
so a wave never crosses a non-tissue voxel, not even diagonally through the edge or
corner where two tissue voxels touch.

Each sweep updates, for all B simulations at once, every active (simulation, voxel) pair
from the values of the previous sweep (Jacobi); a pair whose value dropped by more than
``tol_ms`` activates its later (or unreached) neighbours; the iteration ends when nothing
changes. No Python loop runs over voxels: the work is vectorised over (active pairs,
simplices) in chunks, the same code on CPU and CUDA.

The sweeps advance in a time band (a bucketed ordering, as in Dial's shortest-path
buckets). An activated pair carries a lower bound of its new value, the activating
neighbour's time plus the fastest hop of its simulation (the smallest voxel edge over the
largest CV); a pair whose bound lies beyond its simulation's band end waits, and the band
end moves to the earliest waiting bound plus ``band_ms`` once no pair inside the band is
left to update. A plain Jacobi FIM spreads one voxel per sweep whatever the times, so in
a heart the slow myocardial front fills the tissue first and is overwritten, voxel by
voxel, as the fast layer's earlier front arrives: on the LLNL heart at 0.5 mm (871,643
voxels, normal and LBBB, compiled, 2 threads; benchmarks/fine_eikonal_cost.py) 14.7
updates per voxel and 48 s, against 3.1 updates per voxel and 14 s with the default 2 ms
band. The two fixed points differ by at most 0.25 / 0.5 / 1.6 ms at 0.5 / 1 / 2 mm (mean
0.01 / 0.03 / 0.06 ms): which neighbour's source label a voxel takes may change with the
order. With jittered sites and delays (parametric heart 0 at 0.75 mm, 8 simulations,
bands 1.5 / 3 / 4.5 ms) up to 2.1 ms at single voxels, more than 0.5 ms at 0.7-1.9 % of the
voxels of the patterns with fast layers (none of the single-site ones), and up to 0.83 ms
(mean 0.035 ms) at the 75 recording points; against the 0.25 mm monodomain (parametric
heart 1) no band is closer: the map's MAE moves by at most 0.03 ms (docs/fidelity-log.md,
"Session 31").

Measured accuracy (tests/test_eikonal.py, float32): point source in a homogeneous box,
fibres along an axis and oblique, c_l / c_t = 0.6 / 0.25: < 1e-5 relative everywhere;
planar wave from a face, fibres at 0, 45, 90 degrees and out of plane: at most 0.15 %
where the characteristic starts 1 mm inside the face (0 for fibres along an axis; up to
4 % only where it starts at the face's very edge); three sources with different start
times: median 1e-5, at most 2.7 % (an undershoot where two fronts meet); a ball of
sources (radius 2.5 voxels) against the minimum of its voxels' cones, from 8 voxels on:
1.2 % (c_l / c_t = 0.6 / 0.3), 5.8 % (0.7 / 0.2); from 12 voxels on 0.7 % and 5.1 %.
Next to the ball the plain update interpolates between the ball's voxels (a polyhedral
surface), up to 36 % below the voxels' cones one voxel outside the ball, but never below
the continuous ball's cone.

Speed of the plain FIM, before the band (CPU, float32, eager, 2 cores; 60 x 60 x 40
box = 144,000 voxels, rotating fibres, 3 sources per simulation, 1 mm): B = 1 58 sweeps,
7.7 updates per voxel, 2.5 s; B = 2 71 sweeps, 6.3 updates per voxel, 4.4 s (about 2 us
per update when the machine is otherwise idle; the same runs took 110 s and 76 s at a
load average of 5-6). ``compile=True`` makes an update about 4x cheaper; CUDA not
measured.

Conduction velocities from conductivities: :mod:`pipeline.monodomain.cv_relation`
(:func:`~pipeline.monodomain.cv_relation.cv_from_sigma`, ``simulate.cv_relation``).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from pipeline.errors import InputError, SimulationError
from pipeline.monodomain.cv_relation import DEFAULT_CV_RELATION, cv_from_sigma
from pipeline.monodomain.diffusion import check_fibres, tissue_index

if TYPE_CHECKING:
    from pipeline.monodomain.problem import MonodomainProblem

log = logging.getLogger(__name__)

#: Default width of the time band of :meth:`EikonalSolver.solve`, in ms per mm of voxel
#: edge (2 ms at 0.5 mm, 8 ms at 2 mm): about four voxels of a 1 mm/ms front.
BAND_MS_PER_MM = 4.0

# ---------------------------------------------------------------------- stencil geometry

#: (26, 3) int: the neighbour offsets of the 3x3x3 cube, in a fixed order.
OFFSETS26: np.ndarray = np.array(
    [o for o in itertools.product((-1, 0, 1), repeat=3) if o != (0, 0, 0)], dtype=np.int64)


def _offset_slot(o: Sequence[int]) -> int:
    return int(np.flatnonzero(np.all(OFFSETS26 == np.asarray(o), axis=1))[0])


def _octant_vertices() -> np.ndarray:
    """(8, 7) slots of the cube neighbours in each octant, in the canonical order
    F_x, F_y, F_z, E_xy, E_xz, E_yz, C (face, edge and corner neighbours).

    Octant ``o`` has signs s_d = +1 if bit (2 - d) of o is set, else -1.
    """
    table = np.zeros((8, 7), dtype=np.int64)
    for o in range(8):
        sg = np.array([1 if o & (4 >> d) else -1 for d in range(3)])
        verts = [np.eye(3, dtype=np.int64)[d] * sg for d in range(3)]
        verts += [(np.eye(3, dtype=np.int64)[d] + np.eye(3, dtype=np.int64)[e]) * sg
                  for d, e in ((0, 1), (0, 2), (1, 2))]
        verts.append(sg.copy())
        table[o] = [_offset_slot(v) for v in verts]
    return table


#: (8, 7): neighbour slots of the 7 cube neighbours of each octant (F_x F_y F_z E_xy E_xz
#: E_yz C).
OCTANT_VERTICES: np.ndarray = _octant_vertices()
_E = {(0, 1): 3, (1, 0): 3, (0, 2): 4, (2, 0): 4, (1, 2): 5, (2, 1): 5}
#: (6, 3): the Kuhn triangles of an octant (F_a, E_ab, C for each axis order a, b, c), as
#: columns of :data:`OCTANT_VERTICES`; the 8 octants give the 48 triangles of the cube.
OCTANT_TRIANGLES: np.ndarray = np.array(
    [(a, _E[a, b], 6) for a, b, _ in itertools.permutations(range(3))], dtype=np.int64)
#: (12, 2): the edges of those triangles (F-E, F-C, E-C), as columns of OCTANT_VERTICES.
OCTANT_EDGES: np.ndarray = np.array(
    [(a, _E[a, b]) for a in range(3) for b in range(3) if a != b]
    + [(a, 6) for a in range(3)] + [(e, 6) for e in (3, 4, 5)], dtype=np.int64)


def neighbour_table_26(mask: np.ndarray) -> np.ndarray:
    """int64 (n, 26): tissue index of each usable cube neighbour, ``n`` where unusable.

    Neighbour ``x + o`` is usable if it is tissue and one of its sub-offsets (``o`` with
    one non-zero component set to zero) is usable: a monotone path of face-adjacent tissue
    voxels joins x and x + o. Tissue order is the C order of the mask
    (``np.flatnonzero(mask)``), as everywhere in :mod:`pipeline.monodomain`.
    """
    mask = np.asarray(mask, dtype=bool)
    index = tissue_index(mask)
    ijk = np.argwhere(mask)
    n = ijk.shape[0]
    shape = np.array(mask.shape)
    table = np.full((n, 26), n, dtype=np.int64)
    usable = np.zeros((n, 26), dtype=bool)
    order = np.argsort(np.abs(OFFSETS26).sum(axis=1), kind="stable")   # faces, edges, corners
    for k in order:
        o = OFFSETS26[k]
        nb = ijk + o
        inside = np.all((nb >= 0) & (nb < shape), axis=1)
        tgt = np.full(n, -1, dtype=np.int64)
        tgt[inside] = index[tuple(nb[inside].T)]
        ok = tgt >= 0
        nz = np.flatnonzero(o)
        if nz.size > 1:
            via = np.zeros(n, dtype=bool)
            for d in nz:
                sub = o.copy()
                sub[d] = 0
                via |= usable[:, _offset_slot(sub)]
            ok &= via
        usable[:, k] = ok
        table[ok, k] = tgt[ok]
    return table


# ---------------------------------------------------------------------- solver

Sources = Sequence[tuple[torch.Tensor | np.ndarray | Sequence[int],
                         torch.Tensor | np.ndarray | Sequence[float] | float]]


class EikonalSolver:
    """Batched anisotropic eikonal solver on the tissue voxels of one anatomy.

    The geometry (usable neighbours, fibre projections) is prepared once; :meth:`solve`
    then runs B simulations with their own velocities and sources.

    Parameters
    ----------
    mask
        bool (nx, ny, nz): tissue voxels; n = mask.sum(), tissue index in C order.
    spacing_mm
        Voxel edge length (mm), a number or (3,).
    fibre
        (n, 3) or (3, nx, ny, nz) fibre directions (normalised here).
    device
        Torch device of the computation ("cpu", "cuda", "auto").
    dtype
        Floating type of the times (float32 is enough: 1e-5 ms at 200 ms).
    chunk
        Largest number of (simulation, voxel) pairs updated in one vectorised block
        (memory: about 200 values per pair); None picks 2**16 on CPU, 2**20 on CUDA.
    compile
        Compile the local solver with ``torch.compile`` (dynamic shapes): about 45 s
        once per process (less with inductor's cache), then about 4x fewer seconds per
        update on CPU (measured 1.4 against 6.6 us per update, 6000 pairs).
    mean_slowness
        With per-voxel velocities, each update takes the mean of the slownesses (along
        and across the fibre) of the voxel and of its upwind neighbour (the best vertex
        update's): a hop crosses the face between two voxels halfway, and each voxel is a
        cube of its own speed, so an interface lies on the faces (the trapezoidal rule
        along the hop). False: the voxel's own metric for the whole hop, which puts a
        fast layer's edge half a voxel into the slow tissue it drives (about 0.6 ms
        across the fibres at 0.5 mm, twice that at 1 mm).

    Notes
    -----
    Accuracy and speed are in the module docstring. Unreached tissue (not connected to
    any source through face-adjacent tissue) raises :class:`SimulationError` from
    :meth:`solve` unless ``allow_unreached=True``, which returns ``inf`` there instead.
    Results on CPU and CUDA agree to rounding (a source label chosen differently in a
    tie may move a value by up to ``tol_ms``).
    """

    def __init__(self, mask: np.ndarray, spacing_mm: float | Sequence[float] | np.ndarray,
                 fibre: np.ndarray, *, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, chunk: int | None = None,
                 compile: bool = False, band_ms: float | None = None,
                 mean_slowness: bool = True) -> None:
        vec = check_fibres(mask, fibre)
        self.mean_slowness = bool(mean_slowness)
        mask = np.asarray(mask, dtype=bool)
        spacing = np.broadcast_to(np.asarray(spacing_mm, dtype=np.float64), (3,)).copy()
        if np.any(~np.isfinite(spacing)) or np.any(spacing <= 0):
            raise InputError(f"spacing must be positive and finite (mm), got {spacing_mm}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.dtype = dtype
        self.n = int(mask.sum())
        self.shape = mask.shape
        self.spacing = spacing
        self.chunk = int(chunk) if chunk else (2 ** 20 if self.device.type == "cuda" else 2 ** 16)
        self._ijk = torch.as_tensor(np.argwhere(mask), device=self.device)   # (n, 3)
        self._index_np = tissue_index(mask)
        self._h = torch.as_tensor(spacing, dtype=dtype, device=self.device)
        lut = np.full(27, -1, dtype=np.int64)
        lut[(OFFSETS26 + 1) @ np.array([9, 3, 1])] = np.arange(26)
        self._lut = torch.as_tensor(lut, device=self.device)
        t0 = time.perf_counter()
        table = neighbour_table_26(mask)
        off_mm = OFFSETS26 * spacing                                   # (26, 3) mm
        self.neighbour = torch.as_tensor(table, device=self.device)   # (n, 26), n = none
        #: (n, 26) f_x . (y - x), mm
        self.fdot = torch.as_tensor(vec @ off_mm.T, dtype=dtype, device=self.device)
        self.fibre = torch.as_tensor(vec, dtype=dtype, device=self.device)    # (n, 3)
        geo = {"vert_sq": (off_mm ** 2).sum(axis=1)}                   # |o_k|^2, (26,)
        # the dot products of a simplex's edge vectors do not depend on the octant
        # (reflections), so they are computed once, in the all-positive octant
        oct_mm = off_mm[OCTANT_VERTICES[7]]                            # (7, 3)
        k1, k2 = OCTANT_EDGES[:, 0], OCTANT_EDGES[:, 1]
        a, e = -oct_mm[k1], oct_mm[k2] - oct_mm[k1]
        geo["edge_aa"], geo["edge_ee"] = (a * a).sum(1), (e * e).sum(1)
        geo["edge_ea"] = (e * a).sum(1)
        j1, j2, j3 = OCTANT_TRIANGLES.T
        a, e2, e3 = -oct_mm[j1], oct_mm[j2] - oct_mm[j1], oct_mm[j3] - oct_mm[j1]
        geo["tri_aa"] = (a * a).sum(1)
        geo["tri_22"], geo["tri_23"], geo["tri_33"] = (e2 * e2).sum(1), (e2 * e3).sum(1), \
            (e3 * e3).sum(1)
        geo["tri_2a"], geo["tri_3a"] = (e2 * a).sum(1), (e3 * a).sum(1)
        geo["inv_2h"] = 0.5 / spacing
        geo["inv_h"] = 1.0 / spacing
        self._geo = {k: torch.as_tensor(v, dtype=dtype, device=self.device)
                     for k, v in geo.items()}
        idx = {"oct": OCTANT_VERTICES, "edge1": k1, "edge2": k2, "tri1": j1, "tri2": j2,
               "tri3": j3, "plus": [_offset_slot(v) for v in np.eye(3, dtype=np.int64)],
               "minus": [_offset_slot(-v) for v in np.eye(3, dtype=np.int64)],
               "bits": [4, 2, 1], "base3": [9, 3, 1]}
        self._idx = {k: torch.as_tensor(np.asarray(v, dtype=np.int64), device=self.device)
                     for k, v in idx.items()}
        self._local = torch.compile(self._update, dynamic=True) if compile else self._update
        #: width (ms) of the time band of :meth:`solve`; inf: plain Jacobi FIM
        self.band_ms = self._check_band(BAND_MS_PER_MM * float(spacing.max())
                                        if band_ms is None else band_ms)
        #: tolerance (ms) of "a vertex below the source cones" in :meth:`_factored`
        self.tau_floor_ms = 1e-3
        #: sweeps and wall time (s) of the last :meth:`solve`
        self.last_sweeps = 0
        self.last_wall_s = 0.0
        self.last_updates = 0
        log.debug("eikonal geometry for %d voxels in %.2f s", self.n, time.perf_counter() - t0)

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def _check_band(band_ms: float) -> float:
        band = float(band_ms)
        if math.isnan(band) or band <= 0:
            raise InputError(f"band_ms must be > 0 ms (math.inf: no band), got {band_ms}")
        return band

    def _velocities(self, name: str, cv: torch.Tensor | np.ndarray | float) -> torch.Tensor:
        v = torch.as_tensor(cv, dtype=torch.float64).cpu()
        if v.ndim == 0:
            v = v.reshape(1, 1)
        elif v.ndim == 1:       # (n,) per voxel, else (B,) per simulation
            v = v.reshape(1, -1) if v.numel() == self.n else v.reshape(-1, 1)
        if v.ndim != 2 or v.shape[1] not in (1, self.n):
            raise InputError(f"{name} has shape {tuple(torch.as_tensor(cv).shape)}, expected "
                             f"(B, {self.n}), (B, 1) or ({self.n},) mm/ms")
        bad = ~torch.isfinite(v) | (v <= 0)
        if bool(bad.any()):
            idx = torch.nonzero(bad)[0].tolist()
            raise InputError(f"{name} must be finite and > 0 (mm/ms); got {float(v[tuple(idx)])} "
                             f"(simulation {idx[0]}, voxel {idx[1] if v.shape[1] > 1 else 'all'})")
        return v

    def _sources(self, sources: Sources, batch: int) -> tuple[torch.Tensor, torch.Tensor,
                                                               torch.Tensor]:
        if len(sources) != batch:
            raise InputError(f"{len(sources)} source lists for {batch} simulations")
        bs, idxs, times = [], [], []
        for b, item in enumerate(sources):
            try:
                vox, t = item
            except (TypeError, ValueError) as exc:
                raise InputError(f"simulation {b}: sources must be (voxel indices, start times)"
                                 ) from exc
            vox = torch.as_tensor(np.asarray(vox) if not isinstance(vox, torch.Tensor) else vox)
            vox = vox.reshape(-1).to(torch.int64).cpu()
            tt = torch.as_tensor(t, dtype=torch.float64).reshape(-1).cpu()
            if tt.numel() == 1 and vox.numel() > 1:
                tt = tt.expand(vox.numel())
            if vox.numel() == 0:
                raise InputError(f"simulation {b}: no source voxel")
            if tt.numel() != vox.numel():
                raise InputError(f"simulation {b}: {vox.numel()} source voxels but {tt.numel()} "
                                 f"start times")
            if bool(((vox < 0) | (vox >= self.n)).any()):
                bad = int(vox[(vox < 0) | (vox >= self.n)][0])
                raise InputError(f"simulation {b}: source voxel {bad} is not a tissue index "
                                 f"(0..{self.n - 1})")
            if not bool(torch.isfinite(tt).all()):
                raise InputError(f"simulation {b}: source start times must be finite (ms), "
                                 f"got {tt[~torch.isfinite(tt)][0].item()}")
            bs.append(torch.full_like(vox, b))
            idxs.append(vox)
            times.append(tt)
        return torch.cat(bs), torch.cat(idxs), torch.cat(times)

    # ------------------------------------------------------------------ local solver
    def _update(self, t: torch.Tensor, label: torch.Tensor, flat: torch.Tensor,
                alpha: torch.Tensor, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Local values (m,) and source labels (m,) for the pairs ``flat`` = b * n + i.

        Candidates: all 26 vertex updates; the edges and triangles of the upwind octant
        (the octant of -V grad t, with grad t from central differences of the face
        neighbours, one-sided where one is missing: it holds the characteristic of a
        planar wave, so planar waves stay exact at a sixth of the cost of all 48
        triangles); and the source-factored update of :meth:`_factored`. The label is
        the source of the neighbour with the best vertex update.
        """
        n, g, ix = self.n, self._geo, self._idx
        b = torch.div(flat, n, rounding_mode="floor")
        i = flat - b * n
        row = b * (n + 1)                                          # row offsets in t
        nbr = self.neighbour[i]
        tn = t.view(-1)[row[:, None] + nbr]                         # (m, 26), inf if none
        p = self.fdot[i]                                           # (m, 26)
        al = alpha[b, i if alpha.shape[1] > 1 else 0][:, None]     # (m, 1)
        be = beta[b, i if beta.shape[1] > 1 else 0][:, None]
        zero = torch.zeros((), dtype=t.dtype, device=t.device)
        inf = torch.full((), math.inf, dtype=t.dtype, device=t.device)
        # vertices: t_k + ||o_k||_M
        best, arg = (tn + torch.sqrt(al * g["vert_sq"] + be * p * p)).min(dim=1)
        up = nbr.gather(1, arg[:, None])[:, 0]
        src = label.view(-1)[row + up]
        if self.mean_slowness and alpha.shape[1] > 1:
            y = torch.where(up < n, up, i)
            al_y, be_y = alpha[b, y][:, None], beta[b, y][:, None]
            s_t = 0.5 * (torch.sqrt(al) + torch.sqrt(al_y))
            s_l = 0.5 * (torch.sqrt(al + be) + torch.sqrt(al_y + be_y))
            al, be = s_t * s_t, s_l * s_l - s_t * s_t
            best = (tn + torch.sqrt(al * g["vert_sq"] + be * p * p)).amin(dim=1)
        fact, src = self._factored(t, label, b, i, row, nbr, src, tn, al, be, alpha, beta)
        best = torch.minimum(best, fact)
        # upwind octant: signs of -V grad t
        tx = t.view(-1)[row + i][:, None]
        tp, tm = tn[:, ix["plus"]], tn[:, ix["minus"]]             # (m, 3)
        fp, fm, fx = torch.isfinite(tp), torch.isfinite(tm), torch.isfinite(tx)
        one_m = torch.where(fx, (tx - torch.where(fm, tm, zero)) * g["inv_h"], g["inv_h"])
        one_p = torch.where(fx, (torch.where(fp, tp, zero) - tx) * g["inv_h"], -g["inv_h"])
        grad = torch.where(fp & fm, (torch.where(fp, tp, zero) - torch.where(fm, tm, zero))
                           * g["inv_2h"], torch.where(fm, one_m, torch.where(fp, one_p, zero)))
        ct2 = 1.0 / al
        fib = self.fibre[i]
        vg = ct2 * grad + (1.0 / (al + be) - ct2) * fib * (fib * grad).sum(dim=1, keepdim=True)
        octant = ((vg < 0).long() * ix["bits"]).sum(dim=1)
        slots = ix["oct"][octant]                                   # (m, 7)
        tv = torch.gather(tn, 1, slots)
        pv = torch.gather(p, 1, slots)
        fin = torch.isfinite(tv)
        t0 = torch.where(fin, tv, zero)
        best = torch.minimum(best, _edge_min(t0, pv, fin, al, be, g, ix, inf))
        best = torch.minimum(best, _triangle_min(t0, pv, fin, al, be, g, ix, inf))
        return best, src

    def _local_chunk(self, t: torch.Tensor, label: torch.Tensor, flat: torch.Tensor,
                     alpha: torch.Tensor, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_update` of one chunk, shaped so that the compiled solver is compiled
        once: a copy, not a view of the active pairs (a view's base size is guarded), and
        at least two pairs (a chunk of one would be specialised and compiled again)."""
        m = flat.numel()
        flat = flat.repeat(2) if m == 1 else flat.clone()
        value, src = self._local(t, label, flat, alpha, beta)
        return value[:m], src[:m]

    def _factored(self, t: torch.Tensor, label: torch.Tensor, b: torch.Tensor,
                  i: torch.Tensor, row: torch.Tensor, nbr: torch.Tensor, src: torch.Tensor,
                  tn: torch.Tensor, al: torch.Tensor,
                  be: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Source-factored Hopf-Lax value on the ray towards a source, and x's source.

        Returns values (m,) (inf where not applicable) and labels (m,).

        Each finite voxel carries a label: the source voxel whose cone explains its time.
        With s the label of the upwind neighbour (best vertex update), the value is taken
        where the segment from x to s crosses the cube surface,
        y = x + (s - x) / |s - x|_inf, in the Kuhn triangle (F, E, C) picked by the
        order of the components of v = s - x (in voxels; |v_a| >= |v_b| >= |v_c|), with
        barycentric weights w = (1 - |v_b| / |v_a|, (|v_b| - |v_c|) / |v_a|,
        |v_c| / |v_a|). Instead of t, the difference tau = t - t0 to the local lower
        envelope of cones t0(z) = min_j (t_j + ||z - s_j||_M(s_j)) over the sources s_j
        of s and of F, E, C is interpolated:

            t(x) <- t0(y) + sum_k w_k (t_k - t0(y_k)) + ||x - y||_M(x).

        Linear interpolation of t itself (the simplex updates) misses the strongly
        curved front near a point source: for c_l / c_t = 0.6 / 0.25 mm/ms it left errors
        of 4-14 % ten voxels away, depending on the fibre. The factored value is exact for
        point sources in a homogeneous medium, is never below the lower envelope of the
        cones there (so it cannot undercut a planar wave), and elsewhere is a consistent
        Hopf-Lax value at a feasible point of the triangle.
        """
        h = self._h
        zero = torch.zeros((), dtype=t.dtype, device=t.device)
        have = (src >= 0) & (src != i)
        s_ = torch.where(have, src, i)
        xi = self._ijk[i]                                           # (m, 3)
        v = self._ijk[s_] - xi                                      # (m, 3) voxels, s - x
        av = v.abs()
        order = torch.argsort(av, dim=1, descending=True)           # a, b, c
        sv = torch.where(v >= 0, 1, -1).gather(1, order)
        avs = av.gather(1, order).to(t.dtype)
        eye = torch.eye(3, dtype=torch.int64, device=t.device)
        ea, eb, ec = (eye[order[:, k]] * sv[:, k:k + 1] for k in range(3))
        offs = torch.stack((ea, ea + eb, ea + eb + ec), dim=1)      # (m, 3, 3): F, E, C
        slot = self._lut[((offs + 1) * self._idx["base3"]).sum(dim=2)]
        tk = torch.gather(tn, 1, slot)                              # (m, 3)
        den = torch.clamp(avs[:, :1], min=1.0)
        w = torch.cat((1.0 - avs[:, 1:2] / den, (avs[:, 1:2] - avs[:, 2:3]) / den,
                       avs[:, 2:3] / den), dim=1)                   # (m, 3)
        # candidate sources: s and the labels of F, E, C -> (m, 4)
        nbk = torch.gather(nbr, 1, slot)
        lab = torch.cat((s_[:, None], label.view(-1)[row[:, None] + nbk]), dim=1)
        ok_lab = lab >= 0
        lab = torch.where(ok_lab, lab, i[:, None])
        t_lab = t.view(-1)[row[:, None] + lab]                      # (m, 4)
        ok_lab &= torch.isfinite(t_lab)
        # points (m, 5, 3) relative to x, in voxels: F, E, C, y, x
        ray = v.to(t.dtype) / den
        pts = torch.cat((offs.to(t.dtype), ray[:, None, :], torch.zeros_like(ray)[:, None, :]),
                        dim=1)
        d = (pts[:, :, None, :] + (xi[:, None, :] - self._ijk[lab]).to(t.dtype)[:, None]) * h
        fl = self.fibre[lab]                                         # (m, 4, 3)
        al_l = alpha[b[:, None], lab if alpha.shape[1] > 1 else 0]   # (m, 4)
        be_l = beta[b[:, None], lab if beta.shape[1] > 1 else 0]
        fd = (d * fl[:, None]).sum(dim=3)                            # (m, 5, 4)
        cones = t_lab[:, None, :] + torch.sqrt(
            al_l[:, None, :] * (d * d).sum(dim=3) + be_l[:, None, :] * fd * fd)
        cones = torch.where(ok_lab[:, None, :], cones, torch.full_like(cones, math.inf))
        t0, _ = cones[:, :4].min(dim=2)                             # (m, 4): F, E, C, y
        used = w > 0
        dev = torch.where(used, tk - t0[:, :3], zero)               # tau_k
        tau = (w * dev).sum(dim=1)
        xy = -ray * h                                               # x - y, mm
        fx = (xy * self.fibre[i]).sum(dim=1)
        last = torch.sqrt(al[:, 0] * (xy * xy).sum(dim=1) + be[:, 0] * fx * fx)
        val = t0[:, 3] + tau + last
        # where a vertex lies below the cones (a flatter front, e.g. from a plane of
        # sources, which linear interpolation already gets right), the convexity of t0
        # would be subtracted twice: no factored value there
        below = (dev < -(self.tau_floor_ms + 1e-5 * t0[:, :3].abs())) & used
        ok = (have & (torch.isfinite(tk) | ~used).all(dim=1) & torch.isfinite(t0[:, 3])
              & ~below.any(dim=1))
        own = torch.gather(lab, 1, cones[:, 4].argmin(dim=1, keepdim=True))[:, 0]
        return (torch.where(ok, val, torch.full_like(val, math.inf)),
                torch.where(have, own, src))

    # ------------------------------------------------------------------ solve
    def solve(self, cv_l: torch.Tensor | np.ndarray | float,
              cv_t: torch.Tensor | np.ndarray | float, sources: Sources, *,
              tol_ms: float = 1e-3, max_sweeps: int | None = None,
              allow_unreached: bool = False, band_ms: float | None = None) -> torch.Tensor:
        """Activation times of B simulations.

        Parameters
        ----------
        cv_l, cv_t
            Conduction velocities along and across the fibres, mm/ms: (B, n) per voxel,
            (B, 1) per simulation, (n,) per voxel shared by all, or a number. See
            :func:`velocities_from_regions` for per-region values.
        sources
            B pairs ``(voxels, start_ms)``: int (k,) tissue indices and float (k,) (or one)
            start times in ms. A voxel that a wave reaches before its start time takes the
            earlier time (the solution is the minimum of the sources' cones).
        tol_ms
            A value that drops by less than this does not re-activate its neighbours;
            the iteration stops when no value drops by more.
        max_sweeps
            Upper bound on the sweeps between two widenings of the band (default
            4 (nx + ny + nz) + 100).
        allow_unreached
            If False (default), tissue not connected to any source raises; if True such
            voxels are returned as ``inf``.
        band_ms
            Width of the time band (ms; default the solver's :attr:`band_ms`): an activated
            pair whose lower bound lies beyond its simulation's band waits for its update
            until the band reaches it; ``math.inf`` runs the plain Jacobi FIM.

        Returns
        -------
        Tensor
            (B, n) activation times (ms), on the solver's device, in its dtype.

        Raises
        ------
        InputError
            Non-positive or non-finite velocity (naming the value), bad shapes, source
            indices outside the tissue, non-finite start times; before any work.
        SimulationError
            Voxels unreached by any source (naming the simulation and the count) unless
            ``allow_unreached``, or no convergence within ``max_sweeps``.
        """
        if not (math.isfinite(tol_ms) and tol_ms > 0):
            raise InputError(f"tol_ms must be > 0, got {tol_ms}")
        band_ms = self.band_ms if band_ms is None else self._check_band(band_ms)
        batch_hint = len(sources)
        vl = self._velocities("cv_l", cv_l)
        vt = self._velocities("cv_t", cv_t)
        batch = max(vl.shape[0], vt.shape[0], batch_hint)
        for name, v in (("cv_l", vl), ("cv_t", vt)):
            if v.shape[0] not in (1, batch):
                raise InputError(f"{name} is given for {v.shape[0]} simulations, {batch} expected")
        sb, si, st = self._sources(sources, batch)
        if max_sweeps is None:
            max_sweeps = 4 * sum(self.shape) + 100
        dev, dt = self.device, self.dtype
        # M = alpha I + beta f f^T
        alpha = (1.0 / vt ** 2).expand(batch, -1).to(dev, dt).contiguous()
        beta_cols = max(vl.shape[1], vt.shape[1])
        beta = (1.0 / vl ** 2 - 1.0 / vt ** 2).expand(batch, beta_cols).to(dev, dt).contiguous()
        if beta_cols > alpha.shape[1]:
            alpha = alpha.expand(batch, beta_cols).contiguous()

        start = time.perf_counter()
        n = self.n
        t = torch.full((batch, n + 1), math.inf, dtype=dt, device=dev)   # column n: "none"
        flat_src = (sb * n + si).to(dev)
        t.view(-1).scatter_reduce_(0, (sb * (n + 1) + si).to(dev), st.to(dev, dt), reduce="amin")
        label = torch.full((batch, n + 1), -1, dtype=torch.int64, device=dev)
        label.view(-1)[(sb * (n + 1) + si).to(dev)] = si.to(dev)
        seeded = self._seed_compact_groups(t, label, sb, si, st, alpha, beta)
        # the smallest time (ms) a wave needs from a voxel to its nearest neighbour in each
        # simulation: a pair activated by a neighbour at time t0 cannot drop below t0 + hop
        hop = (float(self.spacing.min()) * torch.sqrt((alpha + beta).amin(dim=1))).to(dt)
        # pairs waiting for an update, and lower bounds of their new values (inf: none)
        pend = torch.full((batch, n + 1), math.inf, dtype=dt, device=dev)
        self._activate(torch.unique(torch.cat((flat_src, seeded))), t, hop, pend)
        # per simulation: pairs whose bound lies beyond `limit` wait until no pair at or
        # below it is left to update; then the band moves on
        limit = torch.full((batch,), torch.finfo(dt).max, dtype=dt, device=dev)
        if math.isfinite(band_ms):
            limit.scatter_reduce_(0, sb.to(dev), st.to(dev, dt), reduce="amin")
            limit += band_ms
        sweeps, updates, since = 0, 0, 0
        while True:
            now = pend <= limit[:, None]
            active = torch.nonzero(now.view(-1)).reshape(-1)
            if active.numel() == 0:
                first = pend.amin(dim=1)
                if not bool(torch.isfinite(first).any()):
                    break
                limit = torch.where(torch.isfinite(first), torch.maximum(limit, first) + band_ms,
                                    limit)
                since = 0
                continue
            if since >= max_sweeps:
                raise SimulationError(f"eikonal solve did not converge in {max_sweeps} sweeps "
                                      f"({active.numel()} voxel updates still pending)")
            pend.view(-1)[active] = math.inf
            active = active - torch.div(active, n + 1, rounding_mode="floor")   # b * n + i
            sweeps += 1
            since += 1
            updates += active.numel()
            parts = [self._local_chunk(t, label, active[c:c + self.chunk], alpha, beta)
                     for c in range(0, active.numel(), self.chunk)]
            new = torch.cat([v for v, _ in parts])
            lab = torch.cat([v for _, v in parts])
            pos = active + torch.div(active, n, rounding_mode="floor")   # b * (n + 1) + i
            old = t.view(-1)[pos]
            better = new < old
            changed = new < old - tol_ms                  # dropped by > tol (or from inf)
            t.view(-1)[pos[better]] = new[better]
            label.view(-1)[pos[better]] = lab[better]
            self._activate(active[changed], t, hop, pend)
        self.last_sweeps, self.last_updates = sweeps, updates
        self.last_wall_s = time.perf_counter() - start
        out = t[:, :n]
        log.info("eikonal: %d simulations x %d voxels, %d sweeps, %.3g updates/voxel, %.2f s",
                 batch, n, sweeps, updates / max(1, batch * n), self.last_wall_s)
        unreached = torch.isinf(out).sum(dim=1)
        if not allow_unreached and bool((unreached > 0).any()):
            b = int(torch.nonzero(unreached > 0)[0, 0])
            raise SimulationError(f"eikonal simulation {b}: {int(unreached[b])} of {n} tissue "
                                  f"voxels are not connected to any source (unreached)")
        return out

    def _seed_compact_groups(self, t: torch.Tensor, label: torch.Tensor, sb: torch.Tensor,
                             si: torch.Tensor, st: torch.Tensor, alpha: torch.Tensor,
                             beta: torch.Tensor, *, max_extent: float = 6.0,
                             margin: float = 5.0) -> torch.Tensor:
        """Exact minimum of the source cones around compact source groups; seeded pairs.

        A group is a 26-connected set of one simulation's sources with the same start
        time, at most ``max_extent`` voxels from its centroid (a stimulus ball). Tissue
        voxels within ``margin`` voxels of it that see it (the segment to the nearest
        group voxel runs through tissue) get t_s + min_p ||x - p||_M, M the slowest of
        the metrics at p, at x and at the voxels on that segment, and the label of the
        minimising p: the plain update would interpolate between the group's voxels
        (values below their cones), which switches the factored update off and leaves
        the curved front's error. The segment's voxels count since 2026-12-04: with the
        ends only, a ball in a fast layer seeded a fast layer 3-5 mm beyond it across
        slow myocardium at the layer's speed (docs/fidelity-log.md, "Session 25"). Extended
        groups (a face, a layer) are left to the plain update, which is exact for them.
        """
        from scipy import ndimage

        n, dev = self.n, self.device
        out = []
        sb_np, si_np, st_np = sb.numpy(), si.numpy(), st.numpy()
        ijk_all = self._ijk.cpu().numpy()
        index = self._index_np
        for b in np.unique(sb_np):
            for time_s in np.unique(st_np[sb_np == b]):
                vox = np.unique(si_np[(sb_np == b) & (st_np == time_s)])
                pts = ijk_all[vox]
                lo, hi = pts.min(axis=0), pts.max(axis=0) + 1
                sub = np.zeros(tuple(hi - lo), dtype=bool)
                sub[tuple((pts - lo).T)] = True
                comp, k = ndimage.label(sub, structure=np.ones((3, 3, 3)))
                cid = comp[tuple((pts - lo).T)]
                for c in range(1, k + 1):
                    g = vox[cid == c]
                    gp = ijk_all[g].astype(np.float64)
                    centre = gp.mean(axis=0)
                    extent = np.linalg.norm(gp - centre, axis=1).max()
                    if g.size < 2 or extent > max_extent:
                        continue
                    r = extent + margin
                    lo2 = np.maximum(np.floor(centre - r).astype(int), 0)
                    hi2 = np.minimum(np.ceil(centre + r).astype(int) + 1, self.shape)
                    cand = index[lo2[0]:hi2[0], lo2[1]:hi2[1], lo2[2]:hi2[2]].ravel()
                    cand = cand[cand >= 0]
                    cp = ijk_all[cand].astype(np.float64)
                    near = np.linalg.norm(cp[:, None] - gp[None], axis=2)      # (c, g)
                    keep = near.min(axis=1) <= margin
                    cand, cp, near = cand[keep], cp[keep], near[keep]
                    # visibility from the nearest group voxel (segment sampled in voxels)
                    q = gp[near.argmin(axis=1)]
                    fr = np.linspace(0.0, 1.0, 2 * math.ceil(margin) + 3)[1:-1]
                    seg = np.rint(q[:, None] + fr[None, :, None] * (cp - q)[:, None]).astype(int)
                    on_seg = index[seg[..., 0], seg[..., 1], seg[..., 2]]    # (c, F)
                    seen = (on_seg >= 0).all(axis=1)
                    cand, on_seg = cand[seen], on_seg[seen]
                    if cand.size == 0:
                        continue
                    ct_ = torch.as_tensor(cand, device=dev)
                    gt = torch.as_tensor(g, device=dev)
                    val, arg = self._group_cones(ct_, gt, on_seg, alpha, beta, int(b),
                                                 t.dtype).min(dim=1)
                    val = val + float(time_s)
                    pos = int(b) * (n + 1) + ct_
                    better = val < t.view(-1)[pos]
                    t.view(-1)[pos[better]] = val[better]
                    label.view(-1)[pos[better]] = gt[arg[better]]
                    out.append(int(b) * n + ct_[better])
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64, device=dev)

    def _group_cones(self, cand: torch.Tensor, group: torch.Tensor, on_seg: np.ndarray,
                     alpha: torch.Tensor, beta: torch.Tensor, b: int,
                     dtype: torch.dtype) -> torch.Tensor:
        """Travel times (c, g) ms from each group voxel to each candidate: the straight
        segment under the slowest metric of its ends and of the voxels ``on_seg`` (c, F)
        on the candidate's segment to the group. A straight cone between two fast voxels
        (a ball in a fast layer, a layer beyond the myocardium) must not skip the slow
        tissue between them."""
        c, g = cand.numel(), group.numel()
        d = (self._ijk[cand][:, None, :] - self._ijk[group][None]).to(dtype) * self._h
        cones = torch.maximum(
            self._norm(d, alpha, beta, b, group[None, :].expand(c, -1), self.fibre[group][None]),
            self._norm(d, alpha, beta, b, cand[:, None].expand(-1, g), self.fibre[cand][:, None]))
        for f in range(on_seg.shape[1]):
            sv = torch.as_tensor(on_seg[:, f], device=cand.device)
            cones = torch.maximum(cones, self._norm(d, alpha, beta, b, sv[:, None].expand(-1, g),
                                                    self.fibre[sv][:, None]))
        return cones

    @staticmethod
    def _norm(d: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, b: int,
              vox: torch.Tensor, fib: torch.Tensor) -> torch.Tensor:
        """||d||_M with M = alpha I + beta f f^T of simulation b at voxels ``vox``."""
        a = alpha[b, vox if alpha.shape[1] > 1 else 0]
        bt = beta[b, vox if beta.shape[1] > 1 else 0]
        fd = (d * fib).sum(dim=-1)
        return torch.sqrt(a * (d * d).sum(dim=-1) + bt * fd * fd)

    def _activate(self, flat: torch.Tensor, t: torch.Tensor, hop: torch.Tensor,
                  pend: torch.Tensor) -> None:
        """Mark the later (or unreached) usable neighbours of the pairs ``flat`` =
        b * n + i for an update, with the lower bound t_i + hop_b of their new values
        (the smallest over the pairs that activate them) in ``pend`` (B, n + 1)."""
        n = self.n
        if flat.numel() == 0:
            return
        b = torch.div(flat, n, rounding_mode="floor")
        nb = self.neighbour[flat - b * n]                           # (m, 26)
        row = (b * (n + 1))[:, None]
        tf = t.view(-1)
        tx = tf[row[:, 0] + flat - b * n]                           # (m,)
        nb = torch.where(tf[row + nb] > tx[:, None], nb, n)
        bound = (tx + hop[b])[:, None].expand(-1, nb.shape[1])
        pend.view(-1).scatter_reduce_(0, (row + nb).reshape(-1), bound.reshape(-1),
                                      reduce="amin")
        pend[:, n] = math.inf


def _edge_min(t0: torch.Tensor, pv: torch.Tensor, fin: torch.Tensor, al: torch.Tensor,
              be: torch.Tensor, g: dict, ix: dict, inf: torch.Tensor) -> torch.Tensor:
    """Best Hopf-Lax value (m,) over the upwind octant's edges (see ``EikonalSolver._update``)."""
    # edges (y1, y2): a = x - y1, e = y2 - y1; min over lambda in [0, 1] of
    # t1 + lambda (t2 - t1) + ||a - lambda e||_M, interior stationary point
    k1, k2 = ix["edge1"], ix["edge2"]
    fa, fe = -pv[:, k1], pv[:, k2] - pv[:, k1]
    t1 = t0[:, k1]
    dl = t0[:, k2] - t1
    ee = al * g["edge_ee"] + be * fe * fe
    ea = al * g["edge_ea"] + be * fe * fa
    aa = al * g["edge_aa"] + be * fa * fa
    q = dl * dl / ee
    s = torch.sqrt(torch.clamp(aa - ea * ea / ee, min=0.0) / torch.clamp(1.0 - q, min=1e-12))
    lam = (ea - s * dl) / ee
    ok = fin[:, k1] & fin[:, k2] & (q < 1.0) & (lam >= 0.0) & (lam <= 1.0)
    return torch.where(ok, t1 + lam * dl + s, inf).amin(dim=1)


def _triangle_min(t0: torch.Tensor, pv: torch.Tensor, fin: torch.Tensor, al: torch.Tensor,
                  be: torch.Tensor, g: dict, ix: dict, inf: torch.Tensor) -> torch.Tensor:
    """Best Hopf-Lax value (m,) over the upwind octant's triangles."""
    # triangles (y1, y2, y3): a = x - y1, E = [y2 - y1, y3 - y1], G = E^T M E;
    # s = ||r0||_M / sqrt(1 - d^T G^-1 d), lambda = G^-1 (E^T M a - s d)
    j1, j2, j3 = ix["tri1"], ix["tri2"], ix["tri3"]
    fa, f2, f3 = -pv[:, j1], pv[:, j2] - pv[:, j1], pv[:, j3] - pv[:, j1]
    t1 = t0[:, j1]
    d2, d3 = t0[:, j2] - t1, t0[:, j3] - t1
    g22 = al * g["tri_22"] + be * f2 * f2
    g23 = al * g["tri_23"] + be * f2 * f3
    g33 = al * g["tri_33"] + be * f3 * f3
    b2 = al * g["tri_2a"] + be * f2 * fa
    b3 = al * g["tri_3a"] + be * f3 * fa
    aa = al * g["tri_aa"] + be * fa * fa
    det = g22 * g33 - g23 * g23
    q = (g33 * d2 * d2 - 2.0 * g23 * d2 * d3 + g22 * d3 * d3) / det
    r0 = torch.clamp(aa - (g33 * b2 * b2 - 2.0 * g23 * b2 * b3 + g22 * b3 * b3) / det,
                     min=0.0)
    s = torch.sqrt(r0 / torch.clamp(1.0 - q, min=1e-12))
    c2, c3 = b2 - s * d2, b3 - s * d3
    l2 = (g33 * c2 - g23 * c3) / det
    l3 = (g22 * c3 - g23 * c2) / det
    ok = (fin[:, j1] & fin[:, j2] & fin[:, j3] & (q < 1.0) & (l2 >= 0.0) & (l3 >= 0.0)
          & (l2 + l3 <= 1.0))
    return torch.where(ok, t1 + l2 * d2 + l3 * d3 + s, inf).amin(dim=1)


def solve_eikonal(mask: np.ndarray, spacing_mm: float | Sequence[float], fibre: np.ndarray,
                  cv_l: torch.Tensor | np.ndarray | float, cv_t: torch.Tensor | np.ndarray | float,
                  sources: Sources, *, device: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32, tol_ms: float = 1e-3,
                  max_sweeps: int | None = None, allow_unreached: bool = False,
                  mean_slowness: bool = True) -> torch.Tensor:
    """Activation times (B, n) ms of the anisotropic eikonal equation; see :class:`EikonalSolver`.

    Parameters
    ----------
    mask
        bool (nx, ny, nz) tissue voxels; n = mask.sum(), tissue order ``np.flatnonzero(mask)``.
    spacing_mm
        Voxel size, mm.
    fibre
        (n, 3) or (3, nx, ny, nz) fibre directions.
    cv_l, cv_t
        (B, n) (or (B, 1), (n,), scalar) conduction velocities along / across fibres, mm/ms.
    sources
        Per simulation ``(voxel indices (k,), start times (k,) ms)``.
    device, dtype, tol_ms, max_sweeps, allow_unreached, mean_slowness
        As in :class:`EikonalSolver` and :meth:`EikonalSolver.solve`.

    Returns
    -------
    Tensor
        (B, n) activation times in ms.
    """
    solver = EikonalSolver(mask, spacing_mm, fibre, device=device, dtype=dtype,
                           mean_slowness=mean_slowness)
    return solver.solve(cv_l, cv_t, sources, tol_ms=tol_ms, max_sweeps=max_sweeps,
                        allow_unreached=allow_unreached)


def velocities_from_regions(region: np.ndarray | torch.Tensor,
                            cv_per_region: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Per-voxel velocities (B, n) from per-region values (B, R) and region labels (n,).

    Parameters
    ----------
    region
        int (n,) label 0..R-1 of every tissue voxel (e.g. 0 myocardium, 1 ``fast_lv``,
        2 ``fast_rv``).
    cv_per_region
        (B, R) or (R,) velocity of each region per simulation, mm/ms.

    Returns
    -------
    Tensor
        float64 (B, n), mm/ms.
    """
    lab = torch.as_tensor(np.asarray(region) if not isinstance(region, torch.Tensor) else region,
                          dtype=torch.int64).reshape(-1)
    cv = torch.as_tensor(cv_per_region, dtype=torch.float64)
    cv = cv.reshape(1, -1) if cv.ndim == 1 else cv
    if lab.numel() and (int(lab.min()) < 0 or int(lab.max()) >= cv.shape[1]):
        raise InputError(f"region labels span {int(lab.min())}..{int(lab.max())} but "
                         f"{cv.shape[1]} region velocities are given")
    return cv[:, lab]


def region_parts(problem: MonodomainProblem, *, physical: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each voxel's region and each region's tensor sigma = a I + c f f^T per simulation.

    Parameters
    ----------
    problem
        The problem; its regions are the myocardium (label 0) and its fast layers (1, 2,
        ... in the order of ``problem.fast_regions``).
    physical
        The tissue's conductivities (without any CV-calibration scale) if True.

    Returns
    -------
    label
        int64 (n,) region of each voxel.
    a, c
        float64 (B, regions) isotropic and fibre parts (S/m).
    """
    label = np.zeros(problem.grid.n_tissue, dtype=np.int64)
    for r, sel in enumerate(problem.fast_regions.values(), start=1):
        label[np.asarray(sel, dtype=bool)] = r
    parts = problem.region_sigma(physical=physical)
    names = ["myo", *problem.fast_regions]
    shape = (problem.batch,)
    a = np.stack([np.broadcast_to(parts[k][0], shape) for k in names], axis=1)
    c = np.stack([np.broadcast_to(parts[k][1], shape) for k in names], axis=1)
    return label, a.astype(np.float64), c.astype(np.float64)


def problem_inputs(problem: MonodomainProblem, *, layer_load: bool = True,
                   cv_relation: str = DEFAULT_CV_RELATION
                   ) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Velocities and sources of a :class:`MonodomainProblem` for :meth:`EikonalSolver.solve`.

    Each region's tensor sigma = a I + c f f^T gives c_l = cv_from_sigma(a + c),
    c_t = cv_from_sigma(a) (an active fast layer: c = 0, isotropic); every stimulated voxel
    is a source starting at its stimulus onset (first pulse). The conductivities are used
    as the problem holds them, i.e. multiplied by any CV-calibration scale: build the
    problem without calibration (``cv_scale`` 1) for the eikonal mode, since
    :func:`~pipeline.monodomain.cv_relation.cv_from_sigma` already gives the fine-grid CV.

    With ``layer_load`` and a problem that knows its layers' depth
    (``problem.fast_depth_mm``), an active fast layer's speed is multiplied by
    :func:`pipeline.monodomain.layer.layer_load` of the simulation's conductivities: the
    front speed of such a layer on its myocardium, not of a free cable.
    ``cv_relation`` is the ``relation`` of
    :func:`~pipeline.monodomain.cv_relation.cv_from_sigma` (``simulate.cv_relation``); the
    conductivities enter it as sigma 140 / (chi Cm) with the problem's chi (1/mm) and
    Cm (uF/cm^2), since the CV depends on D = 100 sigma / (chi Cm) only.

    Returns
    -------
    cv_l, cv_t
        float64 (B, n), mm/ms.
    sources
        B pairs (voxel indices, start times ms).
    """
    label, a, c = region_parts(problem)
    factor = np.ones_like(a)
    if layer_load and problem.fast_depth_mm is not None and problem.fast_regions:
        from pipeline.monodomain.layer import layer_load as load_of

        cond = problem.conductivities
        load = load_of(cond.sigma_fast_endo, cond.sigma_l, cond.sigma_t, problem.fast_depth_mm)
        factor[:, 1:] = np.where(problem.fast_enabled, np.asarray(load)[:, None], 1.0)
    kw = {"chi_per_mm": problem.chi_per_mm, "cm_uF_per_cm2": problem.cm_uF_per_cm2}
    cv_l = velocities_from_regions(label, factor * cv_from_sigma(a + c, cv_relation, **kw))
    cv_t = velocities_from_regions(label, factor * cv_from_sigma(a, cv_relation, **kw))
    sources = []
    for stims in problem.stimuli:
        vox = np.concatenate([s.voxels for s in stims])
        start = np.concatenate([np.full(s.voxels.size, s.start_ms) for s in stims])
        sources.append((torch.as_tensor(vox), torch.as_tensor(start)))
    return cv_l, cv_t, sources
