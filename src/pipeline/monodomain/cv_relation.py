"""The CV-sigma relation: the planar conduction velocity of a conductivity.

Monodomain theory gives a planar wave's conduction velocity proportional to sqrt(D),
D = 100 sigma / (chi Cm) (mm^2/ms for sigma in S/m, chi in 1/mm, Cm in uF/cm^2): scaling
space by sqrt(D) maps one monodomain solution onto another. A finite-difference grid
slows a wave whose upstroke it does not resolve, most at small sigma (a transverse
upstroke is about 0.3 mm long). Two relations (``simulate.cv_relation``):

- ``"continuum"`` (the default, :data:`DEFAULT_CV_RELATION`): ``CV = CV_CONTINUUM_K
  sqrt(sigma)``, the converged monodomain (cables at 0.05 and 0.025 mm extrapolated to
  dx -> 0); the 0.1 mm cables are 1.5-14 % slower over 0.8-0.02 S/m
  (docs/fidelity-log.md, "Session 30"). Four converged references agree with it: the
  Niederer benchmark, slabs below a fast layer, small sources ("Sessions 30-32");
- ``"cable_0.1mm"``: ``CV = CV_K sigma / sqrt(sigma + CV_SIGMA0)``, fitted to CVs measured
  with the monodomain solver on 0.1 mm cables (:data:`CV_TABLE`,
  :func:`pipeline.monodomain.cv.measure_cv_table`), the default until session 36.

The reaction-eikonal mode sets its speeds from it
(:func:`pipeline.monodomain.eikonal.problem_inputs`), and the monodomain's per-direction
calibration aims at it (:func:`pipeline.monodomain.cv.calibrate_directions`,
:mod:`pipeline.simulate.calibration`).
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.errors import InputError

#: Planar-wave CV (mm/ms) on a cable against conductivity (S/m), measured with the
#: monodomain solver by :func:`pipeline.monodomain.cv.measure_cv_table` (16 cables in one
#: batch, 460 s on the shared 2-core machine): TP06 endo cells, chi 140/mm,
#: Cm 1 uF/cm^2, dx 0.1 mm, dt 0.005 ms (the reference grid of
#: :func:`pipeline.monodomain.cv.calibrate_directions`), 15 mm cable, CV fitted over its
#: middle third. It spans the config's sampled ranges (sigma_l 0.10-0.20, sigma_t
#: 0.02-0.06, sigma_fast_endo 0.5-1.0 S/m). Columns: sigma (S/m), CV (mm/ms). The 0.1 mm
#: grid is not converged for these cables: they run 1.5-14 % below the continuum's
#: :data:`CV_CONTINUUM_K` sqrt(sigma), most at small sigma (docs/monodomain.md,
#: "Session 30").
CV_TABLE: np.ndarray = np.array([
    [0.01, 0.1331], [0.02, 0.2066], [0.03, 0.2622], [0.04, 0.3089], [0.06, 0.3871],
    [0.08, 0.4528], [0.10, 0.5105], [0.13, 0.5868], [0.16, 0.6544], [0.20, 0.7351],
    [0.30, 0.9059], [0.40, 1.0493], [0.50, 1.1753], [0.60, 1.2891], [0.80, 1.4907],
    [1.00, 1.6682],
])
#: CV_K, CV_SIGMA0: fit of :data:`CV_TABLE` (least squares on log CV),
#: CV = CV_K * sigma / sqrt(sigma + CV_SIGMA0), CV in mm/ms for sigma in S/m; within
#: 0.84 % of every measured value (largest at 0.01 S/m). It is the sqrt law of
#: monodomain theory (CV proportional to sqrt(D), D = 100 sigma / (chi Cm)) for
#: sigma >> CV_SIGMA0, with the slowing of the 0.1 mm grid at small sigma (short space
#: constant): a pure sqrt law is off by up to 20 % (0.01 S/m) and 4.5 % (1 S/m), a free
#: power law (exponent 0.54) by up to 7.8 %.
CV_K: float = 1.6664
CV_SIGMA0: float = 0.00593
#: The continuum monodomain's planar CV per sqrt(sigma), mm/ms per sqrt(S/m) (TP06 endo,
#: chi 140/mm, Cm 1 uF/cm^2): CV = CV_CONTINUUM_K sqrt(sigma). Scaling space by sqrt(D)
#: maps a monodomain solution onto another, so the continuum CV is exactly proportional
#: to sqrt(sigma); the constant is the Richardson extrapolation (second order in dx) of
#: cables at 0.05 and 0.025 mm, dt 0.0004 ms (benchmarks/cv_convergence.py, "Session 30"
#: of docs/monodomain.md): 1.6922-1.6930 at 0.02, 0.04, 0.15 and 0.8 S/m. The 0.1 mm
#: cables of :data:`CV_TABLE` are slower than it by 13.7 / 8.8 / 3.5 / 1.5 % there: a
#: transverse front's upstroke is about 0.3 mm long, three voxels of 0.1 mm.
CV_CONTINUUM_K: float = 1.6926
#: The CV-sigma relations :func:`cv_from_sigma` knows (``simulate.cv_relation``).
CV_RELATIONS: tuple[str, ...] = ("cable_0.1mm", "continuum")
#: The relation of ``simulate.cv_relation``'s default and of every function here that
#: takes one: the converged monodomain's.
DEFAULT_CV_RELATION: str = "continuum"


def cv_from_sigma(sigma: np.ndarray | torch.Tensor | float, relation: str = DEFAULT_CV_RELATION,
                  *, chi_per_mm: float = 140.0, cm_uF_per_cm2: float = 1.0
                  ) -> np.ndarray | torch.Tensor | float:
    """Conduction velocity (mm/ms) of a planar wave for a conductivity (S/m).

    ``relation`` "continuum" (the default): ``CV = CV_CONTINUUM_K * sqrt(sigma)``, the
    converged monodomain (:data:`CV_CONTINUUM_K`; 0.3386 mm/ms at 0.04 S/m against 0.3089
    on the 0.1 mm cable). "cable_0.1mm": ``CV = CV_K * sigma / sqrt(sigma + CV_SIGMA0)``,
    fitted to :data:`CV_TABLE` (monodomain cables at dx 0.1 mm, dt 0.005 ms, chi 140/mm,
    Cm 1 uF/cm^2, TP06 endo).
    Use sigma_l for the fibre direction, sigma_t across, sigma_fast_endo in a fast layer.
    Both relations are for chi 140/mm, Cm 1 uF/cm^2; for another chi or Cm the
    conductivity enters as sigma 140 / (chi Cm): the CV depends on D = 100 sigma / (chi Cm)
    only (exactly in the continuum; the 0.1 mm grid term aside).

    Parameters
    ----------
    sigma
        Conductivity, S/m (> 0); any shape: numpy, torch or a float.
    relation
        One of :data:`CV_RELATIONS`.
    chi_per_mm, cm_uF_per_cm2
        Surface-to-volume ratio (1/mm) and membrane capacitance (uF/cm^2).

    Returns
    -------
    Same type and shape as ``sigma``: CV in mm/ms.

    Raises
    ------
    InputError
        For a non-positive or non-finite conductivity (naming the value), or an unknown
        relation.
    """
    if relation not in CV_RELATIONS:
        raise InputError(f"CV-sigma relation {relation!r} is not one of {CV_RELATIONS} "
                         f"(simulate.cv_relation)")
    values = sigma.detach().cpu().numpy() if isinstance(sigma, torch.Tensor) else \
        np.asarray(sigma, dtype=np.float64)
    bad = ~(np.isfinite(values) & (values > 0))
    if np.any(bad):
        raise InputError(f"conductivity must be finite and > 0 (S/m), got "
                         f"{values[bad].ravel()[0]}")
    k = 140.0 / (chi_per_mm * cm_uF_per_cm2)       # the relations are for 140/mm, 1 uF/cm^2
    if k != 1.0:
        values = values * k
        if isinstance(sigma, torch.Tensor):
            sigma = sigma * k
    if relation == "continuum":
        if isinstance(sigma, torch.Tensor):
            return CV_CONTINUUM_K * torch.sqrt(sigma)
        out = CV_CONTINUUM_K * np.sqrt(values)
        return float(out) if np.ndim(sigma) == 0 else out
    if isinstance(sigma, torch.Tensor):
        return CV_K * sigma / torch.sqrt(sigma + CV_SIGMA0)
    out = CV_K * values / np.sqrt(values + CV_SIGMA0)
    return float(out) if np.ndim(sigma) == 0 else out
