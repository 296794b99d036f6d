"""From a shard's parameter rows to monodomain solvers on one anatomy.

A thin layer over :mod:`pipeline.monodomain.batch`: :class:`ShardSolver` prepares the
anatomy once (tissue coordinates, fast subendocardial layers, diffusion parts), finds
the CV-calibration scale once per shard when ``simulate.target_cv_mm_per_ms`` is set,
and builds a :class:`~pipeline.monodomain.solver.MonodomainSolver` per batch of rows,
with the initial states of each row's (BCL, G_Kr) from the cells stage.

CV calibration: the scale is found on a cable (:func:`pipeline.monodomain.cv.
calibrate_conductivity`) for the shard's median ``sigma_l`` and applied to every
conductivity of every simulation of the shard, so the sampled spread of conductivities
(and hence of velocities) is kept; it is stored with the shard (``solver`` attribute and
each simulation's record).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.device import pick_device
from pipeline.params import SimParams

log = logging.getLogger(__name__)

#: Cell-type codes of the anatomy's ``celltype`` field (pipeline.cell.tp06.CELLTYPES).
CODES: dict[str, int] = {"endo": 1, "M": 2, "epi": 3}


def initial_states_lookup(cells: Any) -> Any:
    """A function ``(bcl_ms (B,), gkr_scale (B,)) -> (B, 4, 19)`` over the cells table.

    Row ``code`` (1 endo, 2 M, 3 epi) of simulation ``b`` is the steady state of that cell
    type at the simulation's BCL and G_Kr scale (``cells``: a
    :class:`pipeline.cell.steady.InitialStates`).

    Raises
    ------
    InputError
        (when called) if a (BCL, G_Kr) pair is not in the table.
    """
    states = np.asarray(cells.states, dtype=np.float64)
    names = [str(c) for c in cells.celltypes]
    bcls = np.asarray(cells.bcl_ms, dtype=np.float64)
    gkrs = np.asarray(cells.gkr_scale, dtype=np.float64)

    def lookup(bcl_ms: np.ndarray, gkr_scale: np.ndarray) -> np.ndarray:
        out = np.full((len(bcl_ms), 4, states.shape[-1]), np.nan)
        for b, (bcl, gkr) in enumerate(zip(bcl_ms, gkr_scale)):
            i_bcl = np.flatnonzero(np.isclose(bcls, bcl))
            i_gkr = np.flatnonzero(np.isclose(gkrs, gkr))
            if i_bcl.size == 0 or i_gkr.size == 0:
                raise InputError(f"no initial state for bcl_ms {bcl:g}, gkr_scale {gkr:g} (the "
                                 f"cells file holds bcl_ms {bcls.tolist()}, gkr_scale "
                                 f"{gkrs.tolist()})")
            for c, name in enumerate(names):
                out[b, CODES[name]] = states[c, i_bcl[0], i_gkr[0]]
        return out

    return lookup


class ShardSolver:
    """Builds solvers for batches of one anatomy's simulations.

    Parameters
    ----------
    anatomy
        :class:`pipeline.anatomy.io.Anatomy`.
    cells
        :class:`pipeline.cell.steady.InitialStates`.
    cfg
        Resolved ``simulate`` config section.
    sigma_l_reference
        Fibre conductivity (S/m) at which the CV calibration is done (the shard's median).
    sigma_t_reference
        Cross-fibre conductivity (S/m) of the per-direction calibration (the shard's median).
    """

    def __init__(self, anatomy: Any, cells: Any, cfg: dict[str, Any],
                 sigma_l_reference: float | None = None,
                 sigma_t_reference: float | None = None) -> None:
        import torch

        from pipeline.monodomain.batch import prepare_anatomy

        self.cfg = cfg
        self.device = pick_device(cfg["device"])
        self.dtype = torch.float32 if cfg["dtype"] == "float32" else torch.float64
        self.prepared = prepare_anatomy(anatomy, fast_fraction=float(cfg["fast_endo_fraction"]),
                                        fast_max_apicobasal=float(cfg["fast_endo_max_apicobasal"]))
        self.initial_states = initial_states_lookup(cells)
        self.spacing = np.asarray(anatomy.spacing, dtype=np.float64)
        self.calibration: dict[str, Any] | None = None
        self.cv_scale = 1.0
        self.cv_scale_t: float | None = None
        if cfg.get("target_cv_mm_per_ms") is not None:
            self._calibrate(float(cfg["target_cv_mm_per_ms"]), sigma_l_reference or 0.15)
        elif cfg["calibrate_directions"]:
            self._calibrate_directions(sigma_l_reference or 0.15, sigma_t_reference or 0.04)

    def _calibrate_directions(self, sigma_l: float, sigma_t: float) -> None:
        from pipeline.monodomain.cv import calibrate_directions

        cal_l, cal_t = calibrate_directions(sigma_l, sigma_t, float(self.spacing.max()),
                                            float(self.cfg["dt_ms"]),
                                            chi_per_mm=float(self.cfg["chi_per_mm"]),
                                            cm_uF_per_cm2=float(self.cfg["cm_uF_per_cm2"]))
        self.cv_scale, self.cv_scale_t = float(cal_l.scale), float(cal_t.scale)
        self.calibration = {"l": cal_l.as_dict(), "t": cal_t.as_dict()}
        log.info("CV calibration per direction: sigma_l x %.4f, sigma_t x %.4f (dx %.3g mm, "
                 "dt %.3g ms)", self.cv_scale, self.cv_scale_t, float(self.spacing.max()),
                 float(self.cfg["dt_ms"]))

    def _calibrate(self, target: float, sigma_l: float) -> None:
        from pipeline.monodomain.cv import calibrate_conductivity

        cal = calibrate_conductivity(target, sigma_l, float(self.spacing.max()),
                                     float(self.cfg["dt_ms"]),
                                     chi_per_mm=float(self.cfg["chi_per_mm"]),
                                     cm_uF_per_cm2=float(self.cfg["cm_uF_per_cm2"]))
        self.cv_scale = float(cal.scale)
        self.calibration = cal.as_dict()
        log.info("CV calibration: conductivities x %.4f (target %.3g mm/ms at dx %.3g mm)",
                 self.cv_scale, target, float(self.spacing.max()))

    @property
    def n_tissue(self) -> int:
        """Tissue voxels of the anatomy."""
        return int(self.prepared.grid.n_tissue)

    def solver(self, rows: Sequence[SimParams]) -> Any:
        """A ready :class:`MonodomainSolver` for a batch of rows (diffusion parts shared)."""
        from pipeline.monodomain.batch import SimulationSpec, build_problem
        from pipeline.monodomain.solver import MonodomainSolver

        specs = [SimulationSpec.from_row({k: v for k, v in asdict(r).items() if k != "anatomy"})
                 for r in rows]
        problem = build_problem(self.prepared, specs, dt_ms=float(self.cfg["dt_ms"]),
                                duration_ms=float(self.cfg["duration_ms"]),
                                chi_per_mm=float(self.cfg["chi_per_mm"]),
                                cm_uF_per_cm2=float(self.cfg["cm_uF_per_cm2"]),
                                cv_scale=self.cv_scale, cv_scale_t=self.cv_scale_t,
                                initial_states=self.initial_states,
                                stim_amplitude=float(self.cfg["stim_amplitude_pA_per_pF"]),
                                stim_duration_ms=float(self.cfg["stim_duration_ms"]),
                                site_radius_mm=float(self.cfg["site_radius_mm"]),
                                gks_apex_base=(float(self.cfg["gks_scale_apex"]),
                                               float(self.cfg["gks_scale_base"])))
        return MonodomainSolver(problem, parts=self.prepared.parts, device=self.device,
                                dtype=self.dtype, compile=bool(self.cfg["compile"]),
                                diffusion=str(self.cfg["diffusion"]),
                                repol_threshold_mV=float(self.cfg["repol_threshold_mV"]))

    def attrs(self, solver: Any) -> dict[str, Any]:
        """Solver settings stored with the shard (JSON-able)."""
        return {"dt_ms": float(self.cfg["dt_ms"]), "duration_ms": float(self.cfg["duration_ms"]),
                "chi_per_mm": float(self.cfg["chi_per_mm"]),
                "cm_uF_per_cm2": float(self.cfg["cm_uF_per_cm2"]),
                "diffusion": str(getattr(solver, "diffusion", "explicit")),
                "dt_limit_ms": float(np.min(solver.dt_limit_ms)), "device": str(self.device),
                "dtype": str(self.dtype), "n_tissue": self.n_tissue,
                "spacing_mm": [float(s) for s in self.spacing], "cv_scale": self.cv_scale,
                "cv_scale_t": self.cv_scale_t,
                "cv_calibration": self.calibration}
