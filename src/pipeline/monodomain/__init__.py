"""Monodomain solver: anisotropic finite differences on voxelised hearts, TP06 cells.

Public API: :func:`~pipeline.monodomain.diffusion.assemble_parts`,
:class:`~pipeline.monodomain.problem.MonodomainProblem`,
:class:`~pipeline.monodomain.solver.MonodomainSolver`,
:func:`~pipeline.monodomain.patterns.make_pattern`,
:func:`~pipeline.monodomain.cv.calibrate_conductivity`.
"""
