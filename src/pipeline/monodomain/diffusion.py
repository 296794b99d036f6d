"""Conservative anisotropic finite differences for div(sigma grad V) on a masked voxel grid.

The operator is built from an energy, so that it is symmetric and negative semi-definite
by construction (the "triad" construction of Griffies et al. 1998, J Phys Oceanogr 28:805,
used there for isoneutral diffusion). Every tissue voxel ``p`` is split into its eight
octants ``s in {-1, +1}^3``. In octant ``s`` the gradient is the vector of one-sided
differences towards the three face neighbours ``p + s_d e_d``:

    g_d = (V[p + s_d e_d] - V[p]) s_d / h_d .

The discrete energy is the sum over octants of ``(vol / 8) g^T sigma_p g``; a direction
whose neighbour is not tissue is left out of that octant (its gradient component is
taken as zero, i.e. the octant keeps the principal sub-block of sigma_p). Every gradient
component is a difference across one voxel face, so the operator has the flux form

    (A V)_p = -(Delta^T K Delta V)_p,     Delta: faces x voxels,  K: faces x faces,

where ``Delta V`` are the face differences and ``K Delta V`` the fluxes through the faces
(uA/mm^2 for V in mV and sigma in S/m = mS/mm). Only faces between two tissue voxels
exist, so the flux through the tissue boundary is exactly zero; ``A`` is symmetric,
negative semi-definite (each octant adds a positive semi-definite form), its rows sum to
zero, and in the interior with uniform sigma it equals the standard 19-point
second-order stencil (exact for quadratic fields).

The operator is linear in sigma. With sigma_p = a_r I + c_r f_p f_p^T in each region r
(myocardium, fast endocardial layers), it is assembled once as *parts* (an isotropic and
a fibre part per region) that are combined per simulation: ``A(b) = sum_j w[j, b] A_j``.
Parts are stored in ELLPACK form over the 18 off-centre neighbours; because every row
sums to zero the operator is applied as ``(A V)_i = sum_k c_ik (V[nb_ik] - V_i)``, which
leaves a constant field exactly unchanged even in float32. One batched application is a
gather and a weighted sum: the same code on CPU and CUDA, and friendly to torch.compile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from pipeline.errors import InputError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: The 18 off-centre stencil offsets: 6 faces, then 12 edges.
OFFSETS: np.ndarray = np.array(
    [tuple(s * np.eye(3, dtype=int)[d]) for d in range(3) for s in (-1, 1)]
    + [tuple(s * np.eye(3, dtype=int)[d] + t * np.eye(3, dtype=int)[e])
       for d in range(3) for e in range(d + 1, 3) for s in (-1, 1) for t in (-1, 1)],
    dtype=np.int64)


def tissue_index(mask: np.ndarray) -> np.ndarray:
    """Index of every tissue voxel in C order, -1 outside tissue; int64 of ``mask.shape``."""
    index = np.full(mask.shape, -1, dtype=np.int64)
    index[mask] = np.arange(int(mask.sum()))
    return index


def _faces(mask: np.ndarray, index: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per direction d, the tissue indices (p, q) of the faces between p and q = p + e_d."""
    faces = []
    for d in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[d] = slice(0, -1)
        hi[d] = slice(1, None)
        both = mask[tuple(lo)] & mask[tuple(hi)]
        faces.append((index[tuple(lo)][both], index[tuple(hi)][both]))
    return faces


def _face_lookup(mask: np.ndarray, faces: list[tuple[np.ndarray, np.ndarray]],
                 offset: list[int]) -> np.ndarray:
    """``table[d, s, p]``: global face number of the face of voxel p towards p + s e_d, or -1.

    ``s`` index 0 means -1, 1 means +1.
    """
    n = int(mask.sum())
    table = np.full((3, 2, n), -1, dtype=np.int64)
    for d, (p, q) in enumerate(faces):
        f = offset[d] + np.arange(p.size)
        table[d, 1, p] = f      # p's face towards +d
        table[d, 0, q] = f      # q's face towards -d
    return table


