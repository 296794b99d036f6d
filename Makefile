# Two commands on a fresh machine: `make run` (main job) and `make test` (test suite).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CORES ?= all
CONFIG ?= config.yaml
APT_PACKAGES := libegl1 libgl1 libgl1-mesa-dri
export VTK_DEFAULT_OPENGL_WINDOW := vtkEGLRenderWindow
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup apt run test lint clean gpu-check

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
	$(PY) -m pytest -q

# On a CUDA machine (a few minutes): CPU-vs-CUDA agreement, Niederer on CUDA, throughput,
# memory and kernels per step -> results/bench/gpu_check.json; then the tests marked cuda.
gpu-check: setup
	$(PY) -m pipeline bench gpu --json results/bench/gpu_check.json
	$(PY) -m pytest -q -m cuda

lint: setup
	snakemake --lint

clean:
	rm -rf results logs benchmarks/*/ .snakemake report.html
