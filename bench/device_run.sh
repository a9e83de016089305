#!/usr/bin/env bash
# The GPU measurements of docs/performance.md in one call on a lent GPU machine, whose image has
# Python with CUDA PyTorch (and torchaudio) but none of our other dependencies and no network.
#
# Beforehand, here: put wheels (Python 3.12, manylinux x86_64) of our engine's dependencies that
# the image lacks (rjieba, pypinyin, soxr, soundfile, av) and of the reference's inference
# (f5-tts, x-transformers, einx, loguru, frozendict, torch-einops-utils, vocos, pydub) in .whl/.
# Then run `bash bench/device_run.sh` there; logs and JSON land in $OUT (default bench/results).
#
# STAGES picks the stages (default: all, in the order below). PRESET, DEVICE, DTYPE, STEPS_A,
# STEPS_B and CONC override the defaults (a dry run on the CPU:
# PRESET=tiny_v1 DEVICE=cpu DTYPE=float32 CONC="1 2" NO_REFERENCE=1 bash bench/device_run.sh).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-bench/results}
PRESET=${PRESET:-F5TTS_v1_Base}
DEVICE=${DEVICE:-cuda}
DTYPE=${DTYPE:-bfloat16}
STEPS_A=${STEPS_A:-16}
STEPS_B=${STEPS_B:-32}
CONC=${CONC:-1 4 16 64}
STAGES=${STAGES:-precision throughput_a throughput_b profile_gpu}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
export F5SERVE_REFERENCE_PYTHON=${F5SERVE_REFERENCE_PYTHON:-$(command -v "$PY")}
reference=--reference
[ -n "${NO_REFERENCE:-}" ] && reference=

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv \
    2>/dev/null | tee "$OUT/gpu.txt"
"$PY" -c 'import torch; print("torch", torch.__version__)'

stage() {  # name, seconds, command...
    local name=$1 limit=$2
    shift 2
    [[ " $STAGES " == *" $name "* ]] || return 0
    echo "=== $name"
    local started=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log" | grep -v -e '^wrote ' -e Warning
    echo "=== $name: exit ${PIPESTATUS[0]} after $((SECONDS - started)) s"
}

stage precision 150 "$PY" -m bench.precision --preset "$PRESET" --device "$DEVICE" \
    --steps "$STEPS_A" --out "$OUT/precision.json"
# shellcheck disable=SC2086  # CONC is a list
stage throughput_a 240 "$PY" -m bench.throughput --preset "$PRESET" --device "$DEVICE" \
    --dtype "$DTYPE" --steps "$STEPS_A" --concurrency $CONC --text-repeat 3 --anchor \
    $reference --out "$OUT/throughput_${STEPS_A}.json"
# shellcheck disable=SC2086
stage throughput_b 150 "$PY" -m bench.throughput --preset "$PRESET" --device "$DEVICE" \
    --dtype "$DTYPE" --steps "$STEPS_B" --concurrency $CONC --text-repeat 3 --anchor \
    --out "$OUT/throughput_${STEPS_B}.json"
stage profile_gpu 120 "$PY" -m bench.profile_gpu --preset "$PRESET" --device "$DEVICE" \
    --dtype "$DTYPE" --steps "$STEPS_A" --out "$OUT/profile_gpu.txt"
