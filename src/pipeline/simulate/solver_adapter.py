"""From a shard's parameter rows to monodomain solvers on one anatomy.

A thin layer over :mod:`pipeline.monodomain.batch`: :class:`ShardSolver` prepares the
anatomy once (tissue coordinates, fast subendocardial layers, diffusion parts), takes the
shard's CV calibration (read from the heart's calibration file, or found once per shard,
:mod:`pipeline.simulate.calibration`), and builds a
:class:`~pipeline.monodomain.solver.MonodomainSolver` per batch of rows, with the initial
states of each row's (BCL, G_Kr) from the cells stage.

CV calibration: the scales are found on cables for one reference conductivity (the
campaign ranges' middle in a calibration file, else the shard's median ``sigma_l`` and
``sigma_t``) and applied to every simulation of the shard, so the sampled spread of
conductivities (and hence of velocities) is kept; they are stored with the shard
(``solver`` attribute and each simulation's record).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.device import pick_device
from pipeline.params import SimParams
from pipeline.settings import RunSettings, SimulateSettings
from pipeline.simulate.calibration import (DEFAULT_REFERENCE, MIN_CV_MM_PER_MS,
                                           ShardCalibration, calibrate, calibration_mode,
                                           propagation_check)

log = logging.getLogger(__name__)


class ShardSolver:
    """Builds solvers for batches of one anatomy's simulations.

    Parameters
    ----------
    anatomy
        :class:`pipeline.anatomy.io.Anatomy`.
    cells
        :class:`pipeline.cell.steady.InitialStates`.
    settings
        What to simulate.
    run
        How to compute it.
    sigma_l_reference
        Fibre conductivity (S/m) at which the CV calibration is done (the shard's median).
    sigma_t_reference
        Cross-fibre conductivity (S/m) of the per-direction calibration (the shard's median).
    sigma_fast_reference
        Fast-layer conductivity (S/m) of the per-direction calibration (the shard's median).
    calibration
        A calibration found beforehand (:func:`pipeline.simulate.calibration.
        read_calibration`, checked against the shard); found here when None and the
        settings ask for one.
    eikonal_anatomy
        The same heart on a finer grid (``simulate.eikonal_resolution_mm``; checked by
        :func:`pipeline.simulate.run.prepare_shard`): the reaction-eikonal mode solves the
        eikonal there and samples its times at this grid's voxel centres.
    """

    def __init__(self, anatomy: Any, cells: Any, settings: SimulateSettings, run: RunSettings,
                 sigma_l_reference: float | None = None,
                 sigma_t_reference: float | None = None,
                 sigma_fast_reference: float | None = None,
                 calibration: ShardCalibration | None = None,
                 eikonal_anatomy: Any = None) -> None:
        from pipeline.monodomain.batch import initial_states_from_table, prepare_anatomy

        self.settings, self.run = settings, run
        self.device = pick_device(run.device)
        self.dtype = run.torch_dtype()
        self.prepared = prepare_anatomy(anatomy, fast_depth_mm=settings.fast_endo_depth_mm,
                                        fast_max_apicobasal=settings.fast_endo_max_apicobasal,
                                        fast_septal_max_apicobasal=(
                                            settings.fast_endo_septal_max_apicobasal),
                                        fast_face_connected=(
                                            settings.fast_endo_face_connected
                                            and settings.model == "monodomain"))
        self.initial_states = initial_states_from_table(cells)
        self.spacing = np.asarray(anatomy.spacing, dtype=np.float64)
        self.calibration: dict[str, Any] | None = None
        self.known_propagation: dict[str, Any] | None = None
        self.cv_scale = 1.0
        self.cv_scale_t: float | None = None
        self.cv_scale_fast: float | None = None
        self.eikonal: Any = None
        if settings.model == "reaction_eikonal":
            self._prepare_eikonal(eikonal_anatomy)
        elif calibration is not None or calibration_mode(settings) is not None:
            self._use_calibration(calibration or calibrate(
                settings, float(self.spacing.max()), sigma_l_reference or DEFAULT_REFERENCE[0],
                sigma_t_reference or DEFAULT_REFERENCE[1],
                sigma_fast=sigma_fast_reference or DEFAULT_REFERENCE[2]))

    def _use_calibration(self, calibration: ShardCalibration) -> None:
        """Scale the conductivities by a calibration (found here or read from a file)."""
        self.cv_scale, self.cv_scale_t = calibration.cv_scale, calibration.cv_scale_t
        self.cv_scale_fast = calibration.cv_scale_fast
        self.calibration = calibration.record
        self.known_propagation = calibration.propagation

    def _prepare_eikonal(self, fine: Any = None) -> None:
        """The eikonal solver of the anatomy (its neighbour tables), built once per shard;
        conductivities stay as sampled (CVs from :func:`~pipeline.monodomain.eikonal.
        cv_from_sigma`, no calibration). With ``fine`` (the heart on a finer grid) the
        eikonal runs there: its fast layers and stimulus balls are the fine grid's. The
        eikonal's fast layers are never face-joined (its stencil spans 26 neighbours), nor
        are the R-E+ diffusion's: the eikonal, not the face-coupled operator, carries the
        front, and the joins would add half again the layer's fast-conducting volume at
        2 mm (docs/fidelity-log.md, "Session 24")."""
        from pipeline.monodomain.batch import prepare_anatomy
        from pipeline.monodomain.eikonal import EikonalSolver

        s = self.settings
        self.eikonal_fine = fine is not None
        if fine is None:
            self.eikonal_prepared = self.prepared
        else:
            self.eikonal_prepared = prepare_anatomy(
                fine, fast_depth_mm=s.fast_endo_depth_mm,
                fast_max_apicobasal=s.fast_endo_max_apicobasal,
                fast_septal_max_apicobasal=s.fast_endo_septal_max_apicobasal,
                diffusion=False)
        grid = self.eikonal_prepared.grid
        # a grid whose voxel is no larger than the fast layer's depth resolves the layer:
        # each voxel is then a cube of its own tissue, so a hop takes the mean slowness of
        # its two voxels and the layer its own curvature correction (docs/fidelity-log.md,
        # "Session 29"); a coarser layer voxel is mostly myocardium, and keeps the hop at
        # the speed of the voxel it reaches and the layer uncorrected
        self.eikonal_resolves_layer = bool(float(np.max(grid.spacing))
                                           <= s.fast_endo_depth_mm + 1e-9)
        self.eikonal = EikonalSolver(grid.mask, grid.spacing, self.eikonal_prepared.fibre,
                                     device=self.device, dtype=self.dtype,
                                     compile=bool(fine is not None and self.run.compile),
                                     mean_slowness=self.eikonal_resolves_layer)
        log.info("reaction-eikonal: CVs from the sampled conductivities, no calibration; "
                 "eikonal on the %s grid (%g mm, %d voxels)",
                 "finer" if self.eikonal_fine else "simulation", float(np.max(grid.spacing)),
                 grid.n_tissue)

    def _activation_stimulus(self, problem: Any, rows: Sequence[SimParams]) -> Any:
        """The R-E+ drive of a batch: eikonal times -> a stimulus at every voxel.

        On a finer eikonal grid the batch's patterns are drawn there from the same rows
        (same seeds), and the times are sampled at this grid's voxel centres
        (:func:`pipeline.anatomy.grid.sample_tissue`, trilinear over tissue). With
        ``simulate.eikonal_curvature`` the times are curvature-corrected
        (:func:`pipeline.monodomain.curvature.corrected_times`: two solves).
        ``simulate.eikonal_layer_load`` gives the fast layers their loaded front speed
        (:func:`pipeline.monodomain.layer.layer_load`); ``simulate.cv_relation`` picks the
        CV-sigma relation. On an eikonal grid that resolves
        the fast layer (voxel <= ``fast_endo_depth_mm``) the hops take the mean slowness
        of their voxels and the layers their own curvature correction.

        Raises
        ------
        SimulationError
            Tissue the eikonal front never reaches (naming the simulation id).
        """
        import torch

        from pipeline.errors import SimulationError
        from pipeline.monodomain.batch import problem_from_settings
        from pipeline.monodomain.curvature import corrected_times
        from pipeline.monodomain.eikonal import problem_inputs

        fine = self.eikonal_fine
        source = problem if self.eikonal_prepared is self.prepared else problem_from_settings(
            self.eikonal_prepared, list(rows), self.settings,
            initial_states=self.initial_states)
        factor = None
        try:
            kw = {"layer_load": self.settings.eikonal_layer_load,
                  "cv_relation": self.settings.cv_relation}
            if self.settings.eikonal_curvature:
                times, factor = corrected_times(self.eikonal, source, **kw,
                                                layer_curvature=self.eikonal_resolves_layer)
            else:
                cv_l, cv_t, sources = problem_inputs(source, **kw)
                times = self.eikonal.solve(cv_l, cv_t, sources)
        except SimulationError as exc:
            ids = [r.get("sim_id") for r in problem.records]
            raise SimulationError(f"simulations {ids}: {exc}") from exc
        if factor is not None:
            for rec, f in zip(problem.records, factor.numpy()):
                p5, p50, p95 = np.percentile(f, [5, 50, 95])
                rec["eikonal_curvature"] = {"factor_p5": float(p5), "factor_p50": float(p50),
                                            "factor_p95": float(p95)}
            log.info("eikonal curvature correction: speed factor percentiles 5/50/95 "
                     "%.3f / %.3f / %.3f (all voxels of the batch)",
                     *np.percentile(factor.numpy(), [5, 50, 95]))
        if fine:
            from pipeline.anatomy.grid import sample_tissue

            g = self.eikonal_prepared.grid
            sampled = sample_tissue(g.mask, g.origin, float(np.max(g.spacing)),
                                    times.double().cpu().numpy(), self.prepared.coords.xyz)
            times = torch.as_tensor(sampled, device=self.device)
            for rec, src in zip(problem.records, source.records):
                rec["eikonal_grid"] = {"spacing_mm": float(np.max(g.spacing)),
                                       "n_tissue": int(g.n_tissue),
                                       "pattern_params": src.get("pattern_params")}
        return self._drive(times)

    def _drive(self, times: Any) -> Any:
        """The R-E+ drive (:class:`~pipeline.monodomain.stimulus.ActivationStimulus`) from
        activation times (B, n) ms, torch."""
        from pipeline.monodomain.stimulus import ActivationStimulus

        return ActivationStimulus(times.to(device=self.device, dtype=self.dtype),
                                  self.settings.stim_amplitude_pA_per_pF,
                                  self.settings.stim_duration_ms)

    def _given_stimulus(self, activation_ms: Any, batch: int) -> Any:
        """The R-E+ drive from given times (B, n) ms, checked against the batch and grid."""
        import torch

        from pipeline.errors import InputError

        times = torch.as_tensor(np.asarray(activation_ms, dtype=np.float64))
        if times.shape != (batch, self.n_tissue):
            raise InputError(f"activation_ms has shape {tuple(times.shape)}: expected "
                             f"({batch}, {self.n_tissue}), one time per simulation and "
                             "tissue voxel of this grid")
        return self._drive(times)

    def check_propagation(self, table: Any) -> str | None:
        """Warn (naming the simulation) if the shard's slowest conductivity blocks here.

        The cable of :func:`~pipeline.simulate.calibration.propagation_check` at the
        shard's smallest sigma_t (the worst case, sigma_t <= sigma_l), run before the time
        loop; skipped when the calibration file's own check found the campaign's smallest
        sigma_t conducting (CV grows with sigma), or found this very sigma_t blocking. A
        warning, not an error: in a heart the wave still reaches the tissue around the
        block (along the fibres and through the fast layer), but the activation sequence is
        distorted. The reaction-eikonal mode always propagates (no check).

        Returns
        -------
        str or None
            The warning, also logged and stored with the shard's solver attributes.
        """
        self.propagation_warning = None
        if self.eikonal is not None:
            return None
        i = int(np.argmin(table["sigma_t"].to_numpy()))
        raw = float(table["sigma_t"].iloc[i])
        known = self.known_propagation
        if known and known["cv_mm_per_ms"] is not None and known["sigma_t"] <= raw * (1 + 1e-9):
            log.info("propagation check: the calibration file's sigma_t %.3g S/m conducts at "
                     "%.3g mm/ms across the fibres, and this shard's smallest is %.3g S/m",
                     known["sigma_t"], known["cv_mm_per_ms"], raw)
            return None
        s = self.settings
        dx = float(self.spacing.max())
        if known and known["cv_mm_per_ms"] is None and abs(known["sigma_t"] - raw) <= 1e-12:
            # the file's cable ran at exactly this conductivity and blocked: the same cable
            # again would block again, after its stimulated end repolarises (13 s at 2 mm)
            found = known
        else:
            found = propagation_check(raw, self.cv_scale_t or self.cv_scale, dx, s.dt_ms,
                                      chi_per_mm=s.chi_per_mm, cm_uF_per_cm2=s.cm_uF_per_cm2)
        sigma = found["sigma_t_scaled"]
        if found["cv_mm_per_ms"] is not None:
            log.info("propagation check: sigma_t %.3g S/m conducts at %.3g mm/ms across the "
                     "fibres on this grid", sigma, found["cv_mm_per_ms"])
            return None
        self.propagation_warning = (
            f"sim_id {int(table['sim_id'].iloc[i])}: sigma_t = {raw:g} S/m (x{sigma / raw:.3g} "
            f"= {sigma:.3g} S/m) blocks across the fibres on a {dx:g} mm grid at dt "
            f"{s.dt_ms:g} ms (cable test, CV below {MIN_CV_MM_PER_MS} mm/ms): the wave must go "
            "round; use simulate.calibrate_directions, a finer grid or simulate.model: "
            "reaction_eikonal")
        log.warning("%s", self.propagation_warning)
        return self.propagation_warning

    @property
    def n_tissue(self) -> int:
        """Tissue voxels of the anatomy."""
        return int(self.prepared.grid.n_tissue)

    def solver(self, rows: Sequence[SimParams], activation_ms: Any = None) -> Any:
        """A ready :class:`MonodomainSolver` for a batch of rows (diffusion parts shared).

        ``activation_ms`` (reaction-eikonal mode only): (B, n) activation times (ms) of this
        grid's tissue voxels that drive R-E+ instead of the eikonal's, e.g. a converged
        run's map sampled here (``benchmarks/ecg_gap.py``); NaN voxels are never driven.
        """
        from pipeline.errors import InputError
        from pipeline.monodomain.batch import problem_from_settings
        from pipeline.monodomain.solver import MonodomainSolver

        problem = problem_from_settings(self.prepared, list(rows), self.settings,
                                        cv_scale=self.cv_scale, cv_scale_t=self.cv_scale_t,
                                        cv_scale_fast=self.cv_scale_fast,
                                        initial_states=self.initial_states)
        if activation_ms is not None:
            if self.eikonal is None:
                raise InputError("given activation times drive only simulate.model "
                                 f"'reaction_eikonal', not {self.settings.model!r}")
            stimulus = self._given_stimulus(activation_ms, len(rows))
        elif self.eikonal is not None:
            stimulus = self._activation_stimulus(problem, rows)
        else:
            stimulus = None
        return MonodomainSolver(problem, parts=self.prepared.parts, device=self.device,
                                dtype=self.dtype, compile=self.run.compile,
                                diffusion=self.settings.diffusion,
                                repol_threshold_mV=self.settings.repol_threshold_mV,
                                stimulus=stimulus,
                                fast_layer_source=self.settings.ecg_fast_layer_source,
                                steps_per_call=self.run.steps_per_call)

    def attrs(self, solver: Any) -> dict[str, Any]:
        """Solver settings stored with the shard (JSON-able)."""
        s = self.settings
        return {"model": s.model, "dt_ms": s.dt_ms, "duration_ms": s.duration_ms,
                "chi_per_mm": s.chi_per_mm,
                "cm_uF_per_cm2": s.cm_uF_per_cm2, "diffusion": s.diffusion,
                "dt_limit_ms": float(np.min(solver.dt_limit_ms)), "device": str(self.device),
                "dtype": str(self.dtype), "n_tissue": self.n_tissue,
                "spacing_mm": [float(x) for x in self.spacing], "cv_scale": self.cv_scale,
                "cv_scale_t": self.cv_scale_t, "cv_scale_fast": self.cv_scale_fast,
                "cv_calibration": self.calibration,
                "propagation_warning": getattr(self, "propagation_warning", None)}
