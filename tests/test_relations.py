"""Cross-key config checks (pipeline.relations) and the split of run settings from science."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import RUN_KEYS, resolve, run_options, science_settings
from pipeline.errors import InputError
from pipeline.relations import check_relations, problems

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
CI = yaml.safe_load((ROOT / "workflow" / "configs" / "ci.yaml").read_text())


def _with(**changes) -> dict:
    """The CI config with dotted keys replaced (``campaigns__ci__bcl_ms=[600]``)."""
    config = json.loads(json.dumps(CI))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return config


def test_shipped_configs_are_consistent():
    shared = (ROOT.parent / "shared").is_dir()
    for name in ("config.yaml", "workflow/configs/ci.yaml", "workflow/configs/paper.yaml"):
        found = problems(yaml.safe_load((ROOT / name).read_text()), base=ROOT)
        if not shared:   # a checkout without ../shared: the shared mesh is absent, as expected
            found = [f for f in found if "../shared/" not in f]
        assert found == [], name
    assert problems({}) == []


@pytest.mark.parametrize("change, key", [
    ({"campaigns__ci__bcl_ms": [600]}, "campaigns.ci.bcl_ms"),
    ({"campaigns__ci__gkr_scale": [0.5]}, "campaigns.ci.gkr_scale"),
    ({"campaigns__ci__anatomies": ["param007"]}, "campaigns.ci.anatomies"),
    ({"anatomy__parametric__count": 0}, "campaigns.ci"),
    ({"anatomy__meshes": [{"name": "heart", "path": "no/such.vtk"}]}, "anatomy.meshes.0.path"),
    ({"anatomy__meshes": [{"name": "param000", "path": "config.yaml"}]},
     "anatomy.meshes.0.name"),
    ({"learn__campaign": "nope"}, "learn.campaign"),
    ({"simulate__record_every_ms": 0.25}, "simulate.record_every_ms"),
    ({"simulate__duration_ms": 100.5}, "simulate.duration_ms"),
    ({"cells__bcl_ms": [1000.01]}, "cells.bcl_ms"),
    ({"cells__min_beats": 5, "cells__max_beats": 2}, "cells.max_beats"),
    ({"cells__celltypes": ["endo", "epi"]}, "cells.celltypes"),
    ({"campaigns__ci__conductivity": {"sigma_l": [0.2, 0.1]}}, "campaigns.ci.conductivity.sigma_l"),
    ({"campaigns__ci__conductivity": {"sigma_t": [0.02, 0.3]}}, "campaigns.ci.conductivity.sigma_t"),
    ({"campaigns__ci__site_delay_ms": [5.0, 1.0]}, "campaigns.ci.site_delay_ms"),
    ({"campaigns__ci__split": {"val_fraction": 0.5, "test_fraction": 0.5}}, "campaigns.ci.split"),
    ({"campaigns__ci__split": {"by": "anatomy"}}, "campaigns.ci.split"),
    ({"hemo__patients": {"csv": "no/such.csv"}}, "hemo.patients.csv"),
])
def test_each_broken_relation_names_its_key(change, key):
    with pytest.raises(InputError) as info:
        check_relations(_with(**change), base=ROOT)
    assert f"'{key}" in str(info.value), str(info.value)


def test_snakemake_dry_run_stops_at_a_broken_relation(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_with(campaigns__ci__bcl_ms=[600])))
    out = subprocess.run([SNAKEMAKE, "-n", "--configfile", str(bad),
                          "--replace-workflow-config"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "campaigns.ci.bcl_ms" in text and "cells.bcl_ms" in text
    assert "Job stats" not in text                       # stopped before the DAG


def test_science_settings_leave_out_the_run_keys():
    config = resolve(CI)
    flipped = resolve(_with(simulate__compile=True, simulate__device="cpu",
                            simulate__batch_size=3, simulate__dtype="float64",
                            simulate__steps_per_call=4, learn__device="cuda",
                            cells__compile=False))
    for section in ("simulate", "learn", "cells"):
        science = science_settings(config, section)
        assert not set(RUN_KEYS[section]) & set(science[section])
        assert science == science_settings(flipped, section)   # params unchanged: no rerun
    assert "dt_ms" in science_settings(config, "simulate")["simulate"]
    assert run_options(flipped, "simulate") == ["--device", "cpu", "--compile",
                                                "--batch-size", "3", "--dtype", "float64",
                                                "--steps-per-call", "4"]
    assert run_options(flipped, "cells") == ["--no-compile"]


def test_adding_a_network_changes_no_trained_networks_settings():
    """learn.networks says which jobs exist; a job's settings (its params) do not hold it."""
    config = resolve(CI)
    more = resolve(_with(learn__networks=list(config["learn"]["networks"]) + ["ensemble"],
                         learn__campaign="ci"))
    assert science_settings(config, "learn") == science_settings(more, "learn")
    assert "epochs" in science_settings(config, "learn")["learn"]
    changed = resolve(_with(learn__epochs=config["learn"]["epochs"] + 1))
    assert science_settings(changed, "learn") != science_settings(config, "learn")


def test_simulate_run_options_override_the_settings():
    from pipeline import cli

    parser = cli.build_parser()
    args = parser.parse_args(["simulate", "--anatomy", "a", "--cells", "c", "--params", "p",
                              "--out", "o", "--no-compile", "--batch-size", "2",
                              "--settings", '{"simulate": {"compile": true}}'])
    assert args.compile is False and args.batch_size == 2 and args.device is None


def test_patients_relations_name_the_key(tmp_path):
    """An untrained network, a missing recording, a bad record name: each names its key."""
    (tmp_path / "rec.hea").write_text("rec 12 500 5000\n")
    (tmp_path / "beat.npy").write_bytes(b"")
    ok = _with(patients__recordings={"a": "rec", "b-2": "beat.npy"})
    assert [p for p in problems(ok, tmp_path) if "patients" in p] == []
    bad = _with(patients__network="nope",
                patients__recordings={"x y": "rec", "gone": "missing/rec"},
                patients__adapt={"enabled": True, "network": "ensemble"})
    text = "\n".join(problems(bad, tmp_path))
    assert "'patients.network': 'nope' is not trained" in text
    assert "'patients.adapt.network': 'ensemble' is not trained" in text
    assert "'patients.recordings.x y': name" in text
    assert "'patients.recordings.gone': recording missing/rec not found" in text
    assert "missing/rec.hea" in text
