#!/usr/bin/env bash
# The GPU measurements of docs/performance.md in one call (BUDGET seconds, default 480: give the
# call about a minute more) on a lent GPU machine, whose image has Python with CUDA PyTorch (and
# torchaudio, triton) but none of our other dependencies and no network.
#
# Beforehand, here: `bash bench/fetch_wheels.sh` puts wheels (Python 3.12, manylinux x86_64) of
# what the image lacks, our engine's dependencies and the reference's inference, in .whl/; carry
# it. Then run `bash bench/device_run.sh` there; logs and JSON land in $OUT (default
# bench/results), and a summary table of every stage is printed last.
#
# Stages, most important first (STAGES picks some; each has a time limit, and all of them share
# BUDGET seconds, so a slow stage shortens or skips the later ones; a failed stage loses only its
# own numbers). Inductor's cache starts empty: the first compiled stage's start-up is the cold
# start, a later one's a warm start (the summary says which). Stages marked * are measured in
# the process of the stage above them (bench.throughput --variant, after its own runs), so they
# cost their bursts, not another start-up; they need that stage in STAGES too.
#   graphs      throughput at CONC with the compiled DiT (COMPILE=on|max) and CUDA graphs, the
#               device's default frame budget; the one-request anchor; time to first audio
#   packed *    the same with packed batches (PACKING, default auto: the variable-length
#               attention kernel), no padding computed
#   ttfa *      at TTFA_CONC with a short first chunk (FIRST_CHUNK seconds, the
#               first_chunk_seconds option) and streams' first chunks admitted first (openers
#               "first", the default): time to first audio and stalls under load
#   ttfa_waves *  the ttfa set-up with openers "alone" in waves of OPENER_FRAMES frames (default
#               32768: about 27 first chunks of 2 s after a 5 s reference, with guidance)
#   packing     one compiled DiT forward on a batch of mixed lengths, padded against packed
#   reference   eager at REF_CONC and the reference's infer_process on the same requests (the
#               same-run ratio; the summary compares every run's c = 1 and anchor with it)
#   precision   float32/bfloat16/float16, compiled and packed bfloat16/float16 against
#               float64, and each chunk alone against batched (packed: the kernel's rows)
#   profile_gpu a torch.profiler view of compiled c = 1 and c = 16 bursts with CUDA graphs
#               (packed as PACKING): what is left of one request's time once launches are gone
#   graphs_max  the graphs stage compiled with max-autotune and packed (COMPILE=max; its own
#               cache, so its start-up is a cold start of that mode)
#   compiled    the graphs stage without CUDA graphs
#   ttfa_alone *  the ttfa set-up with openers "alone" (other chunks wait while first chunks run)
#   budget_old *  compiled at OLD_BUDGET_CONC (64) under the former CUDA frame budget (65 536)
#   eager, warm_start, throughput_32 (not by default): eager throughput at CONC; a second start
#               with the first stage's cache; 32 steps
# PRESET, DEVICE, DTYPE, STEPS, CONC, REF_CONC, TTFA_CONC, FIRST_CHUNK, OPENER_FRAMES, COMPILE,
# PACKING, PACKING_ARGS (more options of bench.packing), BUDGET override the defaults. A dry run
# on the CPU, without the wheels:
#   PRESET=tiny_v1 DEVICE=cpu DTYPE=float32 PACKING=on CONC="1 2" REF_CONC=1 TTFA_CONC="1 4" \
#   OLD_BUDGET_CONC=2 PACKING_ARGS="--lengths 300 200 --copies 1" NO_REFERENCE=1 NO_WHEELS=1 \
#   PY=.venv/bin/python BUDGET=900 bash bench/device_run.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-bench/results}
PRESET=${PRESET:-F5TTS_v1_Base}
DEVICE=${DEVICE:-cuda}
DTYPE=${DTYPE:-bfloat16}
STEPS=${STEPS:-16}
CONC=${CONC:-1 16 64}
REF_CONC=${REF_CONC:-1}
COMPILE=${COMPILE:-on}
PACKING=${PACKING:-auto}
BUDGET=${BUDGET:-480}
STAGES=${STAGES:-graphs packed ttfa ttfa_waves packing reference precision profile_gpu graphs_max \
compiled ttfa_alone budget_old}  # they run in this order (the order of the calls below)
OPENER_FRAMES=${OPENER_FRAMES:-32768}
TTFA_CONC=${TTFA_CONC:-1 64}
FIRST_CHUNK=${FIRST_CHUNK:-2}
CACHE=${COMPILE_CACHE:-/tmp/f5serve-inductor-cache}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
# the random weights are made once and shared by the stages (bench/common.py make_weights)
export F5SERVE_BENCH_WEIGHTS=${F5SERVE_BENCH_WEIGHTS:-/tmp/f5serve-bench-weights}
if [ -z "${NO_WHEELS:-}" ] && compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
export F5SERVE_REFERENCE_PYTHON=${F5SERVE_REFERENCE_PYTHON:-$(command -v "$PY")}
reference=--reference
[ -n "${NO_REFERENCE:-}" ] && reference=

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv \
    2>/dev/null | tee "$OUT/gpu.txt"
