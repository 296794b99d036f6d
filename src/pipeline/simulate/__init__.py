"""The simulate stage: one shard of simulations on one anatomy, measured and written.

Modules: :mod:`~pipeline.simulate.run` (check a shard's inputs, run it in batches, record
Vm and electrode potentials), :mod:`~pipeline.simulate.solver_adapter` (the shard's
anatomy and rows -> monodomain solvers), :mod:`~pipeline.simulate.shard` (the shard HDF5
file), :mod:`~pipeline.simulate.figures` (ECG, activation map, Vm traces),
:mod:`~pipeline.simulate.bench` and :mod:`~pipeline.simulate.cli` (``pipeline simulate``,
``pipeline simulate-figures``, ``pipeline bench shard``). Nothing heavy is imported here.
"""
