"""R-E+ on the LLNL heart at 2 mm with and without the fast layers' conductivity in the
diffusion and the ECG source (the eikonal keeps the fast layers' CV).

An experiment, not a pipeline option: ``nofast`` replaces the shard solver's problem by one
with the fast layers switched off after the eikonal drive is made. Prints the QRS and T
peak-to-peak ratios and lead correlations against the 0.5 mm monodomain of the study's
cache (docs/fidelity-log.md, "Session 8"). Usage (about a minute each):
    .venv/bin/python benchmarks/fast_layer_source.py base
    .venv/bin/python benchmarks/fast_layer_source.py nofast
"""
import sys

import numpy as np
from dataclasses import replace
from pathlib import Path
from pipeline.settings import RunSettings, SimulateSettings
from pipeline.simulate import solver_adapter
from pipeline.simulate.convergence import simulate_fixed
def solver(self, rows):
    from pipeline.monodomain.batch import problem_from_settings
    from pipeline.monodomain.solver import MonodomainSolver
    problem = problem_from_settings(self.prepared, list(rows), self.settings, initial_states=self.initial_states)
    stimulus = self._activation_stimulus(problem, rows)
    p2 = replace(problem, fast_enabled=np.zeros_like(problem.fast_enabled))
    return MonodomainSolver(p2, parts=self.prepared.parts, device=self.device, dtype=self.dtype, compile=self.run.compile,
                            diffusion=self.settings.diffusion, repol_threshold_mV=self.settings.repol_threshold_mV, stimulus=stimulus)
if sys.argv[1] == 'nofast':
    solver_adapter.ShardSolver.solver = solver
F=Path('results/bench/convergence')
settings = replace(SimulateSettings.defaults(), dt_ms=0.1, duration_ms=450.0, record_every_ms=1.0, save_activation_map=True)
run = RunSettings(device='cpu', dtype='float32', compile=True, batch_size=8, threads=2)
d = simulate_fixed(F/'heart_mesh_2mm', 'reaction_eikonal', ['normal','lbbb'], settings, run)
ref=np.load(F/'heart_mesh_0.5mm_monodomain_450ms.npz')
for i,p in enumerate(('normal','lbbb')):
    e=d.ecg[i]; r=ref[p+'/ecg']
    q=np.ptp(e[:,:110 if p=='normal' else 160],axis=1)/np.ptp(r[:,:110 if p=='normal' else 160],axis=1)
    t=np.ptp(e[:,200:],axis=1)/np.ptp(r[:,200:],axis=1)
    c=[np.corrcoef(a,b)[0,1] for a,b in zip(e,r)]
    print(sys.argv[1], p, 'QRS ratio', np.round(q,2), 'median %.2f'%np.median(q), '| T median %.2f'%np.median(t), '| corr min %.2f median %.2f'%(min(c), np.median(c)))
