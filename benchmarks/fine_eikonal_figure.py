"""docs/figures/fine_eikonal_session8.png: per-point activation error of R-E+ at 2 mm against the
0.5 mm monodomain (each run sampled at the reference's 75 point positions), eikonal on the
2 mm grid vs on the heart at 0.5 mm. From the study's run cache (results/bench/convergence),
filled by (both hearts; the 0.5 mm references take about 35 and 50 min):
    pipeline bench convergence --heart param000 ../shared/data/anatomy/cardiac_ml_heart/heart_mesh.vtk \
        --resolution 2 0.5 --model monodomain reaction_eikonal --pattern normal lbbb \
        --duration 450 [--eikonal-resolution 0.5]
Usage: .venv/bin/python benchmarks/fine_eikonal_figure.py
"""
import numpy as np
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from pathlib import Path
from pipeline.anatomy.io import read_anatomy
from pipeline.simulate.convergence import at_reference_points
F=Path('results/bench/convergence')
fig,axes=plt.subplots(2,2,figsize=(12,6),sharex=True)
for r,(heart,stem) in enumerate((('LLNL heart','heart_mesh'),('parametric heart 0','param000'))):
    ref=np.load(F/f'{stem}_0.5mm_monodomain_450ms.npz')
    names=read_anatomy(F/f'{stem}_0.5mm'/'anatomy.h5').point_names
    for c,p in enumerate(('normal','lbbb')):
        ax=axes[r,c]
        for f,lab,st in ((f'{stem}_2mm_reaction_eikonal_450ms.npz','eikonal on the 2 mm grid','s'),
                         (f'{stem}_2mm_reaction_eikonal_eik0.5mm_450ms.npz','eikonal on the heart at 0.5 mm','^')):
            z=np.load(F/f)
            act,_=at_reference_points(F, stem, 2.0, 0.5, z[f'{p}/map'])
            d=act-ref[f'{p}/act']
            ax.plot(np.arange(1,76),d,st,ms=4,label=f'{lab}: MAE {np.nanmean(np.abs(d)):.2f} ms, max {np.nanmax(np.abs(d)):.1f} ms')
        rv=[i+1 for i,n in enumerate(names) if 'RV' in str(n)]
        for i in rv: ax.axvspan(i-0.5,i+0.5,color='0.9',zorder=0)
        ax.axhline(0,color='k',lw=0.5); ax.grid(alpha=0.3)
        ax.set_title(f'{heart}, {p}: R-E+ at 2 mm minus 0.5 mm monodomain (grey: RV points)',fontsize=9)
        ax.legend(fontsize=7); ax.set_ylabel('activation error (ms)')
for ax in axes[1]: ax.set_xlabel('recording point (1-75)')
fig.tight_layout(); fig.savefig('docs/figures/fine_eikonal_session8.png',dpi=110)