@dataclass(frozen=True)
class FaceGeometry:
    """The faces of a masked grid, shared by every operator assembled on it.

    Attributes
    ----------
    ijk
        int64 (n_tissue, 3) grid indices of the tissue voxels, in tissue (C) order.
    table
        int64 (3, 2, n_tissue): :func:`_face_lookup`.
    delta
        CSR (n_faces, n_tissue): forward differences across the faces divided by h_d
        (1/mm).
    """

    ijk: np.ndarray
    table: np.ndarray
    delta: sp.csr_matrix


def face_geometry(mask: np.ndarray, spacing: np.ndarray) -> FaceGeometry:
    """The faces, the face lookup and the difference operator of ``mask`` (bool (nx, ny, nz))
    with voxel edges ``spacing`` (3,) mm."""
    spacing = np.asarray(spacing, dtype=np.float64)
    index = tissue_index(mask)
    n = int(mask.sum())
    faces = _faces(mask, index)
    counts = [p.size for p, _ in faces]
    offset = [0, counts[0], counts[0] + counts[1]]
    rows, cols, vals = [], [], []
    for d, (p, q) in enumerate(faces):
        f = offset[d] + np.arange(p.size)
        rows += [f, f]
        cols += [p, q]
        vals += [np.full(p.size, -1.0 / spacing[d]), np.full(p.size, 1.0 / spacing[d])]
    delta = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(sum(counts), n))
    return FaceGeometry(ijk=np.argwhere(mask), table=_face_lookup(mask, faces, offset),
                        delta=delta)


def assemble_stiffness(mask: np.ndarray, spacing: np.ndarray, tensors: np.ndarray,
                       owner_weight: np.ndarray | None = None,
                       geometry: FaceGeometry | None = None) -> sp.csr_matrix:
    """Assemble ``A = -Delta^T K Delta`` for one conductivity tensor field.

    Parameters
    ----------
    mask
        bool (nx, ny, nz): tissue voxels.
    spacing
        (3,) voxel edge lengths, mm.
    tensors
        (n_tissue, 3, 3) symmetric positive semi-definite tensor per tissue voxel (S/m), in
        tissue (C) order.
    owner_weight
        Optional (n_tissue,) factor per voxel (e.g. 0/1 for the voxels of one region);
        the octants of a voxel carry its weight, and a voxel of weight 0 adds nothing.
    geometry
        :func:`face_geometry` of ``mask`` and ``spacing``, when several operators are
        assembled on one grid (built here otherwise).

    Returns
    -------
    scipy.sparse.csr_matrix
        (n_tissue, n_tissue), float64, in S/m / mm^2 = uA/mm^3 per mV: ``(A V)_p`` is
        div(sigma grad V) at voxel p.
    """
    geo = geometry if geometry is not None else face_geometry(mask, spacing)
    table, n_faces = geo.table, geo.delta.shape[0]
    n = geo.ijk.shape[0]
    w = np.ones(n) if owner_weight is None else np.asarray(owner_weight, dtype=np.float64)
    owns = w != 0.0

    # K: sum over voxels and octants of (w/8) sigma[d, e] on the pair of faces (f_d, f_e).
    # The diagonal (d, d) pair of one face appears in 4 octants -> weight 1/2; an
    # off-diagonal pair (f_{d,s}, f_{e,t}) appears in 2 octants -> weight 1/4.
    krow, kcol, kval = [], [], []
    for d in range(3):
        for s in range(2):
            f = table[d, s]
            ok = np.flatnonzero((f >= 0) & owns)
            krow.append(f[ok])
            kcol.append(f[ok])
            kval.append(0.5 * w[ok] * tensors[ok, d, d])
    for d in range(3):
        for e in range(d + 1, 3):
            for s in range(2):
                for t in range(2):
                    fd, fe = table[d, s], table[e, t]
                    ok = np.flatnonzero((fd >= 0) & (fe >= 0) & owns)
                    # g_d = s_d (V[p + s_d e_d] - V[p]) / h_d is the forward difference
                    # Delta_f of face f_d whatever the sign s_d, so no sign appears here.
                    val = 0.25 * w[ok] * tensors[ok, d, e]
                    krow += [fd[ok], fe[ok]]
                    kcol += [fe[ok], fd[ok]]
                    kval += [val, val]
    krow, kcol, delta = np.concatenate(krow), np.concatenate(kcol), geo.delta
    if not owns.all():      # only the faces of owned voxels carry flux: a smaller product
        flags = np.zeros(n_faces, dtype=bool)
        flags[krow] = True
        used = np.flatnonzero(flags)
        renumber = np.full(n_faces, -1, dtype=np.int64)
        renumber[used] = np.arange(used.size)
        krow, kcol, delta, n_faces = renumber[krow], renumber[kcol], delta[used], used.size
    k = sp.csr_matrix((np.concatenate(kval), (krow, kcol)), shape=(n_faces, n_faces))
    return (-(delta.T @ k @ delta)).tocsr()


