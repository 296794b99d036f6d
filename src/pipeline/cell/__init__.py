"""TP06 cardiac cell model (ten Tusscher & Panfilov 2006), single-cell pacing, steady states.

Modules: :mod:`~pipeline.cell.tp06` (constants, parameters, the pure ``step``),
:mod:`~pipeline.cell.pacing` (batched pacing with fused multi-step compiled calls),
:mod:`~pipeline.cell.beat` (APD and other figures of a beat),
:mod:`~pipeline.cell.steady` (steady states, ``initial_states.h5`` read/write, lookup),
:mod:`~pipeline.cell.cli` (``pipeline cell``, ``pipeline cells``, ``pipeline bench cell``),
:mod:`~pipeline.cell.bench`. Nothing heavy is imported here, so ``pipeline --help`` stays fast.
"""
