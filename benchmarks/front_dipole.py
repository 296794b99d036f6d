"""Dipole moment per cross-section area of a planar front on a 20 mm TP06 epi cable.

The monodomain at 0.1 mm (dt 0.01 ms, sigma 0.15 S/m, float64) propagates; R-E+ at 0.5, 1
and 2 mm is then driven at its activation times. Prints the dipole per area (sum of
I_m x over the cable, uA/mm) while the front crosses the middle: a planar front's is
sigma times its potential jump whatever the grid (docs/fidelity-log.md, "Session 8"). About
a minute. Usage:
    .venv/bin/python benchmarks/front_dipole.py
"""
import numpy as np
import torch
from pipeline.cell import tp06
from pipeline.monodomain.problem import Conductivities, Grid, MonodomainProblem
from pipeline.monodomain.stimulus import Stimulus, ActivationStimulus
from pipeline.monodomain.solver import MonodomainSolver
torch.set_num_threads(1)
L=20.0; SIG=0.15
def problem(dx, dt, scale=1.0):
    n=int(round(L/dx)); mask=np.ones((n,1,1),bool)
    state=tp06.initial_state("epi",dtype=torch.float64).numpy()
    stim=Stimulus(voxels=np.flatnonzero(np.arange(n)*dx<1.0), start_ms=0.0, duration_ms=2.0, amplitude=-80.0, name='x0')
    return MonodomainProblem(grid=Grid(origin=np.zeros(3),spacing=np.full(3,dx),mask=mask),
        fibre=np.tile([1.0,0,0],(n,1)), conductivities=Conductivities(sigma_l=np.array([SIG*scale]),sigma_t=np.array([SIG*scale]),sigma_fast_endo=np.array([SIG*scale]),scale=np.array([scale])),
        celltype=np.full(n,tp06.CELLTYPES['epi'],dtype=np.uint8), initial_states=np.broadcast_to(state,(1,4,state.size)).copy(),
        stimuli=((stim,),), dt_ms=dt, duration_ms=40.0)
def run(dx, dt, times=None, scale=1.0):
    p=problem(dx,dt,scale)
    stim=None
    if times is not None:
        stim=ActivationStimulus(torch.as_tensor(times[None,:]), -60.0, 2.0)
    s=MonodomainSolver(p, dtype=torch.float64, stimulus=stim)
    x=(np.arange(p.grid.n_tissue)+0.5)*dx
    out=[]
    def cb(t,v):
        im=s.current_source(v).double().numpy()[0]   # uA/mm^3
        out.append((t, float((im*x).sum()*dx), float(im.sum()*dx)))   # dipole per area (uA/mm), monopole
    r=s.run(cb, record_every=max(1,int(round(0.1/dt))))
    return r.activation_ms[0], np.array(out), x
act_f, d_f, x_f = run(0.1, 0.01)
m=(x_f>5)&(x_f<15); cv=1/np.polyfit(x_f[m],act_f[m],1)[0]
print('0.1 mm mono: CV %.3f mm/ms'%cv)
def summ(name,d):
    w=(d[:,0]>12)&(d[:,0]<22)
    print(f'{name}: dipole/area during propagation mean {d[w,1].mean():.4g} uA/mm (min {d[w,1].min():.4g} max {d[w,1].max():.4g}), net monopole {abs(d[w,2]).max():.2g}')
summ('mono 0.1', d_f)
for dx,dt in ((0.5,0.02),(1.0,0.04),(2.0,0.1)):
    n=int(round(L/dx)); xc=(np.arange(n)+0.5)*dx
    times=np.interp(xc, x_f, act_f) - 0.3
    a, d, _ = run(dx, dt, times)
    summ(f'R-E+ {dx}', d)
