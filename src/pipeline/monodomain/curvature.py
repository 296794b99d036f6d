"""The eikonal-curvature correction: convex fronts are slower than planar ones.

A planar wave in the monodomain runs at its planar CV; a convex front (leaving a small
stimulated region, breaking through a wall, spreading from a septal breakthrough) runs
slower, because each depolarised patch must charge more tissue ahead of it. To first order
in the front's curvature, Keener's eikonal-curvature relation and its anisotropic form
(Colli Franzone, Guerri and Tentoni 1990) give

    sqrt(grad T . D grad T) * (c0 - div(D grad T / sqrt(grad T . D grad T))) = 1,

with D the diffusion tensor (mm^2/ms) and c0 = v_n / sqrt(n . D n) the planar speed v_n
in the front's normal direction n over sqrt(n . D n). In the isotropic case this is
v = v0 - D kappa, kappa the mean curvature (sum of the principal curvatures, 2 / r for a
sphere). The plain eikonal drops the divergence term, so it runs ahead of the monodomain
wherever fronts are convex: by about D kappa / v0 = 4 % across the fibres 5 mm from a
point source (D_t = 0.029 mm^2/ms, v0 = 0.31 mm/ms).

:func:`curvature_factor` evaluates ``f = 1 - div(D grad T / sqrt(grad T . D grad T)) / c0``
from a solved activation map T on the voxel grid: central differences of T (one-sided
next to non-tissue), smoothed over :data:`SMOOTH_MM`, and the divergence as a finite
volume whose faces between two propagating voxels carry their mean and whose other faces
(to a wall, a stimulated source, a fast layer) the voxel's own value, so that they add
nothing. A front can meet a wall at any angle (head-on at the epicardium, along it
elsewhere), so no wall condition is assumed; the price is half the cross-wall curvature in
the layer of voxels on a wall (an under-correction, towards the plain eikonal); a second
eikonal solve with both CVs multiplied by f then carries the correction
(:func:`corrected_times`). f is clipped to ``bounds`` (:data:`FACTOR_BOUNDS`): the
relation is a first-order one, and where fronts collide the curvature of the arrival map
is unbounded (there the monodomain does run faster, briefly).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pipeline.errors import InputError
from pipeline.monodomain.cv_relation import DEFAULT_CV_RELATION
from pipeline.monodomain.eikonal import EikonalSolver, Sources, problem_inputs, region_parts

if TYPE_CHECKING:
    from pipeline.monodomain.problem import MonodomainProblem

#: Default bounds of the speed factor.
FACTOR_BOUNDS = (0.5, 1.25)
#: Width (mm, the Gaussian's standard deviation) over which the gradient of the arrival
#: times is smoothed before the divergence is taken: the scale of the monodomain's front,
#: which rounds the flat facets and sharp edges an eikonal front inherits from a voxelised
#: source (a ball of voxels is a staircase). The gradient, not the times, is smoothed, so
#: that a plane wave meeting a wall keeps its (constant) gradient.
SMOOTH_MM = 1.5


def diffusion_mm2_per_ms(sigma: np.ndarray | torch.Tensor | float, chi_per_mm: float = 140.0,
                         cm_uF_per_cm2: float = 1.0) -> np.ndarray | torch.Tensor | float:
    """Monodomain diffusion coefficient D = sigma / (chi Cm), in mm^2/ms, of a
    conductivity in S/m (0.04 S/m, chi 140 /mm, Cm 1 uF/cm^2: 0.0286 mm^2/ms)."""
    return 100.0 * sigma / (chi_per_mm * cm_uF_per_cm2)


def _dense(values: torch.Tensor, index: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """(B, n) tissue values -> (B, nx, ny, nz) with NaN outside the tissue."""
    out = torch.full((values.shape[0], int(np.prod(shape))), float("nan"),
                     dtype=values.dtype, device=values.device)
    out[:, index] = values
    return out.reshape(values.shape[0], *shape)


def _shifted(field: torch.Tensor, valid: torch.Tensor, dim: int, step: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The neighbour's value and validity at ``step`` (+1 or -1) along ``dim``
    (invalid outside the grid)."""
    n = field.shape[dim]
    value, ok = torch.zeros_like(field), torch.zeros_like(valid)
    src = [slice(None)] * field.dim()
    dst = [slice(None)] * field.dim()
    src[dim], dst[dim] = (slice(1, n), slice(0, n - 1)) if step > 0 else \
        (slice(0, n - 1), slice(1, n))
    value[tuple(dst)], ok[tuple(dst)] = field[tuple(src)], valid[tuple(src)]
    return value, ok


