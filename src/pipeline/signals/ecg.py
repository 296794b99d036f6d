"""Pseudo-ECG in an infinite homogeneous medium (Gima & Rudy 2002).

The potential at an electrode at :math:`\\mathbf{x}_e` is the volume integral of the
transmembrane current source density :math:`I_m = \\nabla\\cdot(\\sigma\\nabla V_m)`
over the tissue, divided by :math:`4\\pi\\sigma_b r`:

.. math::

    \\phi_e = \\frac{1}{4\\pi\\sigma_b}\\int_{\\Omega} \\frac{\\nabla\\cdot(\\sigma\\nabla V_m)}
              {\\lvert \\mathbf{x}_e - \\mathbf{x} \\rvert}\\,dV
            = \\frac{1}{4\\pi\\sigma_b}\\int_{\\Omega} \\sigma\\nabla V_m \\cdot
              \\nabla_{\\mathbf{x}} \\frac{1}{r}\\;(-1)\\,dV ,

the second form (Gima & Rudy's) following by parts with zero flux through the tissue
boundary. On the voxel grid the integral is the midpoint rule, so every electrode has one
weight per tissue voxel,

.. math::

    w_{e,v} = \\frac{\\Delta V}{4\\pi\\sigma_b\\,\\lvert \\mathbf{x}_e - \\mathbf{x}_v \\rvert},

computed once; a recorded sample is the matrix product ``phi = I_m @ W.T``.

Units: with :math:`\\sigma` in S/m (= mS/mm), :math:`V_m` in mV and lengths in mm, the
source :math:`I_m` is in uA/mm^3; :math:`\\Delta V` in mm^3, :math:`\\sigma_b` in S/m and r
in mm give weights in mm^3/mS (mV per uA/mm^3) and potentials in mV, with no extra factor.

Reference: Gima K, Rudy Y. Ionic current basis of electrocardiographic waveforms: a model
study. Circ Res 2002;90:889-896 (eq. 1).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.signals.leads import ELECTRODE_NAMES

log = logging.getLogger(__name__)


def pseudo_ecg_weights(tissue_xyz: np.ndarray, electrode_xyz: np.ndarray,
                       voxel_volume_mm3: float, sigma_b: float) -> np.ndarray:
    """Weights of every electrode over the tissue voxels, float64 ``(n_electrodes, n_tissue)``.

    Parameters
    ----------
    tissue_xyz
        Voxel centres, ``(n_tissue, 3)`` mm.
    electrode_xyz
        Electrode positions, ``(n_electrodes, 3)`` mm.
    voxel_volume_mm3
        Volume of one voxel (mm^3).
    sigma_b
        Conductivity of the homogeneous medium (S/m).

    Returns
    -------
    numpy.ndarray
        ``w[e, v] = dV / (4 pi sigma_b r_ev)`` in mm^3/mS: ``phi_e [mV] = sum_v w[e, v] I_m[v]``
        with ``I_m`` in uA/mm^3.

    Raises
    ------
    ValueError
        On non-positive ``sigma_b`` or volume, wrong shapes, or an electrode closer to a
        voxel centre than half a voxel (the midpoint rule breaks down there).
    """
    tissue_xyz = np.asarray(tissue_xyz, dtype=np.float64)
    electrode_xyz = np.asarray(electrode_xyz, dtype=np.float64)
    if sigma_b <= 0 or voxel_volume_mm3 <= 0:
        raise ValueError(f"sigma_b ({sigma_b} S/m) and the voxel volume ({voxel_volume_mm3} mm^3) "
                         "must be positive")
    if tissue_xyz.ndim != 2 or tissue_xyz.shape[1] != 3:
        raise ValueError(f"tissue_xyz must have shape (n_tissue, 3), got {tissue_xyz.shape}")
    if electrode_xyz.ndim != 2 or electrode_xyz.shape[1] != 3:
        raise ValueError(f"electrode_xyz must have shape (n_electrodes, 3), got {electrode_xyz.shape}")
    weights = np.empty((electrode_xyz.shape[0], tissue_xyz.shape[0]), dtype=np.float64)
    h = voxel_volume_mm3 ** (1.0 / 3.0)
    for e, xe in enumerate(electrode_xyz):
        r = np.sqrt(((tissue_xyz - xe) ** 2).sum(axis=1))
        if r.size and r.min() < 0.5 * h:
            raise ValueError(f"electrode {e} at {xe.tolist()} mm lies {r.min():.3g} mm from a "
                             "tissue voxel centre; the pseudo-ECG needs electrodes outside the tissue")
        weights[e] = voxel_volume_mm3 / (4.0 * math.pi * sigma_b * r)
    return weights


@dataclass(frozen=True)
class PseudoECG:
    """Electrode weights over the tissue voxels of one anatomy; maps I_m to potentials.

    Attributes
    ----------
    weights
        float64 ``(n_electrodes, n_tissue)`` in mm^3/mS (see :func:`pseudo_ecg_weights`), or
        ``(n_simulations, n_electrodes, n_tissue)``: one set per simulation (a heart pose
        per simulation, ``pipeline.simulate.lead_field.ShardLeadField``).
    electrode_names
        Names in the order of the weights' rows.
    sigma_b
        Conductivity of the medium (S/m).
    medium
        ``infinite`` or ``torso`` (``simulate.ecg_medium``).
    electrode_xyz
        Where the electrodes record, ``(n_electrodes, 3)`` mm (``(n_simulations,
        n_electrodes, 3)`` with per-simulation weights), when known.
    """

    weights: np.ndarray
    electrode_names: tuple[str, ...] = ELECTRODE_NAMES
    sigma_b: float = 0.2
    medium: str = "infinite"
    electrode_xyz: np.ndarray | None = None

    @classmethod
    def from_grid(cls, mask: np.ndarray, origin: np.ndarray, spacing: np.ndarray,
                  electrode_xyz: np.ndarray, sigma_b: float,
                  electrode_names: tuple[str, ...] = ELECTRODE_NAMES) -> PseudoECG:
        """Weights for the tissue voxels of ``mask`` in C order (``numpy.nonzero`` order).

        Parameters
        ----------
        mask
            bool ``(nx, ny, nz)``; voxel ``[i, j, k]`` is centred at ``origin + ijk * spacing``.
        origin, spacing
            ``(3,)`` mm.
        electrode_xyz
            ``(n_electrodes, 3)`` mm.
        sigma_b
            Conductivity of the medium (S/m).
        """
        ijk = np.argwhere(np.asarray(mask, dtype=bool))
        spacing = np.asarray(spacing, dtype=np.float64)
        xyz = np.asarray(origin, dtype=np.float64) + ijk * spacing
        weights = pseudo_ecg_weights(xyz, electrode_xyz, float(np.prod(spacing)), sigma_b)
        log.debug("pseudo-ECG weights: %d electrodes x %d voxels", *weights.shape)
        return cls(weights=weights, electrode_names=tuple(electrode_names), sigma_b=float(sigma_b),
                   electrode_xyz=np.asarray(electrode_xyz, dtype=np.float64))

    @classmethod
    def from_anatomy(cls, anatomy: Any, sigma_b: float) -> PseudoECG:
        """Weights for an :class:`pipeline.anatomy.io.Anatomy` (its mask, grid and electrodes),
        in the infinite medium (a bounded torso: :func:`pipeline.signals.torso.torso_pseudo_ecg`).
        """
        names = tuple(str(n) for n in anatomy.electrode_names)
        return cls.from_grid(anatomy.mask, anatomy.origin, anatomy.spacing,
                             anatomy.electrode_xyz, sigma_b, names)

    @property
    def n_tissue(self) -> int:
        """Number of tissue voxels the weights cover."""
        return int(self.weights.shape[-1])

    def as_tensor(self, dtype: Any = None, device: Any = None) -> Any:
        """The weights as a torch tensor of their shape (float64 unless told)."""
        import torch

        return torch.as_tensor(self.weights, dtype=dtype or torch.float64, device=device)

    def __call__(self, source: Any) -> np.ndarray:
        """Electrode potentials (mV) from source densities.

        Parameters
        ----------
        source
            ``I_m`` in uA/mm^3, numpy or torch, ``(..., n_tissue)``; with per-simulation
            weights ``(n_simulations, ..., n_tissue)``.

        Returns
        -------
        numpy.ndarray
            float64 ``(..., n_electrodes)`` mV.
        """
        if hasattr(source, "detach"):
            source = source.detach().to("cpu").double().numpy()
        source = np.asarray(source, dtype=np.float64)
        if source.shape[-1] != self.n_tissue:
            raise ValueError(f"source has {source.shape[-1]} voxels, the weights {self.n_tissue}")
        if self.weights.ndim == 3:
            return np.einsum("b...n,ben->b...e", source, self.weights)
        return source @ self.weights.T


def dipole_potential(p: np.ndarray, x_dipole: np.ndarray, x_field: np.ndarray,
                     sigma_b: float) -> np.ndarray:
    """Closed-form potential of a current dipole in an infinite medium (mV).

    ``phi = p . (x - x0) / (4 pi sigma_b |x - x0|^3)``.

    Parameters
    ----------
    p
        Dipole moment ``(3,)`` in uA*mm.
    x_dipole
        Its position ``(3,)`` mm.
    x_field
        Field points ``(n, 3)`` mm.
    sigma_b
        Conductivity (S/m).
    """
    d = np.asarray(x_field, dtype=np.float64) - np.asarray(x_dipole, dtype=np.float64)
    r = np.linalg.norm(d, axis=-1)
    return (d @ np.asarray(p, dtype=np.float64)) / (4.0 * math.pi * sigma_b * r ** 3)


def rectangle_solid_angle(half_a: float, half_b: float, distance: np.ndarray) -> np.ndarray:
    """Solid angle (sr) of a ``2a x 2b`` rectangle seen from a point on its axis.

    ``Omega = 4 arcsin(a b / sqrt((a^2 + d^2) (b^2 + d^2)))``, signed like ``distance``.
    A uniform double layer of strength ``sigma dV`` on that rectangle (a thin planar
    wavefront with a jump ``dV`` of Vm) gives the potential
    ``phi = sigma dV Omega / (4 pi sigma_b)``.
    """
    d = np.asarray(distance, dtype=np.float64)
    a2, b2 = half_a ** 2, half_b ** 2
    omega = 4.0 * np.arcsin(half_a * half_b / np.sqrt((a2 + d ** 2) * (b2 + d ** 2)))
    return np.sign(d) * omega