"$PY" -c 'import torch, importlib.util as u; print("torch", torch.__version__, "triton",
    bool(u.find_spec("triton")))'
echo "C compiler (triton builds its launcher with it): $(command -v cc gcc | head -1)"
rm -rf "$CACHE" "$CACHE-max"  # the first compiled stage measures a cold start

stage() {  # name, seconds, command...
    local name=$1 limit=$2 left=$((BUDGET - SECONDS))
    shift 2
    [[ " $STAGES " == *" $name "* ]] || return 0
    if ((left < 30)); then
        echo "=== $name: skipped, ${left} s of the budget left" | tee "$OUT/$name.log"
        return 0
    fi
    ((limit > left)) && limit=$left
    echo "=== $name (at most $limit s)"
    local started=$SECONDS
    timeout -k 10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log" |
        grep --line-buffered -v -e '^wrote ' -e Warning
    echo "=== $name: exit ${PIPESTATUS[0]} after $((SECONDS - started)) s" | tee -a "$OUT/$name.log"
}

tp=("$PY" -m bench.throughput --preset "$PRESET" --device "$DEVICE" --dtype "$DTYPE"
    --steps "$STEPS" --text-repeat 3 --no-serial)  # the throughput benchmark, common options
compiled=(--compile "$COMPILE" --compile-cache "$CACHE")

# Set-ups measured in the process of another stage (bench.throughput --variant): each costs its
# bursts, not a start-up of its own; a set-up is measured when its name is in STAGES.
variant() {  # stage name, KEY=VALUE,... (see bench/throughput.py)
    [[ " $STAGES " == *" $1 "* ]] && printf -- '--variant\n%s:%s\n' "$1" "$2"
}
ttfa_conc=${TTFA_CONC// /+}
mapfile -t with_graphs < <(
    variant packed "packing=$PACKING,anchor=off"
    variant ttfa "first_chunk=$FIRST_CHUNK,openers=first,concurrency=$ttfa_conc,anchor=off"
    variant ttfa_waves "first_chunk=$FIRST_CHUNK,openers=alone,opener_frames=$OPENER_FRAMES,\
concurrency=$ttfa_conc,anchor=off"
)
mapfile -t with_compiled < <(
    variant ttfa_alone "cuda_graphs=auto,first_chunk=$FIRST_CHUNK,openers=alone,\
concurrency=$ttfa_conc,anchor=off"
    variant budget_old "batch_frames=65536,concurrency=${OLD_BUDGET_CONC:-64},anchor=off"
)

# shellcheck disable=SC2086  # CONC and REF_CONC are lists
stage graphs 240 "${tp[@]}" --concurrency $CONC --anchor "${compiled[@]}" --cuda-graphs auto \
    --out "$OUT/graphs.json" "${with_graphs[@]}"
# shellcheck disable=SC2086  # PACKING_ARGS are options
stage packing 60 "$PY" -m bench.packing --preset "$PRESET" --device "$DEVICE" --dtype "$DTYPE" \
    "${compiled[@]}" ${PACKING_ARGS:-} --out "$OUT/packing.json"
# shellcheck disable=SC2086
stage reference 120 "${tp[@]}" --concurrency $REF_CONC --anchor $reference --cuda-graphs off \
    --out "$OUT/reference.json"
stage precision 120 "$PY" -m bench.precision --preset "$PRESET" --device "$DEVICE" \
    --steps "$STEPS" --trials 1 "${compiled[@]}" --packing "$PACKING" --out "$OUT/precision.json"
stage profile_gpu 90 "$PY" -m bench.profile_gpu --preset "$PRESET" --device "$DEVICE" \
    --dtype "$DTYPE" --steps "$STEPS" --concurrency 1 16 "${compiled[@]}" --cuda-graphs auto \
    --packing "$PACKING" --out "$OUT/profile_gpu.txt"
# shellcheck disable=SC2086
stage graphs_max 150 "${tp[@]}" --concurrency $CONC --anchor --compile max \
    --compile-cache "$CACHE-max" --cuda-graphs auto --packing "$PACKING" \
    --out "$OUT/graphs_max.json"
# shellcheck disable=SC2086
stage compiled 150 "${tp[@]}" --concurrency $CONC --anchor "${compiled[@]}" --cuda-graphs off \
    --out "$OUT/compiled.json" "${with_compiled[@]}"
# shellcheck disable=SC2086
stage eager 110 "${tp[@]}" --concurrency $CONC --anchor --cuda-graphs off --out "$OUT/eager.json"
stage warm_start 80 "${tp[@]}" --concurrency 1 "${compiled[@]}" --cuda-graphs off \
    --out "$OUT/warm_start.json"
# shellcheck disable=SC2086
stage throughput_32 150 "${tp[@]}" --concurrency $CONC --steps 32 --out "$OUT/throughput_32.json"

echo "=== summary after $SECONDS s"
"$PY" -m bench.device_summary "$OUT"