def _gradient(field: torch.Tensor, known: torch.Tensor, axis: int, h: float) -> torch.Tensor:
    """d field / d x_axis: central where both neighbours are known, one-sided where one
    is, 0 where none."""
    dim = axis + 1
    f = torch.where(known, field, torch.zeros_like(field))
    plus, ok_p = _shifted(f, known, dim, +1)
    minus, ok_m = _shifted(f, known, dim, -1)
    zero = torch.zeros_like(f)
    out = torch.where(ok_p & ok_m, (plus - minus) / (2.0 * h),
                      torch.where(ok_p, (plus - f) / h,
                                  torch.where(ok_m, (f - minus) / h, zero)))
    return torch.where(known, out, zero)


def _divergence_part(q: torch.Tensor, live: torch.Tensor, axis: int, h: float
                     ) -> torch.Tensor:
    """d q / d x_axis as a finite volume: a face between two live voxels carries their
    mean; any other face (to a source, a fast layer, a wall) the live voxel's own value,
    so that it adds nothing (a front may meet a wall at any angle: head-on at the
    epicardium, along it elsewhere)."""
    dim = axis + 1
    q = torch.where(live, q, torch.zeros_like(q))
    faces = []
    for step in (+1, -1):
        nb, nb_live = _shifted(q, live, dim, step)
        faces.append(torch.where(nb_live, 0.5 * (q + nb), q))
    return torch.where(live, (faces[0] - faces[1]) / h, torch.zeros_like(q))


def _smooth(fields: list[torch.Tensor], known: torch.Tensor, sigma_voxels: np.ndarray
            ) -> list[torch.Tensor]:
    """Gaussian smoothing of each of ``fields`` over the ``known`` voxels only (normalised
    convolution: the weights of unknown voxels are left out, not taken as zeros)."""
    from scipy.ndimage import gaussian_filter

    sig = (0.0, *[float(s) for s in sigma_voxels])
    w = known.cpu().numpy()
    den = np.maximum(gaussian_filter(w.astype(np.float64), sig, mode="constant",
                                     truncate=3.0), 1e-12)
    out = []
    for field in fields:
        f = torch.where(known, field, torch.zeros_like(field)).cpu().numpy()
        num = gaussian_filter(f, sig, mode="constant", truncate=3.0)
        out.append(torch.as_tensor(np.where(w, num / den, 0.0), dtype=field.dtype,
                                   device=field.device))
    return out


