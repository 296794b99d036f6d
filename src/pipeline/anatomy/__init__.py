"""Biventricular anatomies: voxel hearts with coordinates, fibres, points and electrodes.

Public API: :func:`build_parametric`, :func:`build_mesh` (one heart -> :class:`Anatomy`),
:func:`read_anatomy` / :func:`write_anatomy` (``anatomy.h5``), :func:`write_vtu`,
:data:`POINT_NAMES`, :data:`ELECTRODE_NAMES`. Submodules: ``parametric``, ``mesh``,
``voxelise``, ``laplace``, ``coords``, ``fibres``, ``points``, ``electrodes``, ``io``,
``render``, ``build``, ``cli``.
"""

from pipeline.anatomy.build import build_mesh, build_parametric
from pipeline.anatomy.electrodes import ELECTRODE_NAMES
from pipeline.anatomy.io import Anatomy, read_anatomy, write_anatomy, write_vtu
from pipeline.anatomy.points import POINT_NAMES

__all__ = ["Anatomy", "ELECTRODE_NAMES", "POINT_NAMES", "build_mesh", "build_parametric",
           "read_anatomy", "write_anatomy", "write_vtu"]
