"""The anatomy file (``anatomy.h5``, DESIGN.md section 3) and its ParaView view (``.vtu``).

One read/write pair: :func:`write_anatomy` / :func:`read_anatomy`, plus
:func:`write_vtu` that writes the tissue voxels as hexahedra with every field as cell data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.errors import InputError
from pipeline.io import atomic_path, write_provenance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Anatomy:
    """One voxelised heart: the content of ``anatomy.h5``.

    3-D arrays are indexed [i, j, k] with x = origin + (i, j, k) * spacing (mm).

    Attributes
    ----------
    origin, spacing
        float64 (3,), mm.
    mask
        bool (nx, ny, nz), tissue.
    region
        uint8 (nx, ny, nz): 0 outside, 1 LV free wall, 2 RV free wall, 3 septum.
    fibre, sheet
        float32 (3, nx, ny, nz), unit vectors, zero outside.
    transmural, apicobasal, rotational, ventricle
        float32 (nx, ny, nz) coordinates (0 endo -> 1 epi; 0 apex -> 1 base; radians in
        (-pi, pi], 0 septal, +pi/2 anterior; -1 LV -> +1 RV), zero outside.
    celltype
        uint8 (nx, ny, nz): 0 none, 1 endo, 2 M, 3 epi.
    point_names, point_xyz, point_ijk
        (75,) str, (75, 3) mm, (75, 3) int64.
    electrode_names, electrode_xyz
        (10,) str, (10, 3) mm.
    name
        Heart name.
    """

    origin: np.ndarray
    spacing: np.ndarray
    mask: np.ndarray
    region: np.ndarray
    fibre: np.ndarray
    sheet: np.ndarray
    transmural: np.ndarray
    apicobasal: np.ndarray
    rotational: np.ndarray
    ventricle: np.ndarray
    celltype: np.ndarray
    point_names: list[str]
    point_xyz: np.ndarray
    point_ijk: np.ndarray
    electrode_names: list[str]
    electrode_xyz: np.ndarray
    name: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.mask.shape)  # type: ignore[return-value]

    @property
    def volume_mm3(self) -> float:
        """Tissue volume, mm^3."""
        return float(self.mask.sum() * np.prod(self.spacing))

    def centres(self) -> np.ndarray:
        """Centres (n_tissue, 3) mm of the tissue voxels, C order."""
        ijk = np.argwhere(self.mask)
        return self.origin + ijk * self.spacing


#: h5 dataset path of each field.
H5_PATHS: dict[str, str] = {
    "origin": "grid/origin", "spacing": "grid/spacing", "mask": "mask", "region": "region",
    "fibre": "fibre", "sheet": "sheet", "transmural": "coords/transmural",
    "apicobasal": "coords/apicobasal", "rotational": "coords/rotational",
    "ventricle": "coords/ventricle", "celltype": "celltype", "point_names": "points/names",
    "point_xyz": "points/xyz", "point_ijk": "points/ijk",
    "electrode_names": "electrodes/names", "electrode_xyz": "electrodes/xyz",
}
_UNITS = {"grid/origin": "mm", "grid/spacing": "mm", "points/xyz": "mm", "electrodes/xyz": "mm",
          "coords/rotational": "rad"}


def write_anatomy(path: str | Path, anatomy: Anatomy,
                  config: Mapping[str, Any] | None = None) -> None:
    """Write ``anatomy.h5`` atomically, with provenance attributes and ``heart_name``."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for field, name in H5_PATHS.items():
            value = getattr(anatomy, field)
            if field.endswith("_names"):
                f.create_dataset(name, data=np.array(value, dtype=object),
                                 dtype=h5py.string_dtype())
            elif np.ndim(value) >= 3:
                f.create_dataset(name, data=value, compression="gzip", compression_opts=4,
                                 shuffle=True)
            else:
                f.create_dataset(name, data=value)
            if name in _UNITS:
                f[name].attrs["units"] = _UNITS[name]
        f.attrs["heart_name"] = anatomy.name
        write_provenance(f, config)
    log.info("wrote %s", path)


def read_anatomy(path: str | Path) -> Anatomy:
    """Read ``anatomy.h5``.

    Raises
    ------
    InputError
        If the file cannot be opened or a field is missing, naming the file and field.
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"anatomy file {path}: cannot open it ({exc})") from exc
    values: dict[str, Any] = {}
    with f:
        for field, name in H5_PATHS.items():
            if name not in f:
                raise InputError(f"anatomy file {path}: missing field '{name}'")
            data = f[name][()]
            if field.endswith("_names"):
                data = [x.decode() if isinstance(x, bytes) else str(x) for x in data]
            values[field] = data
        values["name"] = str(f.attrs.get("heart_name", path.parent.name))
    values["mask"] = values["mask"].astype(bool)
    kw = {fld.name: values[fld.name] for fld in fields(Anatomy)}
    return Anatomy(**kw)


def to_pyvista(anatomy: Anatomy):  # -> pyvista.UnstructuredGrid
    """Tissue voxels as a pyvista unstructured grid of hexahedra with cell data."""
    import pyvista as pv

    ijk = np.argwhere(anatomy.mask)  # C order, as the tissue numbering
    corners = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1],
                        [1, 1, 1], [0, 1, 1]])  # VTK hexahedron order
    lattice = np.array(anatomy.shape) + 1
    ids = np.ravel_multi_index((ijk[:, None, :] + corners).reshape(-1, 3).T, lattice)
    used, conn = np.unique(ids, return_inverse=True)
    points = anatomy.origin + (np.stack(np.unravel_index(used, lattice), axis=1) - 0.5) \
        * anatomy.spacing
    grid = pv.UnstructuredGrid({pv.CellType.HEXAHEDRON: conn.reshape(-1, 8)}, points)
    sel = tuple(ijk.T)
    grid.cell_data["region"] = anatomy.region[sel]
    grid.cell_data["celltype"] = anatomy.celltype[sel]
    for name in ("transmural", "apicobasal", "rotational", "ventricle"):
        grid.cell_data[name] = getattr(anatomy, name)[sel]
    grid.cell_data["fibre"] = anatomy.fibre[:, sel[0], sel[1], sel[2]].T
    grid.cell_data["sheet"] = anatomy.sheet[:, sel[0], sel[1], sel[2]].T
    return grid


def write_vtu(path: str | Path, anatomy: Anatomy) -> None:
    """Write the tissue voxels with fibres, coordinates, cell type and region (ParaView)."""
    grid = to_pyvista(anatomy)
    with atomic_path(path) as tmp:
        tmp_vtu = tmp.with_name(tmp.name + ".vtu")
        grid.save(tmp_vtu, binary=True)
        tmp_vtu.replace(tmp)
    log.info("wrote %s (%d cells)", path, grid.n_cells)
