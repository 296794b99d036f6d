"""The package works when installed for real (a wheel, not an editable source tree).

Builds the package without build isolation (no download: setuptools and wheel come from the
running environment) into a temporary folder, then runs it from another folder with the
source tree off ``sys.path``. Skip it with ``-m "not install"``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The source tree leaves sys.path first (a development venv's editable install puts it
#: there through a .pth file; a real install has no such entry).
PROBE = """
import sys
sys.path[:] = [p for p in sys.path if not p.startswith({src!r})]
sys.path.insert(0, {site!r})
import pipeline, pipeline.config as config, yaml
from pathlib import Path
assert Path(pipeline.__file__).is_relative_to({site!r}), pipeline.__file__
assert not any(p.startswith({src!r}) for p in sys.path), sys.path
full = config.resolve({{}})
demo = config.load({config!r})
assert full["seed"] == demo["seed"] and demo["campaigns"]
print("ok", pipeline.__file__)
"""


@pytest.mark.install
@pytest.mark.timeout(120)
def test_wheel_runs_outside_the_source_tree(tmp_path):
    tree, site, cwd = tmp_path / "tree", tmp_path / "site", tmp_path / "elsewhere"
    shutil.copytree(ROOT / "src", tree / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    cwd.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(tree)],
                   check=True, cwd=cwd, capture_output=True, text=True, timeout=90)
    assert (site / "pipeline" / "schemas" / "config.schema.yaml").is_file()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = PROBE.format(site=str(site), src=str(ROOT / "src"),
                         config=str(ROOT / "config.yaml"))
    out = subprocess.run([sys.executable, "-I", "-c", probe], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stdout + out.stderr
    helper = (f"import sys, runpy; src = {str(ROOT / 'src')!r}; "
              "sys.path[:] = [p for p in sys.path if not p.startswith(src)]; "
              f"sys.path.insert(0, {str(site)!r}); sys.argv = ['pipeline', '--help']; "
              "runpy.run_module('pipeline', run_name='__main__')")
    out = subprocess.run([sys.executable, "-I", "-c", helper], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "simulate" in out.stdout, out.stdout + out.stderr