def fibre_tensors(fibre: np.ndarray) -> np.ndarray:
    """``f f^T`` per voxel: (n, 3) unit vectors -> (n, 3, 3)."""
    fibre = np.asarray(fibre, dtype=np.float64)
    return fibre[:, :, None] * fibre[:, None, :]


def neighbour_table(mask: np.ndarray, ijk: np.ndarray | None = None) -> np.ndarray:
    """int32 (n, 18): tissue index of each off-centre stencil neighbour (self if absent);
    ``ijk``: ``np.argwhere(mask)`` where the caller has it."""
    index = tissue_index(mask)
    ijk = np.argwhere(mask) if ijk is None else ijk
    n = ijk.shape[0]
    shape = np.array(mask.shape)
    neighbour = np.repeat(np.arange(n, dtype=np.int64)[:, None], len(OFFSETS), axis=1)
    for k, off in enumerate(OFFSETS):
        nb = ijk + off
        inside = np.all((nb >= 0) & (nb < shape), axis=1)
        tgt = np.full(n, -1, dtype=np.int64)
        tgt[inside] = index[tuple(nb[inside].T)]
        has = tgt >= 0
        neighbour[has, k] = tgt[has]
    return neighbour.astype(np.int32)


def to_ell(mask: np.ndarray, matrix: sp.spmatrix, ijk: np.ndarray | None = None) -> np.ndarray:
    """Off-diagonal entries of a 19-point-pattern matrix as ELLPACK coefficients (n, 18);
    ``ijk``: ``np.argwhere(mask)`` where the caller has it."""
    ijk = np.argwhere(mask) if ijk is None else ijk
    coo = sp.coo_matrix(matrix)
    keep = coo.row != coo.col
    row, col, val = coo.row[keep], coo.col[keep], coo.data[keep]
    off = ijk[col] - ijk[row]
    if np.any(np.abs(off) > 1):
        raise AssertionError("operator has entries outside the 19-point stencil")
    lut = np.full(27, -1, dtype=np.int64)
    for k, o in enumerate(OFFSETS):
        lut[(o[0] + 1) * 9 + (o[1] + 1) * 3 + (o[2] + 1)] = k
    slot = lut[(off[:, 0] + 1) * 9 + (off[:, 1] + 1) * 3 + (off[:, 2] + 1)]
    if np.any(slot < 0):
        raise AssertionError("operator has entries outside the 19-point stencil")
    m = len(OFFSETS)
    flat = row.astype(np.int64) * m + slot
    return np.bincount(flat, weights=val, minlength=ijk.shape[0] * m).reshape(-1, m)


