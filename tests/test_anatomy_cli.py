"""``pipeline anatomy``: the three output files, the h5 contract, round trip, errors."""

from __future__ import annotations

import json

import h5py
import meshio
import numpy as np
import pytest

from pipeline.anatomy.io import H5_PATHS, read_anatomy, write_anatomy
from pipeline.cli import main
from pipeline.errors import InputError

DTYPES = {"grid/origin": ("f8", (3,)), "grid/spacing": ("f8", (3,)), "mask": ("b1", 3),
          "region": ("u1", 3), "fibre": ("f4", 4), "sheet": ("f4", 4),
          "coords/transmural": ("f4", 3), "coords/apicobasal": ("f4", 3),
          "coords/rotational": ("f4", 3), "coords/ventricle": ("f4", 3), "celltype": ("u1", 3),
          "points/xyz": ("f8", (75, 3)), "points/ijk": ("i8", (75, 3)),
          "electrodes/xyz": ("f8", (10, 3))}


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    path = tmp_path_factory.mktemp("anatomy")
    settings = json.dumps({"seed": 5, "anatomy": {"resolution_mm": 2.0}})
    assert main(["anatomy", "--parametric", "3", "--name", "param003", "--out", str(path),
                 "--settings", settings]) == 0
    return path


def test_outputs_follow_the_design_table(out):
    with h5py.File(out / "anatomy.h5") as f:
        for name, (dtype, shape) in DTYPES.items():
            ds = f[name]
            assert ds.dtype == np.dtype(dtype), name
            assert (ds.ndim == shape) if isinstance(shape, int) else (ds.shape == shape), name
        assert f["fibre"].shape[1:] == f["mask"].shape and f["fibre"].shape[0] == 3
        assert len(f["points/names"]) == 75 and len(f["electrodes/names"]) == 10
        assert f.attrs["heart_name"] == "param003"
        for key in ("pipeline_version", "git_commit", "config_yaml", "created_utc"):
            assert key in f.attrs
        assert "resolution_mm: 2.0" in f.attrs["config_yaml"]
        np.testing.assert_allclose(f["grid/spacing"][()], 2.0)


def test_round_trip_and_vtu(out, tmp_path):
    a = read_anatomy(out / "anatomy.h5")
    write_anatomy(tmp_path / "again.h5", a)
    b = read_anatomy(tmp_path / "again.h5")
    for field in H5_PATHS:
        x, y = getattr(a, field), getattr(b, field)
        assert (x == y) if isinstance(x, list) else np.array_equal(x, y), field
    vtu = meshio.read(out / "anatomy.vtu")
    n = int(a.mask.sum())
    assert sum(len(c.data) for c in vtu.cells) == n
    for key in ("fibre", "sheet", "transmural", "apicobasal", "rotational", "ventricle",
                "celltype", "region"):
        assert len(vtu.cell_data[key][0]) == n, key
    # cells in tissue (C) order: centres and data match the h5 arrays
    centres = vtu.points[vtu.cells[0].data].mean(axis=1)
    np.testing.assert_allclose(centres, a.centres(), atol=1e-9)
    np.testing.assert_array_equal(vtu.cell_data["region"][0], a.region[a.mask])
    np.testing.assert_allclose(vtu.cell_data["fibre"][0], a.fibre[:, a.mask].T)


def test_png_is_rendered(out):
    from PIL import Image

    image = np.asarray(Image.open(out / "anatomy.png").convert("RGB"))
    assert image.shape[:2] == (800, 1600)
    assert (image.std(axis=(0, 1)) > 10).all()  # not blank


def test_same_seed_same_heart(out, tmp_path):
    settings = json.dumps({"seed": 5, "anatomy": {"resolution_mm": 2.0}})
    assert main(["anatomy", "--parametric", "3", "--name", "again", "--out", str(tmp_path),
                 "--settings", settings, "--no-png"]) == 0
    a, b = read_anatomy(out / "anatomy.h5"), read_anatomy(tmp_path / "anatomy.h5")
    assert np.array_equal(a.mask, b.mask) and np.array_equal(a.fibre, b.fibre)


def test_missing_field_names_file_and_field(out, tmp_path):
    path = tmp_path / "broken.h5"
    with h5py.File(out / "anatomy.h5") as src, h5py.File(path, "w") as dst:
        for name in H5_PATHS.values():
            if name != "coords/apicobasal":
                src.copy(src[name], dst, name=name)
    with pytest.raises(InputError, match=r"broken\.h5: missing field 'coords/apicobasal'"):
        read_anatomy(path)


def test_bad_inputs_fail_with_one_line(tmp_path, capsys):
    assert main(["anatomy", "--parametric", "0", "--name", "bad-name", "--out",
                 str(tmp_path)]) == 1
    assert "letters and digits" in capsys.readouterr().err
    bad = tmp_path / "x.vtk"
    bad.write_text("nonsense")
    assert main(["anatomy", "--mesh", str(bad), "--name", "x", "--out", str(tmp_path)]) == 1
    assert "x.vtk: cannot read" in capsys.readouterr().err
    assert main(["anatomy", "--parametric", "0", "--name", "x", "--out", str(tmp_path),
                 "--resolution", "5"]) == 1
    assert "resolution_mm" in capsys.readouterr().err
