#!/usr/bin/env bash
# Create .venv in the repository root and install f5serve into it.
#
#   scripts/setup.sh            # runtime + development tools + the s3 and asr extras
#
# PyTorch is installed first, with the build that fits the machine:
#   - NVIDIA GPU (nvidia-smi answers): the CUDA build from PyPI;
#   - otherwise on Linux/Windows: the CPU build (a local wheel when pip can see one,
#     else PyTorch's CPU index), never the multi-GB CUDA packages;
#   - macOS: the PyPI build (CPU + MPS).
# Set F5SERVE_TORCH_SPEC to override the torch requirement (default torch==2.13.0).
#
# Chromium for the browser tests (tests/integration/test_web_page.py) is installed with apt-get
# where it is missing (Debian's package; Playwright's own browser download is not used). Set
# F5SERVE_NO_CHROMIUM=1 to skip that; the browser tests are then skipped, saying why.
#
# Where npm is installed, the TypeScript client's tools (clients/typescript: typescript,
# openapi-typescript) are installed with `npm ci`, so that its test also type-checks it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
torch_spec="${F5SERVE_TORCH_SPEC:-torch==2.13.0}"

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

if .venv/bin/python -c "import torch" 2>/dev/null; then
    echo "setup: torch $(.venv/bin/python -c 'import torch; print(torch.__version__)') already installed"
elif [ "$(uname -s)" = "Darwin" ]; then
    "${pip[@]}" "$torch_spec"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found, installing the CUDA build of $torch_spec"
    "${pip[@]}" "$torch_spec"
else
    echo "setup: no GPU found, installing the CPU build of $torch_spec"
    "${pip[@]}" "${torch_spec}+cpu" 2>/dev/null \
        || "${pip[@]}" "$torch_spec" --index-url https://download.pytorch.org/whl/cpu
fi

# asr: transformers for speech recognition; it needs torch, already installed above, so pip
# pulls no other torch build
"${pip[@]}" -e ".[dev,s3,asr]"

install_chromium() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || return 1
        sudo=(sudo -n)
    fi
    echo "setup: installing Chromium (apt-get) for the browser tests"
    "${sudo[@]}" apt-get update -qq \
        && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}
if [ -z "${F5SERVE_NO_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 \
    && command -v apt-get >/dev/null 2>&1; then
    install_chromium || echo "setup: could not install Chromium; the browser tests will be skipped"
fi
if command -v npm >/dev/null 2>&1; then
    (cd clients/typescript && npm ci --silent --no-audit --no-fund) \
        || echo "setup: npm ci failed; the TypeScript client will not be type-checked"
fi
echo "setup: done. Activate with: source .venv/bin/activate"
