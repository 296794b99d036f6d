"""Cost of the eikonal on the LLNL heart at 0.5 mm (871,643 voxels) for a batch of 8
simulations (5 patterns, sites jittered 3 mm, delays up to 10 ms), compiled local solver,
2 threads. Needs the study's 0.5 mm anatomy (results/bench/convergence/heart_mesh_0.5mm,
made by `pipeline bench convergence ... --resolution 0.5`). Usage:
    .venv/bin/python benchmarks/fine_eikonal_cost.py
"""
import time

import pandas as pd
import torch
from dataclasses import replace
from pipeline.anatomy.io import read_anatomy
from pipeline.monodomain.batch import prepare_anatomy, problem_from_settings
from pipeline.monodomain.eikonal import EikonalSolver, problem_inputs
from pipeline.settings import SimulateSettings
from pipeline.params import rows
from pipeline.simulate.convergence import STUDY_ROW
torch.set_num_threads(2)
a = read_anatomy('results/bench/convergence/heart_mesh_0.5mm/anatomy.h5')
s = replace(SimulateSettings.defaults(), model='reaction_eikonal')
t0=time.perf_counter(); prep = prepare_anatomy(a, diffusion=False); t1=time.perf_counter()
pats=['normal','lbbb','rbbb','rv_apex','lv_lateral','normal','lbbb','normal']
table = pd.DataFrame([{"sim_id": i, "anatomy": str(a.name), "pattern": p, **{**STUDY_ROW, 'seed': 100+i, 'site_jitter_mm': 3.0, 'site_delay_max_ms': 10.0}} for i, p in enumerate(pats)])
prob = problem_from_settings(prep, rows(table), s)
cv_l, cv_t, src = problem_inputs(prob)
eik = EikonalSolver(prep.grid.mask, prep.grid.spacing, prep.fibre, compile=True)
t2=time.perf_counter()
eik.solve(cv_l[:1], cv_t[:1], src[:1])  # compile + 1 sim
t3=time.perf_counter()
eik.solve(cv_l, cv_t, src)
t4=time.perf_counter()
print(f'prepare {t1-t0:.1f} s; first solve (compile + 1 sim) {t3-t2:.1f} s; 8 sims {t4-t3:.1f} s ({(t4-t3)/8:.1f} s per sim), sweeps {eik.last_sweeps}, updates/voxel {eik.last_updates/8/prep.grid.n_tissue:.1f}')