def check_fibres(mask: np.ndarray, fibre: np.ndarray) -> np.ndarray:
    """Validate a fibre field and return it as (n_tissue, 3) float64 unit vectors.

    Accepts (3, nx, ny, nz) (the anatomy.h5 layout) or (n_tissue, 3).

    Raises
    ------
    InputError
        Non-3-D or empty mask, a fibre shape that matches neither layout, or zero /
        non-finite vectors in tissue.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3 or mask.dtype != bool:
        raise InputError(f"mask must be a 3-D bool array (nx, ny, nz), got {mask.dtype} "
                         f"of shape {mask.shape}")
    n = int(mask.sum())
    if n == 0:
        raise InputError(f"mask of shape {mask.shape} holds no tissue voxel")
    fibre = np.asarray(fibre)
    if fibre.shape == (3, *mask.shape):
        vec = np.moveaxis(fibre, 0, -1)[mask]
    elif fibre.shape == (n, 3):
        vec = fibre
    else:
        raise InputError(f"fibre field of shape {fibre.shape} does not match the mask: expected "
                         f"(3, {', '.join(map(str, mask.shape))}) or ({n}, 3)")
    vec = vec.astype(np.float64)
    norm = np.linalg.norm(vec, axis=1)
    bad = ~np.isfinite(norm) | (norm < 1e-6)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"fibre direction is zero or not finite at {int(bad.sum())} tissue "
                         f"voxels (first: voxel ijk {tuple(np.argwhere(mask)[i])})")
    return vec / norm[:, None]


@dataclass(frozen=True)
class StencilParts:
    """The parts of the diffusion operator over the tissue voxels, in ELLPACK form.

    ``A(w) V = sum_j w_j A_j V`` with
    ``(A_j V)_i = sum_k coef[j, i, k] (V[neighbour[i, k]] - V[i])``.

    Attributes
    ----------
    names
        Part names ``(region, kind)``, kind ``"iso"`` (sigma = I) or ``"fibre"``
        (sigma = f f^T), e.g. ``(("myo", "iso"), ("myo", "fibre"), ...)``.
    neighbour
        int32 (n, 18): tissue index of each off-centre neighbour (the voxel itself where
        the neighbour is not tissue; its coefficient is then zero).
    coef
        float64 (n_parts, n, 18): off-diagonal coefficients, S/m / mm^2.
    """

    names: tuple[tuple[str, str], ...]
    neighbour: np.ndarray
    coef: np.ndarray

    @property
    def n_tissue(self) -> int:
        return int(self.neighbour.shape[0])

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r for r, _ in self.names))

    def combine(self, weights: np.ndarray) -> np.ndarray:
        """Coefficients (B, n, 18) of ``sum_j weights[j, b] A_j`` for weights (n_parts, B)."""
        weights = np.asarray(weights, dtype=np.float64)
        out = np.zeros((weights.shape[1], self.n_tissue, self.coef.shape[2]))
        for j in range(len(self.names)):
            for b in range(weights.shape[1]):
                if weights[j, b] != 0.0:
                    out[b] += weights[j, b] * self.coef[j]
        return out

    def batch_tables(self, weights: np.ndarray, dtype: type = np.float32,
                     share: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """The coefficient tables a batch keeps, shared where that takes less memory.

        Parts whose weights are zero for every simulation are left out, and parts with
        the same weights in every simulation are summed (e.g. the two fast layers' isotropic
        parts when both are on). If fewer tables ``T`` remain than simulations ``B``, the
        batch keeps those ``T`` tables and their weights, and the kernel forms each
        simulation's coefficients on the fly (:func:`ell_apply` with ``scales``): memory
        ``T / B`` of per-simulation tables, results equal to float32 round-off. Otherwise
        (or with ``share`` False) it keeps one combined table per simulation, as
        :meth:`combine` (bit-identical), built one simulation at a time so the float64
        intermediate is one table, not ``B``.

        Parameters
        ----------
        weights
            (n_parts, B) part weights (S/m) of :func:`part_weights`.
        dtype
            Of the returned tables (float32 in bulk runs).
        share
            Allow shared tables.

        Returns
        -------
        tables
            (T, n, 18) S/m / mm^2: shared parts, or (B, n, 18) per simulation.
        scales
            (B, T) float64 weight of each shared table per simulation, or None for
            per-simulation tables.
        """
        weights = np.asarray(weights, dtype=np.float64)
        groups: dict[bytes, list[int]] = {}
        for j in range(weights.shape[0]):
            if np.any(weights[j] != 0.0):
                groups.setdefault(weights[j].tobytes(), []).append(j)
        b = weights.shape[1]
        if share and 0 < len(groups) < b:
            tables = np.empty((len(groups), self.n_tissue, self.coef.shape[2]), dtype=dtype)
            for t, members in enumerate(groups.values()):
                acc = self.coef[members[0]].copy()
                for j in members[1:]:
                    acc += self.coef[j]
                tables[t] = acc
            scales = np.stack([weights[m[0]] for m in groups.values()], axis=1)
            return tables, scales
        out = np.empty((b, self.n_tissue, self.coef.shape[2]), dtype=dtype)
        for i in range(b):
            out[i] = self.combine(weights[:, i:i + 1])[0]
        return out, None

    def matrix(self, weights: np.ndarray) -> sp.csr_matrix:
        """CSR (n, n) of ``sum_j weights[j] A_j`` for one simulation (weights (n_parts,))."""
        c = self.combine(np.asarray(weights, dtype=np.float64)[:, None])[0]
        n = self.n_tissue
        rows = np.repeat(np.arange(n), c.shape[1])
        off = sp.csr_matrix((c.ravel(), (rows, self.neighbour.ravel().astype(np.int64))),
                            shape=(n, n))
        return (off - sp.diags(np.asarray(off.sum(axis=1)).ravel())).tocsr()

    def spectral_bound(self, weights: np.ndarray) -> float:
        """Gershgorin bound on the spectral radius of ``sum_j weights[j] A_j`` (1/mm^2 S/m)."""
        c = self.combine(np.asarray(weights, dtype=np.float64)[:, None])[0]
        return float(2.0 * np.abs(c).sum(axis=1).max())

    def spectral_radius(self, weights: np.ndarray) -> float:
        """Largest |eigenvalue| of ``sum_j weights[j] A_j`` (Lanczos, relative tol 1e-4)."""
        from scipy.sparse.linalg import eigsh
        m = -self.matrix(weights)
        if m.shape[0] < 64:
            return float(np.linalg.eigvalsh(m.toarray()).max())
        val = eigsh(m, k=1, which="LA", tol=1e-4, return_eigenvectors=False)
        return float(val[0]) * (1.0 + 1e-4)


def assemble_parts(mask: np.ndarray, spacing: np.ndarray, fibre: np.ndarray,
                   regions: dict[str, np.ndarray] | None = None) -> StencilParts:
    """Assemble the parts of the transversely isotropic operator, per region.

    In region r, sigma_p = a_r I + c_r f_p f_p^T; with a = sigma_t and c = sigma_l - sigma_t
    for myocardium and a = sigma_fast, c = 0 for an (isotropic) fast layer. The weights
    a_r, c_r are chosen per simulation (:func:`part_weights`), the parts are assembled here
    once.

    Parameters
    ----------
    mask
        bool (nx, ny, nz) tissue voxels.
    spacing
        (3,) mm.
    fibre
        (3, nx, ny, nz) or (n_tissue, 3) fibre directions.
    regions
        Optional named bool (n_tissue,) masks (e.g. ``fast_lv``, ``fast_rv``); voxels in
        none of them form region ``myo``. The masks must not overlap.

    Returns
    -------
    StencilParts
        Parts ``(myo, iso)``, ``(myo, fibre)`` and the same two per named region.
    """
    vec = check_fibres(mask, fibre)
    mask = np.asarray(mask, dtype=bool)
    n = vec.shape[0]
    spacing = np.asarray(spacing, dtype=np.float64)
    if spacing.shape != (3,) or np.any(~np.isfinite(spacing)) or np.any(spacing <= 0):
        raise InputError(f"grid spacing must be 3 positive lengths (mm), got {spacing}")
    owner = {"myo": np.ones(n, dtype=bool)}
    for name, sel in (regions or {}).items():
        sel = np.asarray(sel, dtype=bool)
        if sel.shape != (n,):
            raise InputError(f"region {name!r} flags have shape {sel.shape}, expected ({n},)")
        if np.any(sel & ~owner["myo"]):
            raise InputError(f"region {name!r} overlaps another region")
        owner["myo"] = owner["myo"] & ~sel
        owner[name] = sel
    eye = np.broadcast_to(np.eye(3), (n, 3, 3))
    ff = fibre_tensors(vec)
    geometry = face_geometry(mask, spacing)
    names = [(region, kind) for region, sel in owner.items() if sel.any()
             for kind in ("iso", "fibre")]
    coef = np.empty((len(names), n, len(OFFSETS)))    # filled in place: no stacked copy
    for j, (region, kind) in enumerate(names):
        a = assemble_stiffness(mask, spacing, eye if kind == "iso" else ff,
                               owner[region].astype(np.float64), geometry=geometry)
        coef[j] = to_ell(mask, a, geometry.ijk)
    log.debug("assembled %d parts over %d tissue voxels", len(names), n)
    return StencilParts(names=tuple(names), neighbour=neighbour_table(mask, geometry.ijk),
                        coef=coef)


def part_weights(parts: StencilParts, region_sigma: dict[str, tuple[np.ndarray, np.ndarray]]
                 ) -> np.ndarray:
    """Weights (n_parts, B) from per-region, per-simulation tensor coefficients.

    Parameters
    ----------
    parts
        The assembled parts.
    region_sigma
        ``{region: (a, c)}`` with ``a``, ``c`` of shape (B,) in S/m: sigma = a I + c f f^T.
        Every region of ``parts`` must be given.
    """
    missing = [r for r in parts.regions if r not in region_sigma]
    if missing:
        raise InputError(f"no conductivities given for region(s) {missing}")
    b = max(np.atleast_1d(np.asarray(v[0])).size for v in region_sigma.values())
    rows = []
    for region, kind in parts.names:
        a, c = region_sigma[region]
        value = a if kind == "iso" else c
        rows.append(np.broadcast_to(np.asarray(value, dtype=np.float64), (b,)))
    w = np.stack(rows)
    if np.any(~np.isfinite(w)) or np.any(w < 0):
        raise InputError(f"conductivity weights must be finite and >= 0 (sigma_l >= sigma_t > 0), "
                         f"got {dict(zip(parts.names, w.tolist()))}")
    return w


def ell_apply(v: torch.Tensor, neighbour: torch.Tensor, coef: torch.Tensor,
              scales: torch.Tensor | None = None) -> torch.Tensor:
    """Batched ELLPACK product with zero row sums.

    ``out[b, i] = sum_k c[b, i, k] * (v[b, neighbour[i, k]] - v[b, i])`` with
    ``c = coef`` (per simulation), or ``c[b] = sum_t scales[b, t] coef[t]`` (shared tables,
    :meth:`StencilParts.batch_tables`; formed inside the kernel, never stored).

    Parameters
    ----------
    v
        (B, n) field.
    neighbour
        int (n, K) neighbour table.
    coef
        (B, n, K) coefficients (a leading dimension of 1 broadcasts over the batch), or
        (T, n, K) shared tables when ``scales`` is given.
    scales
        Optional (B, T) weights of the shared tables.

    Returns
    -------
    Tensor
        (B, n).
    """
    out = None
    for k in range(neighbour.shape[1]):
        c = coef[:, :, k] if scales is None else _mix(scales, coef[:, :, k])
        term = c * (v[:, neighbour[:, k]] - v)
        out = term if out is None else out + term
    return out


def _mix(scales: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """``sum_t scales[:, t] tables[t]``: (B, T) x (T, n) -> (B, n), unrolled over T (a
    handful) so that a compiled kernel fuses it with the neighbour gathers."""
    out = scales[:, 0:1] * tables[0]
    for t in range(1, tables.shape[0]):
        out = out + scales[:, t:t + 1] * tables[t]
    return out
