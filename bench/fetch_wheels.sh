#!/usr/bin/env bash
# Download, here, the wheels that bench/device_run.sh installs on a lent GPU machine (Python 3.12,
# x86_64, no network there; its image has torch, numpy, pyyaml, safetensors, tqdm, scipy,
# transformers and torchdiffeq but none of the rest):
#   - what our engine imports (soundfile with cffi and pycparser, soxr, av, rjieba, pypinyin,
#     num2words, cn2an with proces);
#   - what the reference's infer_process imports (f5-tts, x-transformers, einx, frozendict,
#     loguru, torch-einops-utils, vocos, pydub; the rest of its package is stubbed, see
#     bench/reference_runner.py _lean_imports).
# Versions: ours as tested here, the reference's as bench/requirements-reference.txt pins them.
#
#   bash bench/fetch_wheels.sh    # into .whl/ (git-ignored; carry it: run(carry=[".whl"]))
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DEST=${DEST:-.whl}
PY=${PY:-python3}
PYTHON_VERSION=${PYTHON_VERSION:-3.12}
WHEELS=(
    soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 soxr==1.1.0 av==18.1.0 rjieba==0.2.2
    pypinyin==0.55.0 num2words==0.5.14 cn2an==0.5.24 proces==0.1.7
    f5-tts==1.1.22 x-transformers==2.31.10 einx==0.4.3 frozendict==2.5.1 loguru==0.7.3
    torch-einops-utils==0.2.0 vocos==0.1.0 pydub==0.25.1
)
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
    manylinux1_x86_64 any; do
    platforms+=(--platform "$p")
done
rm -rf "$DEST"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYTHON_VERSION" \
    --implementation cp "${platforms[@]}" -d "$DEST" "${WHEELS[@]}"
echo "$(find "$DEST" -type f -name '*.whl' | wc -l) wheels, $(du -sh "$DEST" | cut -f1) in $DEST"
# the device tool carries the working tree and these wheels, at most 64 MiB a call
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb | tail -1 | cut -f1)
total=$(((tree + $(du -sb "$DEST" | cut -f1)) / 1048576))
echo "with the working tree: $total MiB of the 64 MiB a call may carry"
((total < 64)) || { echo "too much to carry: make the tree or the wheel set smaller" >&2; exit 1; }
