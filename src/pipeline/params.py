"""The simulation parameter table of one shard: reading and validation.

One CSV per shard, one row per simulation, one anatomy per shard. Columns (the
interface between the campaign design and the simulate stage):

==================  =====  =============================================================
column              unit   meaning
==================  =====  =============================================================
sim_id              1      index of the simulation within its campaign (unique)
anatomy             -      heart name; the same on every row and equal to the anatomy's
pattern             -      activation pattern: normal, lbbb, rbbb, rv_apex, lv_lateral
sigma_l, sigma_t    S/m    monodomain conductivities along / across the fibres
sigma_fast_endo     S/m    conductivity of the fast subendocardial layer
gkr_scale           1      G_Kr scale (its initial state must be in the cells file)
bcl_ms              ms     basic cycle length of the initial state
seed                1      per-simulation seed of the pattern's random variations
site_jitter_mm      mm     positional jitter of the early activation sites
site_delay_max_ms   ms     largest random delay of a site
==================  =====  =============================================================

Optional, all or none (:data:`POSE_COLUMNS`; absent: the pose of DESIGN.md section 5), the
heart's pose in the body frame of ``pipeline.anatomy.electrodes`` (x right, y anterior, z
superior), drawn by campaigns with ``heart_pose`` ranges (:class:`HeartPose`):

==================  =====  =============================================================
heart_rot_x_deg     deg    rotation of the heart about its centre, about the body's x axis
heart_rot_y_deg     deg    ... then about the body's y axis
heart_rot_z_deg     deg    ... then about the body's z axis
heart_shift_x_mm    mm     shift of the heart in the torso along x (ecg_medium torso only)
heart_shift_y_mm    mm     ... along y
heart_shift_z_mm    mm     ... along z
torso_scale         1      the torso's size about the body frame's origin (torso only)
==================  =====  =============================================================

:func:`read_params` checks everything and raises :class:`~pipeline.errors.InputError`
naming the file, the row (``sim_id``), the column, the value and the allowed range,
before any simulation starts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import InputError
from pipeline.io import atomic_path

log = logging.getLogger(__name__)

#: Activation patterns (literature activation sequences; each is built by
#: :func:`pipeline.monodomain.patterns.make_pattern`).
PATTERNS: tuple[str, ...] = ("normal", "lbbb", "rbbb", "rv_apex", "lv_lateral")

#: Numeric columns and their closed ranges [low, high]; conductivities must be > 0.
RANGES: dict[str, tuple[float, float]] = {
    "sigma_l": (1e-4, 10.0),
    "sigma_t": (1e-4, 10.0),
    "sigma_fast_endo": (1e-4, 50.0),
    "gkr_scale": (0.0, 5.0),
    "bcl_ms": (200.0, 5000.0),
    "site_jitter_mm": (0.0, 30.0),
    "site_delay_max_ms": (0.0, 200.0),
}
INT_COLUMNS: tuple[str, ...] = ("sim_id", "seed")
STR_COLUMNS: tuple[str, ...] = ("anatomy", "pattern")
COLUMNS: tuple[str, ...] = ("sim_id", "anatomy", "pattern", "sigma_l", "sigma_t",
                            "sigma_fast_endo", "gkr_scale", "bcl_ms", "seed",
                            "site_jitter_mm", "site_delay_max_ms")
#: The optional pose columns (all or none) and their closed ranges.
POSE_COLUMNS: tuple[str, ...] = ("heart_rot_x_deg", "heart_rot_y_deg", "heart_rot_z_deg",
                                 "heart_shift_x_mm", "heart_shift_y_mm", "heart_shift_z_mm",
                                 "torso_scale")
POSE_RANGES: dict[str, tuple[float, float]] = {
    **{f"heart_rot_{a}_deg": (-90.0, 90.0) for a in "xyz"},
    **{f"heart_shift_{a}_mm": (-60.0, 60.0) for a in "xyz"},
    "torso_scale": (0.5, 2.0),
}
#: Column dtypes as read back from CSV.
DTYPES: dict[str, str] = {c: ("int64" if c in INT_COLUMNS else "str" if c in STR_COLUMNS
                              else "float64") for c in COLUMNS + POSE_COLUMNS}


@dataclass(frozen=True)
class HeartPose:
    """Where the heart sits in the body, relative to the pose DESIGN.md section 5 gives it.

    Attributes
    ----------
    rotation_deg
        Rotations (deg) about the heart's centre, about the body's x, y and z axes in that
        order (extrinsic; x right, y anterior, z superior).
    shift_mm
        Shift (mm) of the heart's centre in the torso, body frame.
    torso_scale
        The torso's size, scaled about the body frame's origin (the sternum).
    """

    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    torso_scale: float = 1.0

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> HeartPose:
        """From a mapping with the :data:`POSE_COLUMNS` (identity where they are absent)."""
        get = lambda k, d: float(row[k]) if k in row else d   # noqa: E731
        return cls(rotation_deg=tuple(get(f"heart_rot_{a}_deg", 0.0) for a in "xyz"),
                   shift_mm=tuple(get(f"heart_shift_{a}_mm", 0.0) for a in "xyz"),
                   torso_scale=get("torso_scale", 1.0))

    @property
    def rotates(self) -> bool:
        return any(a != 0.0 for a in self.rotation_deg)

    @property
    def moves_in_torso(self) -> bool:
        """A shift or a torso scale: meaningful only in a bounded torso."""
        return any(d != 0.0 for d in self.shift_mm) or self.torso_scale != 1.0

    @property
    def identity(self) -> bool:
        return not (self.rotates or self.moves_in_torso)

    def rotation(self) -> np.ndarray:
        """The rotation matrix ``(3, 3)`` (body frame, acting on column vectors)."""
        from scipy.spatial.transform import Rotation

        return Rotation.from_euler("xyz", self.rotation_deg, degrees=True).as_matrix()

    def columns(self) -> dict[str, float]:
        """The :data:`POSE_COLUMNS` of this pose."""
        return {**{f"heart_rot_{a}_deg": r for a, r in zip("xyz", self.rotation_deg)},
                **{f"heart_shift_{a}_mm": d for a, d in zip("xyz", self.shift_mm)},
                "torso_scale": self.torso_scale}


@dataclass(frozen=True)
class SimParams:
    """One row of the table: the parameters of one simulation (units as the module table).

    The defaults are those of a single hand-made simulation (BCL 1000 ms, G_Kr x 1, 3 mm
    jitter, up to 10 ms site delays); campaign rows set every field.
    """

    sim_id: int
    pattern: str
    sigma_l: float
    sigma_t: float
    sigma_fast_endo: float
    gkr_scale: float = 1.0
    bcl_ms: float = 1000.0
    seed: int = 0
    site_jitter_mm: float = 3.0
    site_delay_max_ms: float = 10.0
    anatomy: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SimParams:
        """From a mapping (a CSV row); missing optional columns take the defaults.

        Raises
        ------
        InputError
            A required column is missing or a value does not convert.
        """
        required = ("sim_id", "pattern", "sigma_l", "sigma_t", "sigma_fast_endo")
        missing = [k for k in required if k not in row]
        if missing:
            raise InputError(f"simulation row lacks column(s) {missing}: {dict(row)}")
        casts = {"sim_id": int, "pattern": str, "seed": int, "anatomy": str}
        try:
            kwargs = {k: casts.get(k, float)(row[k]) for k in cls.__dataclass_fields__
                      if k in row}
        except (TypeError, ValueError) as exc:
            raise InputError(f"bad simulation row {dict(row)}: {exc}") from exc
        return cls(**kwargs)


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def validate_table(table: pd.DataFrame, source: str, *,
                   patterns: Iterable[str] = PATTERNS,
                   anatomy_name: str | None = None,
                   one_anatomy: bool = True) -> pd.DataFrame:
    """Check a parameter table; return it with clean dtypes, columns in :data:`COLUMNS` order
    (then the :data:`POSE_COLUMNS`, if it has them).

    Parameters
    ----------
    table
        One row per simulation.
    source
        Where it came from (file name), for messages.
    patterns
        Allowed pattern names.
    anatomy_name
        If given, every row's ``anatomy`` must equal it.
    one_anatomy
        A shard's table: every row names the same anatomy (a campaign's may mix).

    Raises
    ------
    InputError
        Missing column, empty table, non-numeric or out-of-range value, duplicate sim_id,
        unknown pattern, mixed or mismatched anatomy.
    """
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)}; "
                         f"expected columns {', '.join(COLUMNS)}")
    if len(table) == 0:
        raise InputError(f"{source}: no simulations (the table has no rows)")
    pose = [c for c in POSE_COLUMNS if c in table.columns]
    if pose and len(pose) < len(POSE_COLUMNS):
        raise InputError(f"{source}: the pose columns come all or none; missing "
                         f"{', '.join(c for c in POSE_COLUMNS if c not in pose)}")
    out = table.loc[:, list(COLUMNS) + pose].copy()
    for col in INT_COLUMNS:
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.isna() | (values != np.round(values)) | (values < 0)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{source}: row {row}: column {col} = {_show(table[col].iloc[row])}; "
                             "expected a non-negative integer")
        out[col] = values.astype(np.int64)
    dup = out["sim_id"].duplicated()
    if dup.any():
        raise InputError(f"{source}: duplicate sim_id {int(out['sim_id'][dup].iloc[0])}")
    for col, (low, high) in {**RANGES, **{c: POSE_RANGES[c] for c in pose}}.items():
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.isna() | (values < low) | (values > high)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{source}: sim_id {out['sim_id'].iloc[row]}: column {col} = "
                             f"{_show(table[col].iloc[row])} is out of range; expected a number in "
                             f"[{low:g}, {high:g}]")
        out[col] = values.astype(np.float64)
    worse = out["sigma_t"] > out["sigma_l"]
    if worse.any():
        row = int(np.flatnonzero(worse.to_numpy())[0])
        raise InputError(f"{source}: sim_id {out['sim_id'].iloc[row]}: sigma_t = "
                         f"{out['sigma_t'].iloc[row]:g} S/m exceeds sigma_l = "
                         f"{out['sigma_l'].iloc[row]:g} S/m; expected sigma_t <= sigma_l")
    for col in STR_COLUMNS:
        out[col] = out[col].astype(str).str.strip()
    allowed = tuple(patterns)
    unknown = ~out["pattern"].isin(allowed)
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise InputError(f"{source}: sim_id {out['sim_id'].iloc[row]}: unknown pattern "
                         f"{out['pattern'].iloc[row]!r}; expected one of {', '.join(allowed)}")
    hearts = sorted(set(out["anatomy"]))
    if not one_anatomy:
        return out.reset_index(drop=True)
    if len(hearts) != 1:
        raise InputError(f"{source}: a shard holds one anatomy, found {', '.join(hearts)}")
    if anatomy_name is not None and hearts[0] != anatomy_name:
        raise InputError(f"{source}: anatomy column names {hearts[0]!r} but the anatomy file "
                         f"is {anatomy_name!r}")
    return out.reset_index(drop=True)


def read_params(path: str | Path, *, patterns: Iterable[str] = PATTERNS,
                anatomy_name: str | None = None, one_anatomy: bool = True) -> pd.DataFrame:
    """Read and validate a parameter CSV (see :func:`validate_table`): a shard's table
    (one anatomy) or, with ``one_anatomy=False``, a campaign's design."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"parameter table {path} does not exist")
    try:
        table = pd.read_csv(path, dtype={"anatomy": str, "pattern": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"cannot read parameter table {path}: {exc}") from exc
    return validate_table(table, str(path), patterns=patterns, anatomy_name=anatomy_name,
                          one_anatomy=one_anatomy)


def write_params(table: pd.DataFrame, path: str | Path) -> None:
    """Write a parameter table as CSV (full float precision), atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.17g")


def rows(table: pd.DataFrame) -> list[SimParams]:
    """The validated table as a list of :class:`SimParams`."""
    return [SimParams(**{c: (row[c].item() if hasattr(row[c], "item") else row[c])
                         for c in COLUMNS}) for _, row in table.iterrows()]


def poses(table: pd.DataFrame) -> list[HeartPose] | None:
    """Each row's :class:`HeartPose`; None if the table has no pose columns or every pose
    is the identity (DESIGN.md section 5's pose)."""
    if not set(POSE_COLUMNS) <= set(table.columns):
        return None
    out = [HeartPose.from_row(row) for _, row in table.iterrows()]
    return None if all(p.identity for p in out) else out


def table_columns(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Column name -> array, strings as object arrays (for ``params/*`` in the shard file)."""
    return {c: (table[c].astype(str).to_numpy(dtype=object) if c in STR_COLUMNS
                else table[c].to_numpy()) for c in table.columns}
