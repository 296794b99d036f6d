"""The ten electrode potentials and the twelve standard leads derived from them.

Electrodes, in this order (DESIGN.md section 5): ``RA, LA, LL, RL, V1 .. V6``. With
Wilson's central terminal :math:`W = (RA + LA + LL) / 3` the leads are

.. math::

    I = LA - RA,\\quad II = LL - RA,\\quad III = LL - LA,\\\\
    aVR = \\tfrac32 (RA - W),\\quad aVL = \\tfrac32 (LA - W),\\quad aVF = \\tfrac32 (LL - W),\\\\
    V_i = V_i^{electrode} - W .

The right-leg electrode ``RL`` is the ground of a real recorder and enters no lead.
Every quantity is in mV; arrays carry any leading batch shape and time last.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Electrode order of every file (DESIGN.md section 5).
ELECTRODE_NAMES: tuple[str, ...] = ("RA", "LA", "LL", "RL", "V1", "V2", "V3", "V4", "V5", "V6")
#: Lead order of every file (DESIGN.md section 5).
LEAD_NAMES: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF",
                               "V1", "V2", "V3", "V4", "V5", "V6")
N_ELECTRODES = len(ELECTRODE_NAMES)
N_LEADS = len(LEAD_NAMES)


@dataclass(frozen=True)
class ElectrodePotentials:
    """Potentials of the ten electrodes (mV), each of shape ``(*batch, T)``.

    Build one from a stacked array with :meth:`from_array`; the twelve leads are
    computed properties (``rec.I``, ``rec.aVF``, ``rec.V1`` ...) and :meth:`leads`
    stacks them in :data:`LEAD_NAMES` order.
    """

    RA: np.ndarray
    LA: np.ndarray
    LL: np.ndarray
    RL: np.ndarray
    V1_electrode: np.ndarray
    V2_electrode: np.ndarray
    V3_electrode: np.ndarray
    V4_electrode: np.ndarray
    V5_electrode: np.ndarray
    V6_electrode: np.ndarray

    @classmethod
    def from_array(cls, potentials: Any, axis: int = -2) -> ElectrodePotentials:
        """Split a stacked array of potentials along ``axis`` (length 10, ELECTRODE_NAMES order).

        Parameters
        ----------
        potentials
            Array-like ``(*batch, 10, T)`` in mV (or the electrode axis elsewhere).
        axis
            The electrode axis.

        Raises
        ------
        ValueError
            If that axis does not have length 10.
        """
        arr = np.asarray(potentials)
        if arr.ndim == 0 or arr.shape[axis] != N_ELECTRODES:
            raise ValueError(f"electrode axis {axis} of shape {arr.shape} must have length "
                             f"{N_ELECTRODES} ({', '.join(ELECTRODE_NAMES)})")
        parts = [np.take(arr, i, axis=axis) for i in range(N_ELECTRODES)]
        return cls(*parts)

    def to_array(self, axis: int = -2) -> np.ndarray:
        """The ten potentials stacked along ``axis`` in ELECTRODE_NAMES order, ``(*batch, 10, T)``."""
        return np.stack([getattr(self, f.name) for f in self.__dataclass_fields__.values()],
                        axis=axis)

    # ------------------------------------------------------------------ terminal
    @property
    def wilson(self) -> np.ndarray:
        """Wilson's central terminal W = (RA + LA + LL) / 3 (mV)."""
        return (self.RA + self.LA + self.LL) / 3.0

    # ------------------------------------------------------------------ limb leads
    @property
    def I(self) -> np.ndarray:  # noqa: E743 - the lead's clinical name
        """Lead I = LA - RA (mV)."""
        return self.LA - self.RA

    @property
    def II(self) -> np.ndarray:
        """Lead II = LL - RA (mV)."""
        return self.LL - self.RA

    @property
    def III(self) -> np.ndarray:
        """Lead III = LL - LA (mV)."""
        return self.LL - self.LA

    @property
    def aVR(self) -> np.ndarray:
        """Augmented lead aVR = 1.5 (RA - W) (mV)."""
        return 1.5 * (self.RA - self.wilson)

    @property
    def aVL(self) -> np.ndarray:
        """Augmented lead aVL = 1.5 (LA - W) (mV)."""
        return 1.5 * (self.LA - self.wilson)

    @property
    def aVF(self) -> np.ndarray:
        """Augmented lead aVF = 1.5 (LL - W) (mV)."""
        return 1.5 * (self.LL - self.wilson)

    # ------------------------------------------------------------------ precordial leads
    @property
    def V1(self) -> np.ndarray:
        """Precordial lead V1 = V1 electrode - W (mV)."""
        return self.V1_electrode - self.wilson

    @property
    def V2(self) -> np.ndarray:
        """Precordial lead V2 (mV)."""
        return self.V2_electrode - self.wilson

    @property
    def V3(self) -> np.ndarray:
        """Precordial lead V3 (mV)."""
        return self.V3_electrode - self.wilson

    @property
    def V4(self) -> np.ndarray:
        """Precordial lead V4 (mV)."""
        return self.V4_electrode - self.wilson

    @property
    def V5(self) -> np.ndarray:
        """Precordial lead V5 (mV)."""
        return self.V5_electrode - self.wilson

    @property
    def V6(self) -> np.ndarray:
        """Precordial lead V6 (mV)."""
        return self.V6_electrode - self.wilson

    def lead(self, name: str) -> np.ndarray:
        """One lead by its name in :data:`LEAD_NAMES`; an unknown name raises ``ValueError``."""
        if name not in LEAD_NAMES:
            raise ValueError(f"unknown lead {name!r}; expected one of {', '.join(LEAD_NAMES)}")
        return getattr(self, name)

    def leads(self, axis: int = -2) -> np.ndarray:
        """The twelve leads stacked along ``axis`` in LEAD_NAMES order, ``(*batch, 12, T)`` mV."""
        return np.stack([getattr(self, name) for name in LEAD_NAMES], axis=axis)


def leads_from_electrodes(potentials: Any, axis: int = -2) -> np.ndarray:
    """Twelve leads ``(*batch, 12, T)`` from electrode potentials ``(*batch, 10, T)`` (mV)."""
    return ElectrodePotentials.from_array(potentials, axis=axis).leads(axis=axis)


def lead_matrix() -> np.ndarray:
    """The linear map from the 10 electrodes to the 12 leads, float64 ``(12, 10)``.

    ``leads = lead_matrix() @ electrodes`` reproduces :meth:`ElectrodePotentials.leads`;
    useful to apply the map inside a tensor pipeline.
    """
    return leads_from_electrodes(np.eye(N_ELECTRODES), axis=0)
