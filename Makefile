# Two commands on a fresh machine: `make run` (main job) and `make test` (test suite).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CORES ?= all
CONFIG ?= config.yaml
# pytest-xdist workers of `make test` (one per core; 0: one process). tests/conftest.py keeps a
# module on one worker and starts the longest modules first.
TEST_WORKERS ?= auto
APT_PACKAGES := libegl1 libgl1 libgl1-mesa-dri
export VTK_DEFAULT_OPENGL_WINDOW := vtkEGLRenderWindow
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup apt run test lint clean gpu-check gpu-wheels gpu-prep

setup: $(VENV)/.installed

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: pyproject.toml | apt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test,slurm]'
	touch $@

run: setup
	snakemake --cores $(CORES) --configfile $(CONFIG) --replace-workflow-config

test: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope

# On a CUDA machine (a few minutes): CPU-vs-CUDA agreement, Niederer on CUDA, throughput,
# memory and kernels per step -> results/bench/gpu_check.json; then the tests marked cuda.
gpu-check: setup
	PY=$(PY) bash benchmarks/gpu_check.sh results/bench 100000

# A lent GPU machine has PyTorch with CUDA but no network: fill .gpu-wheels here with the
# dependencies its Python lacks, carry the folder, and run there
# `bash benchmarks/gpu_check.sh OUT_DIR` or `bash benchmarks/gpu_session.sh OUT_DIR MESH`
# (docs/monodomain.md, "Throughput"; meshio reads the mesh of the session's fine reference).
GPU_PYTHON ?= 3.12
gpu-wheels:
	python3 -m pip download -q --no-deps --only-binary=:all: --python-version $(GPU_PYTHON) \
	  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
	  --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux2014_x86_64 -d .gpu-wheels \
	  jsonschema jsonschema-specifications referencing rpds-py 'pyamg>=5.4' meshio

# Everything a lent GPU machine's session (benchmarks/gpu_session.sh) carries: the wheels and
# the LLNL mesh of the resolution study's fine reference, in .carry/ (git ignores it).
SHARED_MESH ?= ../shared/data/anatomy/cardiac_ml_heart/heart_mesh.vtk
gpu-prep: gpu-wheels
	mkdir -p .carry && cp $(SHARED_MESH) .carry/heart_mesh.vtk
	grep -qx '/.carry/' .git/info/exclude 2>/dev/null || echo '/.carry/' >> .git/info/exclude
	@echo "carry: .gpu-wheels .carry; run: bash benchmarks/gpu_session.sh start \$$OUT" \
	  ".carry/heart_mesh.vtk 200 0.25 250, then at once: bash benchmarks/gpu_session.sh" \
	  "collect \$$OUT 400"

lint: setup
	snakemake --lint

clean:
	rm -rf results logs benchmarks/*/ .snakemake report.html
