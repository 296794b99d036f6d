"""The electrodes' weights over a shard's tissue voxels (the pseudo-ECG's lead field).

:func:`pseudo_ecg` gives one set of weights ``(E, n)`` for an anatomy in
``simulate.ecg_medium`` and an optional heart pose; :class:`ShardLeadField` gives a
shard's simulations theirs, a batch at a time: one set for all when no pose is drawn,
else one per distinct pose, computed before the time loop (so a pose the torso cannot
hold fails first) and kept in an unnamed temporary file, not in memory. A 60-simulation
shard of a 0.5 mm heart with poses would otherwise hold 60 x 10 x 1.2e6 x 8 B = 5.6 GB
on the host, and as much on the GPU.
"""

from __future__ import annotations

import logging
import tempfile
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import InputError
from pipeline.params import HeartPose, poses
from pipeline.settings import SimulateSettings
from pipeline.signals.ecg import PseudoECG

log = logging.getLogger(__name__)


def pseudo_ecg(anatomy: Any, settings: SimulateSettings,
               pose: HeartPose | None = None) -> PseudoECG:
    """The electrodes' weights over the anatomy's voxels in ``simulate.ecg_medium``: the
    infinite medium at the anatomy's electrodes, or the bounded torso
    (:func:`pipeline.signals.torso.torso_pseudo_ecg`) with the body-frame sites of
    :mod:`pipeline.anatomy.electrodes`.

    With a ``pose`` (:class:`pipeline.params.HeartPose`) the heart turns about its centre
    (the tissue centroid) in the body frame; in the torso it may also shift, and the torso
    scale. In the infinite medium the electrodes turn the other way about the heart's
    centre, at their distances: the heart's frame ``x`` maps to the body as
    ``R (x - c)``, the turned heart as ``T R (x - c)``, so an electrode ``e`` is seen at
    ``c + R^T T^T R (e - c)``.
    """
    from pipeline.anatomy.electrodes import BODY_HEART_CENTRE, BODY_SITES

    pose = pose or HeartPose()
    if settings.ecg_medium == "torso":
        from pipeline.signals.torso import torso_pseudo_ecg

        return torso_pseudo_ecg(anatomy, settings.sigma_bath_S_per_m, BODY_SITES,
                                BODY_HEART_CENTRE, pose=pose)
    if settings.ecg_medium != "infinite":
        raise InputError(f"simulate.ecg_medium {settings.ecg_medium!r}: expected 'infinite' "
                         "or 'torso'")
    if pose.moves_in_torso:
        raise InputError(f"heart {anatomy.name}: a heart shift or torso scale ({pose}) needs "
                         "simulate.ecg_medium 'torso'")
    if not pose.rotates:
        return PseudoECG.from_anatomy(anatomy, settings.sigma_bath_S_per_m)
    from pipeline.signals.torso import pose_from_electrodes

    centre = anatomy.centres().mean(axis=0)
    directions = BODY_SITES - BODY_HEART_CENTRE
    directions = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    try:
        body = pose_from_electrodes(centre, anatomy.electrode_xyz, directions)
    except ValueError as exc:
        raise InputError(f"heart {anatomy.name}: heart_rot_*_deg: {exc}") from exc
    seen = body.T @ pose.rotation().T @ body
    xyz = centre + (np.asarray(anatomy.electrode_xyz, np.float64) - centre) @ seen.T
    names = tuple(str(n) for n in anatomy.electrode_names)
    return PseudoECG.from_grid(anatomy.mask, anatomy.origin, anatomy.spacing, xyz,
                               settings.sigma_bath_S_per_m, names)


