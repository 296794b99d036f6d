"""Laplace-Dirichlet problems on the tissue voxels (finite volumes, sparse AMG solves).

Solves  div(grad u) = 0  in the tissue with ``u = g`` on labelled boundary faces and zero
flux on every other face. Cell-centred finite volumes on the voxel grid: for tissue voxel
i with tissue neighbours j and Dirichlet faces f (half a voxel from the centre),

    sum_j (u_i - u_j) + sum_f 2 (u_i - g_f) = 0,

a symmetric positive definite M-matrix (discrete maximum principle: values stay within
the range of g). Exact for linear solutions; second-order in h away from staircase edges.
Solved with pyamg's classical (Ruge-Stuben) AMG as a CG preconditioner (scipy's direct solver
for small systems).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TissueGraph:
    """Tissue voxels and their internal faces.

    Attributes
    ----------
    index
        Tissue number of each voxel (grid shape) int64, -1 outside.
    n
        Number of tissue voxels.
    laplacian
        Graph Laplacian of internal faces (n, n) CSR, without boundary terms.
    """

    index: np.ndarray
    n: int
    laplacian: sparse.csr_matrix


def tissue_graph(mask: np.ndarray) -> TissueGraph:
    """Number the tissue voxels and assemble the internal-face Laplacian."""
    index = np.full(mask.shape, -1, dtype=np.int64)
    n = int(mask.sum())
    index[mask] = np.arange(n)
    rows, cols = [], []
    for axis in range(3):
        a = np.moveaxis(index, axis, 0)
        both = (a[:-1] >= 0) & (a[1:] >= 0)
        rows.append(a[:-1][both])
        cols.append(a[1:][both])
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    off = sparse.coo_matrix((-np.ones(r.size), (r, c)), shape=(n, n))
    off = (off + off.T).tocsr()
    degree = -np.asarray(off.sum(axis=1)).ravel()
    lap = (off + sparse.diags(degree)).tocsr()
    return TissueGraph(index=index, n=n, laplacian=lap)


def solve(graph: TissueGraph, face_voxel: np.ndarray, face_value: np.ndarray,
          tol: float = 1e-8, what: str = "u") -> np.ndarray:
    """Solve the Laplace problem with Dirichlet values on some boundary faces.

    Parameters
    ----------
    graph
        From :func:`tissue_graph`.
    face_voxel
        Flat grid index of the tissue voxel of each boundary face (m,).
    face_value
        Value g on each face (m,), or (k, m) for k problems sharing their Dirichlet faces
        (one AMG set-up); NaN = zero flux (not Dirichlet).
    tol
        Relative residual of the iterative solve.
    what
        Name for the log.

    Returns
    -------
    numpy.ndarray
        u at the tissue voxels, (n,) or (k, n) float64, in tissue order.
    """
    values = np.atleast_2d(np.asarray(face_value, dtype=np.float64))
    use = np.isfinite(values[0])
    if (np.isfinite(values) != use).any():
        raise ValueError("all right-hand sides must share their Dirichlet faces")
    tissue = graph.index.ravel()[face_voxel[use]]
    if (tissue < 0).any():
        raise ValueError("a Dirichlet face belongs to a non-tissue voxel")
    diag = np.bincount(tissue, weights=np.full(tissue.size, 2.0), minlength=graph.n)
    a = (graph.laplacian + sparse.diags(diag)).tocsr()
    if graph.n < 20_000:
        lu = splu(a.tocsc())
        solver = lu.solve
    else:
        import pyamg

        ml = pyamg.ruge_stuben_solver(a)

        def solver(rhs: np.ndarray) -> np.ndarray:
            return ml.solve(rhs, tol=tol, accel="cg", maxiter=500)
    out = np.empty((values.shape[0], graph.n))
    for row, value in enumerate(values):
        rhs = np.bincount(tissue, weights=2.0 * value[use], minlength=graph.n)
        out[row] = solver(rhs)
        res = float(np.linalg.norm(a @ out[row] - rhs) / max(np.linalg.norm(rhs), 1e-300))
        log.info("Laplace solve %s[%d]: %d unknowns, %d Dirichlet faces, relative residual "
                 "%.1e", what, row, graph.n, int(use.sum()), res)
        if res > 1e-5:
            raise RuntimeError(f"Laplace solve {what} did not converge (residual {res:.1e})")
    return out[0] if np.ndim(face_value) == 1 else out
