#!/usr/bin/env bash
# Run benchmarks/gpu_check.py on a GPU machine that lacks the project's dependencies.
#
#   bash benchmarks/gpu_check.sh [JSON_PATH] [extra gpu_check.py args...]
#
# Wheels carried in .whl/ (transformers, peft, pydantic, bitsandbytes, ...) are installed into
# /tmp/site (no index, no deps) and put first on PYTHONPATH. The JSON goes to JSON_PATH, else
# $OUT/gpu_check.json, else benchmarks/results/gpu_check.json; a log goes beside it.
# PYTHON picks the interpreter (default python3); GPU_CHECK_TIMEOUT bounds the run (default 360 s);
# GPU_CHECK_NO_WHEELS=1 skips the wheels (a local dry run: they are built for the device's Python 3.12).
# GPU_THROUGHPUT=1 then runs benchmarks/gpu_throughput.py (issue 34's acceptance: our loop vs a hand sweep,
# Trainer + peft and trl, ~9 minutes) with its JSON beside gpu_check.json; GPU_THROUGHPUT=only runs it alone.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
PYTHON="${PYTHON:-python3}"
if [ $# -ge 1 ] && [ "${1#-}" = "$1" ]; then
    json="$1"; shift
elif [ -n "${OUT:-}" ]; then
    json="$OUT/gpu_check.json"
else
    json="benchmarks/results/gpu_check.json"
fi
mkdir -p "$(dirname "$json")"
log="${json%.json}.log"

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv 2>&1 || true
    if [ -z "${GPU_CHECK_NO_WHEELS:-}" ] && ls .whl/*.whl >/dev/null 2>&1; then
        echo "installing carried wheels: $(ls .whl | tr '\n' ' ')"
        t0=$(date +%s)
        if "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl; then
            export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
            echo "wheels installed in $(( $(date +%s) - t0 )) s"
        else
            echo "WARNING: wheel install failed; running with the machine's own packages"
        fi
    else
        echo "no carried wheels in .whl/: running with the machine's own packages"
    fi
    rc=0
    if [ "${GPU_THROUGHPUT:-}" != "only" ]; then
        timeout "${GPU_CHECK_TIMEOUT:-360}" "$PYTHON" benchmarks/gpu_check.py --out "$json" "$@"
        rc=$?
        echo "gpu_check.py exit status $rc"
    fi
    if [ -n "${GPU_THROUGHPUT:-}" ]; then
        timeout "${GPU_THROUGHPUT_TIMEOUT:-580}" "$PYTHON" benchmarks/gpu_throughput.py \
            --out "$(dirname "$json")/gpu_throughput.json"
        trc=$?
        echo "gpu_throughput.py exit status $trc"
        [ $rc -eq 0 ] && rc=$trc
    fi
    exit $rc
} 2>&1 | tee "$log"
exit "${PIPESTATUS[0]}"
