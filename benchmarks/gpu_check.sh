#!/usr/bin/env bash
# The CUDA checks (`pipeline bench gpu` and the tests marked cuda) on a machine that has
# PyTorch with CUDA but no network and no project environment, such as a lent GPU machine:
# its own Python runs the package from src/, and the few pure dependencies it lacks are
# installed from wheels carried beside the tree (`make gpu-wheels`, on a machine with a
# network, fills .gpu-wheels/).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR] [BUDGET_S]      (PY=python3 by default)
#
# Writes OUT_DIR/gpu_tests.log (pytest -m cuda), OUT_DIR/gpu_check.json (rewritten after
# every section, so a run cut short keeps what it measured) and OUT_DIR/gpu_bench.log.
# BUDGET_S (default 420): no bench section or throughput row starts after that many
# seconds from the script's start (the tests included). GPU_SKIP: bench sections to skip
# (names as `pipeline bench gpu --skip` takes them, space separated).
# Exit status: 0 when the tests pass and the bench ran, 2 without CUDA or a dependency,
# else the failing step's.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
out=${1:-results/bench}
budget=${2:-420}
PY=${PY:-python3}
mkdir -p "$out"

missing() {
    "$PY" - <<'EOF'
import importlib.util
# module names of the dependencies the bench and the cuda tests import
need = ["torch", "numpy", "scipy", "h5py", "pandas", "yaml", "tqdm", "matplotlib",
        "jsonschema", "pyamg", "pytest"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
EOF
}

lack=$(missing)
if [ -n "$lack" ] && compgen -G ".gpu-wheels/*.whl" >/dev/null; then
    echo "installing from .gpu-wheels for: $lack"
    "$PY" -m pip install -q --no-index --find-links .gpu-wheels .gpu-wheels/*.whl
    lack=$(missing)
fi
if [ -n "$lack" ]; then
    echo "error: $PY lacks the modules: $lack; run 'make gpu-wheels' where there is a" \
         "network and carry .gpu-wheels/ with the tree" >&2
    exit 2
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: no CUDA device: torch.cuda.is_available() is False for $PY" >&2
    exit 2
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'on', torch.cuda.get_device_name(0))"

"$PY" -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$out/gpu_tests.log"
tests=${PIPESTATUS[0]}
left=$(( budget > SECONDS ? budget - SECONDS : 0 ))
"$PY" -m pipeline bench gpu --json "$out/gpu_check.json" --cache "${TMPDIR:-/tmp}/gpu_check" \
    --budget "$left" ${GPU_SKIP:+--skip $GPU_SKIP} 2>&1 | tee "$out/gpu_bench.log"
bench=${PIPESTATUS[0]}
echo "cuda tests: exit $tests; bench gpu: exit $bench"
[ "$tests" -eq 0 ] || exit "$tests"
exit "$bench"
