#!/usr/bin/env bash
# A lent GPU machine's session in two calls: the CUDA check, and beside it the resolution
# study's fine monodomain reference of one heart (docs/fidelity-log.md, "Session 27:
# the 0.25 mm reference"). HEART is a mesh file carried with the tree (.carry/heart_mesh.vtk) or a
# parametric heart's name (param000), built from the seed 20221 as the study builds it.
#
#   bash benchmarks/gpu_session.sh start OUT_DIR HEART [CHECK_BUDGET_S] [DX_MM] [DURATION_MS]
#   bash benchmarks/gpu_session.sh collect OUT_DIR [WAIT_S]
#
# `start` installs the carried wheels (.gpu-wheels: meshio and the check's needs), starts the
# reference in a process session of its own (setsid: it outlives the call while the machine
# stays warm) and runs benchmarks/gpu_check.sh with CHECK_BUDGET_S (200) in the foreground.
# The reference builds the heart at DX_MM (0.25) on the CPUs, then runs
# `pipeline bench convergence` for the normal and LBBB beats over DURATION_MS (250) on the
# GPU; its set-up is on the CPUs too (minutes at 0.25 mm), so its time loop starts after
# the check. `collect`, the next call, waits up to WAIT_S (400) for it and packs the run in
# files of at most 16 MiB (benchmarks/fine_reference.py) under OUT_DIR, with session.log.
# DEVICE=cpu: the reference on the CPU (a dry run where there is no GPU); FINE_CACHE: the
# reference's folder (a heart built there is reused).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
verb=${1:?start or collect}; out=${2:?OUT_DIR}
PY=${PY:-python3}
device=${DEVICE:-cuda}
cache=${FINE_CACHE:-${TMPDIR:-/tmp}/fine_reference}
mkdir -p "$out" "$cache"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

if [ "$verb" = collect ]; then
    wait_s=${3:-400}
    while [ ! -f "$cache/done" ] && [ "$SECONDS" -lt "$wait_s" ]; do sleep 2; done
    cp "$cache/session.log" "$out/" 2>/dev/null
    [ -f "$cache/done" ] || { echo "the reference is still running after $wait_s s" >&2; exit 3; }
    run=$(ls "$cache"/*mm_monodomain*ms.npz 2>/dev/null | head -1)
    [ -n "$run" ] || { echo "the reference left no run (session.log)" >&2; exit 1; }
    "$PY" benchmarks/fine_reference.py pack "$run" "$out"
    exit $?
fi

mesh=${3:?HEART}; budget=${4:-200}; dx=${5:-0.25}; dur=${6:-250}
if [[ ! "$mesh" =~ ^param[0-9]+$ ]] && [ ! -f "$mesh" ]; then
    echo "error: heart $mesh is neither a mesh file (carry it with the tree) nor a" \
         "parametric heart's name such as param000" >&2
    exit 2
fi
log="$cache/session.log"
rm -f "$cache/done"
if compgen -G ".gpu-wheels/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps .gpu-wheels/*.whl >>"$log" 2>&1
fi
setsid bash -c '
    log=$1; PY=$2; cache=$3; mesh=$4; dx=$5; dur=$6; device=$7
    t0=$(date +%s)
    stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" >>"$log"; }
    stamp "building $mesh at $dx mm"
    "$PY" -c "import logging, sys
from pathlib import Path
logging.basicConfig(level=logging.INFO, format=\"%(asctime)s %(name)s %(message)s\")
from pipeline.simulate.convergence import _inputs
print(\"built\", _inputs(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), 20221))" \
        "$cache" "$mesh" "$dx" >>"$log" 2>&1
    stamp "build: exit $?"
    "$PY" -m pipeline bench convergence --heart "$mesh" --resolution "$dx" \
        --model monodomain --pattern normal lbbb --duration "$dur" --device "$device" \
        --cache "$cache" >>"$log" 2>&1
    stamp "reference: exit $?"
    touch "$cache/done"
' _ "$log" "$PY" "$cache" "$mesh" "$dx" "$dur" "$device" </dev/null >/dev/null 2>&1 &

bash benchmarks/gpu_check.sh "$out" "$budget"
check=$?
echo "[check] gpu_check.sh: exit $check at $(date +%T)" >>"$log"
[ "$device" = cpu ] || nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv >>"$log" 2>&1
cp "$log" "$out/"
exit "$check"