def _normalised_flux(grad: torch.Tensor, fib: torch.Tensor, d_l: torch.Tensor,
                     d_t: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """q = D g / sqrt(g . D g) for gradients g (B, 3, n) and fibres (1, 3, n).

    Returns q (B, 3, n), sqrt(g . D g) (B, n), where it is non-zero (B, n) and f . g."""
    along = (fib * grad).sum(dim=1)                             # f . g
    dgrad = d_t[:, None] * grad + (d_l - d_t)[:, None] * along[:, None] * fib
    s = torch.sqrt((grad * dgrad).sum(dim=1).clamp_min(0.0))    # sqrt(g . D g)
    live = s > 1e-12
    q = torch.where(live[:, None], dgrad / torch.where(live, s, 1.0)[:, None],
                    torch.zeros_like(dgrad))
    return q, s, live, along


def curvature_factor(times: torch.Tensor, mask: np.ndarray, spacing_mm: float | np.ndarray,
                     fibre: np.ndarray | torch.Tensor, cv_l: torch.Tensor, cv_t: torch.Tensor,
                     d_l: torch.Tensor, d_t: torch.Tensor, *,
                     exclude: torch.Tensor | None = None,
                     bounds: tuple[float, float] = FACTOR_BOUNDS,
                     smooth_mm: float = SMOOTH_MM) -> torch.Tensor:
    """Speed factor ``f = 1 - kappa_D / c0`` per voxel from an activation map.

    Parameters
    ----------
    times
        (B, n) activation times (ms) of the tissue voxels (C order of ``mask``); inf or NaN
        where unreached.
    mask
        bool (nx, ny, nz) tissue.
    spacing_mm
        Voxel edge (mm), one number or (3,).
    fibre
        (n, 3) unit fibre directions.
    cv_l, cv_t
        (B, n) or broadcastable planar CVs along / across the fibres (mm/ms).
    d_l, d_t
        (B, n) or broadcastable diffusion coefficients along / across the fibres
        (mm^2/ms, :func:`diffusion_mm2_per_ms`).
    exclude
        bool (B, n) voxels left out of the differences (the stimulated sources, whose
        times are set, not propagated); their factor is 1.
    bounds
        The factor is clipped to this range.
    smooth_mm
        The gradient of the times is smoothed over the propagating voxels with a
        Gaussian of this width (mm; normalised convolution: a constant gradient stays
        constant up to a wall); 0: not.

    Returns
    -------
    Tensor
        float64 (B, n) factors.
    """
    mask = np.asarray(mask, dtype=bool)
    shape = mask.shape
    h = np.broadcast_to(np.asarray(spacing_mm, dtype=np.float64), (3,))
    if np.any(h <= 0):
        raise InputError(f"spacing must be positive (mm), got {spacing_mm}")
    t = times.to(torch.float64)
    batch, n = t.shape
    dev = t.device
    index = torch.as_tensor(np.flatnonzero(mask), device=dev)
    known = torch.isfinite(t)                                   # reached tissue
    ok = known if exclude is None else known & ~exclude.to(dev)   # ... not a source

    def dense_bool(x: torch.Tensor) -> torch.Tensor:
        return _dense(x.to(torch.float64), index, shape).nan_to_num(0.0) > 0.5

    known_d = dense_bool(known)
    T = _dense(torch.where(known, t, torch.zeros_like(t)), index, shape)

    def tissue(x: torch.Tensor) -> torch.Tensor:               # (B, ...) dense -> (B, n)
        return x.reshape(batch, -1)[:, index]

    grad_d = [_gradient(T, known_d, a, float(h[a])) for a in range(3)]
    if smooth_mm > 0:
        ok_d = dense_bool(ok)
        grad_d = _smooth(grad_d, ok_d, smooth_mm / h)
    grad = torch.stack([tissue(g) for g in grad_d], dim=1)      # (B, 3, n)
    fib = torch.as_tensor(np.array(fibre, dtype=np.float64), device=dev).T[None]
    dl, dt_, vl, vt = (torch.as_tensor(x, dtype=torch.float64, device=dev).expand(batch, n)
                       for x in (d_l, d_t, cv_l, cv_t))
    q, s, live, along = _normalised_flux(grad, fib, dl, dt_)
    live_d = dense_bool(live & ok)
    div = torch.zeros_like(t)
    for a in range(3):
        qa = _dense(q[:, a], index, shape).nan_to_num(0.0)
        div = div + tissue(_divergence_part(qa, live_d, a, float(h[a])))
    gvg = vt ** 2 * (grad * grad).sum(dim=1) + (vl ** 2 - vt ** 2) * along ** 2
    c0 = torch.sqrt(gvg.clamp_min(0.0)) / torch.where(live, s, 1.0)
    factor = torch.where(live & ok, 1.0 - div / torch.where(live, c0, 1.0),
                         torch.ones_like(t))
    return factor.clamp(*bounds)


def problem_diffusion(problem: MonodomainProblem) -> tuple[torch.Tensor, torch.Tensor,
                                                           torch.Tensor, np.ndarray]:
    """Diffusion coefficients, the stimulated voxels and the active fast layers.

    Each region's tensor sigma = a I + c f f^T gives D_l = D(a + c), D_t = D(a)
    (:func:`diffusion_mm2_per_ms` with the problem's chi and Cm), as
    :func:`~pipeline.monodomain.eikonal.problem_inputs` gives the CVs. The stimulated
    voxels are left out (their times are set, not propagated), and so are the voxels of
    an active fast layer from the myocardium's correction: the layer's diffusion
    coefficient is about 20x the myocardium's, so a divergence taken across their
    boundary would measure the jump, not a front. :func:`corrected_times` corrects each
    active layer on its own (``layer_curvature``).

    Returns
    -------
    d_l, d_t
        float64 (B, n), mm^2/ms.
    stimulated
        bool (B, n): the stimulated voxels.
    layers
        bool (B, L, n): the voxels of each of the L fast layers where it is active
        (all False where it is not). The myocardium's correction leaves out
        ``stimulated | layers.any(axis=1)``.
    """
    n, batch = problem.grid.n_tissue, problem.batch
    label, a, c = region_parts(problem, physical=True)
    kw = {"chi_per_mm": problem.chi_per_mm, "cm_uF_per_cm2": problem.cm_uF_per_cm2}
    d_l = torch.as_tensor(diffusion_mm2_per_ms(a + c, **kw)[:, label])
    d_t = torch.as_tensor(diffusion_mm2_per_ms(a, **kw)[:, label])
    stimulated = np.zeros((batch, n), dtype=bool)
    for b, stims in enumerate(problem.stimuli):
        for s in stims:
            stimulated[b, s.voxels] = True
    layers = np.zeros((batch, len(problem.fast_regions), n), dtype=bool)
    for r, sel in enumerate(problem.fast_regions.values()):
        on = np.asarray(problem.fast_enabled[:, r], dtype=bool)
        layers[np.ix_(on, [r], np.flatnonzero(np.asarray(sel, dtype=bool)))] = True
    return d_l, d_t, torch.as_tensor(stimulated), layers


def corrected_times(solver: EikonalSolver, problem: MonodomainProblem, *,
                    bounds: tuple[float, float] = FACTOR_BOUNDS, layer_load: bool = True,
                    layer_curvature: bool = True, cv_relation: str = DEFAULT_CV_RELATION,
                    sources: Sources | None = None, **solve_kw: Any
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Eikonal activation times with the curvature correction: two solves.

    The first solve gives T0 with the planar CVs of
    :func:`~pipeline.monodomain.eikonal.problem_inputs`; both CVs of every voxel are then
    multiplied by :func:`curvature_factor` of T0, and the second solve gives the times.

    The myocardium's factor is taken with the fast layers and the stimuli left out
    (:func:`problem_diffusion`). With ``layer_curvature`` each active fast layer takes
    its own factor, computed on the layer alone (its times, its diffusion coefficient
    and speed; the rest of the heart as a wall): a front spreading in the layer from a
    site is a circle in the sheet, and the monodomain slows it by D kappa as it slows a
    front in the myocardium (with D about 20x the myocardium's, by 8 % of the layer's
    speed 5 mm from a site). Against the 0.25 mm monodomain (parametric heart 1, normal
    beat) the uncorrected layer's lead grew from 1.2 to 1.7 ms over its first 20 ms;
    corrected, it stays at the sites' own lag (docs/fidelity-log.md, "Session 29").

    Parameters
    ----------
    solver
        The :class:`~pipeline.monodomain.eikonal.EikonalSolver` of the problem's grid.
    problem
        The problem (CVs, sources, diffusion coefficients from it).
    bounds, solve_kw
        The factor's range; keywords of :meth:`EikonalSolver.solve`.
    layer_load, cv_relation
        The fast layers' speed with the myocardium's load, and the CV-sigma relation
        (:func:`~pipeline.monodomain.eikonal.problem_inputs`).
    sources
        B pairs ``(voxels, start_ms)`` to start from instead of the problem's stimuli (for
        instance a stimulated region's times taken from a monodomain run); the stimulated
        voxels still take no curvature factor.

    Returns
    -------
    times
        (B, n) ms, on the solver's device.
    factor
        float64 (B, n) the speed factors used (1 on left-out voxels).
    """
    cv_l, cv_t, stimuli = problem_inputs(problem, layer_load=layer_load,
                                         cv_relation=cv_relation)
    sources = stimuli if sources is None else sources
    first = solver.solve(cv_l, cv_t, sources, **solve_kw)
    d_l, d_t, stimulated, layers = problem_diffusion(problem)
    grid = problem.grid
    exclude = stimulated | torch.as_tensor(layers.any(axis=1))
    # one simulation at a time: the dense (nx, ny, nz) float64 fields of a 0.5 mm heart
    # take about 0.5 GB each
    parts = []
    for b in range(first.shape[0]):
        t_b = first[b:b + 1]
        coeffs = [x[b:b + 1] if x.shape[0] > 1 else x for x in (cv_l, cv_t, d_l, d_t)]
        f_b = curvature_factor(t_b, grid.mask, grid.spacing, problem.fibre, *coeffs,
                               exclude=exclude[b:b + 1], bounds=bounds).cpu()
        for sel in (layers[b] if layer_curvature else []):
            if not sel.any():
                continue
            on = torch.as_tensor(sel, device=t_b.device)[None]
            alone = torch.where(on, t_b, torch.full_like(t_b, math.inf))   # the rest: walls
            f_l = curvature_factor(alone, grid.mask, grid.spacing, problem.fibre, *coeffs,
                                   exclude=stimulated[b:b + 1], bounds=bounds).cpu()
            f_b = torch.where(on.cpu(), f_l, f_b)
        parts.append(f_b)
    factor = torch.cat(parts)
    return solver.solve(cv_l * factor, cv_t * factor, sources, **solve_kw), factor
