"""Biventricular anatomies: voxel hearts with coordinates, fibres, points and electrodes.

Public API: :func:`build_parametric`, :func:`build_mesh` (one heart -> :class:`Anatomy`),
:func:`read_anatomy` / :func:`write_anatomy` (``anatomy.h5``), :func:`write_vtu`,
:data:`POINT_NAMES`, :data:`ELECTRODE_NAMES`. Submodules: ``parametric``, ``mesh``,
``voxelise``, ``laplace``, ``coords``, ``fibres``, ``points``, ``electrodes``, ``io``,
``render``, ``build``, ``cli``.
"""

from __future__ import annotations

from pipeline.lazy import lazy_exports

#: Public names and the submodules they come from (imported on first use).
_EXPORTS = {
    "Anatomy": "pipeline.anatomy.io",
    "ELECTRODE_NAMES": "pipeline.anatomy.electrodes",
    "POINT_NAMES": "pipeline.anatomy.points",
    "build_mesh": "pipeline.anatomy.build",
    "build_parametric": "pipeline.anatomy.build",
    "read_anatomy": "pipeline.anatomy.io",
    "write_anatomy": "pipeline.anatomy.io",
    "write_vtu": "pipeline.anatomy.io",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
