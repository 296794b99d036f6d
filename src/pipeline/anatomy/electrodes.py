"""The ten ECG electrodes (DESIGN.md section 5), 100 mm from the heart's centre.

Directions come from standard electrode sites on an adult torso in a right-handed body
frame (x to the patient's right, y anterior, z superior; mm, origin mid-sternum at the
4th intercostal space): precordial V1-V6 (V1/V2 4th intercostal space right/left of
the sternum, V4 5th space midclavicular line, V3 between V2 and V4, V5 anterior and V6
mid-axillary line at the level of V4) and the limb electrodes at their Mason-Likar torso
positions (RA, LA below the clavicles; LL, RL above the iliac crests; Mason & Likar,
Am Heart J 71:196, 1966). The heart sits left of the midline behind the sternum, its
long axis (base -> apex) pointing left, anterior and inferior.

Each heart is posed in that body frame by the rotation taking its own axes (LV long axis
apex -> base, septal direction LV -> RV, anterior = long x septal) to the body-frame
axes below, and each electrode is put at ``centre + radius * R^T direction``.

The contract puts all ten 100 mm from the centre. The precordial sites lie 70-127 mm from
the body-frame heart centre, so for them 100 mm is close to a patient's geometry; the limb
sites lie 222-398 mm away, and at 100 mm RA and LA sit in the near field of the base.
Wilson's terminal, built from them, then carries that near field into every precordial
lead. ``limb_radius_mm="torso"`` puts RA, LA, LL, RL at their own body-frame distances
instead (docs/fidelity-log.md, "Session 16: the limb electrodes' near field").
"""

from __future__ import annotations

import numpy as np

from pipeline.anatomy.coords import Frame
from pipeline.errors import InputError
from pipeline.signals.leads import ELECTRODE_NAMES  # noqa: F401 (re-exported)


#: Electrode sites in the body frame (mm): x right, y anterior, z superior.
BODY_SITES = np.array([
    [150.0, -20.0, 150.0],    # RA: right infraclavicular fossa (Mason-Likar)
    [-150.0, -20.0, 150.0],   # LA: left infraclavicular fossa
    [-110.0, -30.0, -400.0],  # LL: left anterior axillary line above the iliac crest
    [110.0, -30.0, -400.0],   # RL: right, likewise
    [25.0, 0.0, 0.0],         # V1: 4th ICS, right sternal border
    [-25.0, 0.0, 0.0],        # V2: 4th ICS, left sternal border
    [-55.0, -5.0, -20.0],     # V3: between V2 and V4
    [-85.0, -15.0, -40.0],    # V4: 5th ICS, midclavicular line
    [-125.0, -50.0, -40.0],   # V5: anterior axillary line, level of V4
    [-150.0, -110.0, -40.0],  # V6: mid-axillary line, level of V4
])
#: Heart centre in the body frame (mm): left of the midline, behind the sternum.
BODY_HEART_CENTRE = np.array([-30.0, -70.0, -30.0])
#: Heart axes in the body frame: base -> apex points left, anterior, inferior.
_APEX = np.array([-0.612, 0.612, -0.5])
BODY_LONG_AXIS = -_APEX / np.linalg.norm(_APEX)  # apex -> base
_S = np.array([0.707, 0.707, 0.0])  # LV -> RV: to the right and anterior
BODY_SEPTAL = _S - (_S @ BODY_LONG_AXIS) * BODY_LONG_AXIS
BODY_SEPTAL /= np.linalg.norm(BODY_SEPTAL)


def body_directions() -> np.ndarray:
    """Unit directions (10, 3) from the heart centre to the electrode sites, body frame."""
    d = BODY_SITES - BODY_HEART_CENTRE
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def pose(frame: Frame) -> np.ndarray:
    """Rotation R (3, 3) taking heart-frame vectors to the body frame (x_body = R x_heart)."""
    heart = np.stack([frame.long_axis, frame.septal, frame.anterior], axis=1)
    body = np.stack([BODY_LONG_AXIS, BODY_SEPTAL, np.cross(BODY_LONG_AXIS, BODY_SEPTAL)], axis=1)
    return body @ heart.T


#: Indices of the limb electrodes RA, LA, LL, RL in ``BODY_SITES``.
LIMB = slice(0, 4)


def torso_distances() -> np.ndarray:
    """Distances (10,) mm of the body-frame electrode sites from the body-frame heart centre."""
    return np.linalg.norm(BODY_SITES - BODY_HEART_CENTRE, axis=1)


def electrode_radii(radius_mm: float = 100.0,
                    limb_radius_mm: float | str | None = None) -> np.ndarray:
    """Distance (10,) mm of each electrode from the heart's centre.

    Parameters
    ----------
    radius_mm
        Distance of every electrode (DESIGN.md section 5: 100 mm).
    limb_radius_mm
        Distance of RA, LA, LL and RL instead: a number (mm), ``"torso"`` (each at its
        body-frame site's own distance, 222-398 mm), or None (``radius_mm``).

    Raises
    ------
    InputError
        ``limb_radius_mm`` is neither a positive distance, ``"torso"`` nor None.
    """
    radii = np.full(len(BODY_SITES), float(radius_mm))
    if limb_radius_mm is None:
        return radii
    if isinstance(limb_radius_mm, str):
        if limb_radius_mm != "torso":
            raise InputError(f"anatomy.limb_electrode_radius_mm: expected a distance in mm, "
                             f"'torso' or null, got {limb_radius_mm!r}")
        radii[LIMB] = torso_distances()[LIMB]
        return radii
    if not limb_radius_mm > 0:
        raise InputError(f"anatomy.limb_electrode_radius_mm: expected a positive distance "
                         f"in mm, got {limb_radius_mm!r}")
    radii[LIMB] = float(limb_radius_mm)
    return radii


def place_electrodes(frame: Frame, radius_mm: float = 100.0,
                     limb_radius_mm: float | str | None = None) -> np.ndarray:
    """Electrode positions (10, 3) mm in the heart's frame.

    Each electrode lies along its body-frame direction, ``radius_mm`` from the heart's
    centre, or, for the limb electrodes, ``limb_radius_mm`` (see :func:`electrode_radii`).
    """
    r = pose(frame)
    radii = electrode_radii(radius_mm, limb_radius_mm)
    return frame.centre + radii[:, None] * (body_directions() @ r)  # R^T d for each row d