class ShardLeadField:
    """The electrodes' weights of every simulation of a shard, read a batch at a time.

    Parameters
    ----------
    anatomy
        :class:`pipeline.anatomy.io.Anatomy`.
    settings
        The ``simulate`` section (``ecg_medium``, ``sigma_bath_S_per_m``).
    table
        The shard's parameter table; its pose columns (:data:`pipeline.params.
        POSE_COLUMNS`), if any, give each simulation's :class:`~pipeline.params.HeartPose`.

    Attributes
    ----------
    electrode_names
        Names of the weights' rows.
    n_tissue
        Tissue voxels the weights cover.
    n_sets
        Weight sets computed: 1 without poses, else the number of distinct poses.
    electrode_xyz
        Where the electrodes record (mm): ``(E, 3)`` for all, ``(N, E, 3)`` per simulation
        with poses, or None when unknown.

    Use it as a context manager (or call :meth:`close`) to free the temporary file.
    """

    def __init__(self, anatomy: Any, settings: SimulateSettings, table: pd.DataFrame):
        drawn = poses(table)
        self._file: Any = None
        self._index: np.ndarray | None = None
        if drawn is None:
            first = pseudo_ecg(anatomy, settings)
            self._weights: np.ndarray = first.weights
            xyz = first.electrode_xyz
            self.n_sets = 1
        else:
            distinct = list(dict.fromkeys(drawn))
            slot = {pose: u for u, pose in enumerate(distinct)}
            self._index = np.array([slot[p] for p in drawn], dtype=np.int64)
            first = pseudo_ecg(anatomy, settings, distinct[0])
            shape = (len(distinct), *first.weights.shape)
            self._file = _reserved_file(int(np.prod(shape)) * 8)
            self._weights = np.memmap(self._file, dtype=np.float64, mode="w+", shape=shape)
            sites = []
            try:
                for u, pose in enumerate(distinct):
                    pecg = first if u == 0 else pseudo_ecg(anatomy, settings, pose)
                    self._weights[u] = pecg.weights
                    sites.append(pecg.electrode_xyz)
            except BaseException:
                self.close()
                raise
            self._weights.flush()
            xyz = (None if any(x is None for x in sites)
                   else np.stack(sites)[self._index])
            self.n_sets = len(distinct)
            log.info("lead field: %d poses, %d distinct, %.0f MB in a temporary file",
                     len(drawn), len(distinct), self._weights.nbytes / 2**20)
        self.electrode_names = first.electrode_names
        self.n_tissue = first.n_tissue
        self.electrode_xyz = xyz
        self._on_device: dict[str, Any] = {}

    def weights(self, start: int, stop: int) -> np.ndarray:
        """float64 weights of simulations ``start:stop``: ``(E, n)`` shared by all, or
        ``(stop - start, E, n)``, one set per simulation (a copy in memory)."""
        if self._index is None:
            return self._weights
        return np.asarray(self._weights[self._index[start:stop]])

    def tensor(self, start: int, stop: int, device: Any) -> Any:
        """:meth:`weights` as a float64 torch tensor on ``device`` (the shared set is moved
        once)."""
        import torch

        if self._index is None:
            if str(device) not in self._on_device:
                self._on_device[str(device)] = torch.as_tensor(
                    self._weights, dtype=torch.float64, device=device)
            return self._on_device[str(device)]
        return torch.as_tensor(self.weights(start, stop), dtype=torch.float64, device=device)

    def close(self) -> None:
        """Free the temporary file (the weights can no longer be read)."""
        if self._file is not None:
            self._weights = None   # type: ignore[assignment]
            self._file.close()
            self._file = None

    def __enter__(self) -> ShardLeadField:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _reserved_file(nbytes: int) -> Any:
    """An unnamed temporary file (in ``TMPDIR``) with ``nbytes`` reserved on disk, so that
    a full disk is an error here, not a bus error when the memory map is written."""
    import os

    f = tempfile.TemporaryFile(prefix="lead_field_")
    try:
        os.posix_fallocate(f.fileno(), 0, nbytes)
    except OSError as exc:
        f.close()
        raise OSError(exc.errno, f"no room for the lead field's {nbytes / 2**20:.0f} MB "
                                 f"in {tempfile.gettempdir()} (TMPDIR): {exc.strerror}") from exc
    return f
