#!/usr/bin/env bash
# Create the REFERENCE virtualenv (.venv-ref) with the upstream F5-TTS implementation.
#
#   bench/setup_reference.sh          # idempotent; re-running only fills in what is missing
#
# FOR BENCHMARKS AND CORRECTNESS CHECKS ONLY. This venv holds the upstream `f5-tts` package
# (1.1.22), `vocos` 0.1.0 and torch/torchaudio 2.11.0, so that bench/reference_runner.py and
# bench/reference_probe.py can time and question the reference implementation. It is NEVER a
# runtime, test or CI dependency of f5serve: nothing in src/ may import f5_tts or vocos, and the
# project's own .venv never gets these packages. .venv-ref/ is git-ignored.
#
# What it installs (exact pins in bench/requirements-reference.txt, installed with --no-deps so
# that pip does not pull f5-tts's heavy optional dependencies: gradio, bitsandbytes, hydra-core,
# cached_path, transformers_stream_generator, unidecode):
#   - torch 2.11.0 + torchaudio 2.11.0 from PyPI. PyPI only has the CUDA 13 build for Linux, so
#     this pulls ~3.5 GB of nvidia-* wheels; it runs fine on CPU. The venv is ~5.8 GB in all.
#   - torchcodec 0.11.1 + Debian's ffmpeg: torchaudio >= 2.9 decodes in torchaudio.load through
#     torchcodec, which needs FFmpeg's shared libraries; pydub needs the ffmpeg binary for any
#     non-wav reference audio.
#   - what `from f5_tts.infer.utils_infer import infer_process` imports: transformers, vocos
#     (+ encodec), x-transformers, librosa, torchdiffeq, rjieba, pypinyin, pydub, matplotlib,
#     and (through f5_tts.model.__init__ -> trainer/dataset) accelerate, ema-pytorch, wandb, datasets.
#   - f5-tts 1.1.22 itself.
# Environment: PYTHON (interpreter for the venv, default python3), F5SERVE_REF_VENV (default
# <repo>/.venv-ref).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${F5SERVE_REF_VENV:-$root/.venv-ref}"
python="${PYTHON:-python3}"
reqs="$root/bench/requirements-reference.txt"

# 1. FFmpeg (system package) for torchcodec / pydub.
if ! command -v ffmpeg >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
        echo "setup_reference: installing ffmpeg (Debian) for torchcodec/pydub"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
    else
        echo "setup_reference: WARNING: ffmpeg not found; install it (e.g. apt-get install ffmpeg)," \
            "torchaudio.load in the reference needs FFmpeg's libraries" >&2
    fi
fi

# 2. The venv.
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
py="$venv/bin/python"

check() {
    HF_HUB_OFFLINE=1 WANDB_MODE=disabled "$py" - <<'EOF' >/dev/null 2>&1
import importlib.metadata as md
assert md.version("torch") == "2.11.0", md.version("torch")
assert md.version("torchaudio") == "2.11.0"
assert md.version("f5-tts") == "1.1.22"
assert md.version("vocos") == "0.1.0"
from f5_tts.infer.utils_infer import infer_process, load_model, load_vocoder  # noqa: F401
EOF
}

if check; then
    echo "setup_reference: $venv already complete"
else
    # 3. Exact package set, no resolver (the pins already form a working set).
    "$py" -m pip install --quiet --disable-pip-version-check --no-deps -r "$reqs"
    if ! check; then
        echo "setup_reference: ERROR: f5_tts.infer.utils_infer does not import in $venv" >&2
        HF_HUB_OFFLINE=1 WANDB_MODE=disabled "$py" -c "from f5_tts.infer.utils_infer import infer_process" || true
        exit 1
    fi
fi

"$py" - <<'EOF'
import importlib.metadata as md
print("setup_reference: ok:", ", ".join(f"{d} {md.version(d)}" for d in ("torch", "torchaudio", "f5-tts", "vocos", "torchcodec")))
EOF
echo "setup_reference: run e.g. $venv/bin/python bench/reference_runner.py SPEC.json"
