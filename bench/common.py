"""Helpers shared by the benchmarks: random weights in the official layout, the reference runner,
and a description of the machine. Benchmarks are scripts, not tests."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import soundfile as sf
import torch
from safetensors.torch import save_file

from f5serve.engine.config import PRESETS
from f5serve.engine.dit import DiT
from f5serve.engine.mel import MelSpectrogram
from f5serve.engine.vocoder import Vocos, VocosConfig

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
VOCAB = FIXTURES / "golden" / "vocab.txt"
VOCOS_CONFIG = FIXTURES / "golden" / "keys" / "vocos_mel_24khz_config.yaml"
# The reference's interpreter: .venv-ref (bench/setup_reference.sh), or another one that can
# import f5_tts (a GPU image with the reference's wheels on its path, say).
REF_VENV_PYTHON = Path(
    os.environ.get("F5SERVE_REFERENCE_PYTHON", str(ROOT / ".venv-ref" / "bin" / "python"))
)


def make_weights(workdir: Path, preset: str, seed: int = 0) -> dict[str, Any]:
    """Random DiT (``preset``) and full-size Vocos weights, saved as the official files.

    With ``F5SERVE_BENCH_WEIGHTS`` set, they are kept in that folder and made once: later
    benchmarks (``bench/device_run.sh`` runs several) load them instead of ``workdir``'s."""
    kept = os.environ.get("F5SERVE_BENCH_WEIGHTS")
    if kept:
        workdir = Path(kept) / f"{preset}-seed{seed}"
    vocab_size = sum(1 for _ in VOCAB.open(encoding="utf-8"))
    cfg = PRESETS[preset].with_vocab_size(vocab_size)
    checkpoint, vocos_dir = workdir / f"{preset}.safetensors", workdir / "vocos"
    made = workdir / "complete"  # written last: a folder without it was cut short
    if not made.is_file():
        vocos_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(seed)
        model = DiT(cfg)
        state = {
            f"ema_model.transformer.{k}": v.contiguous() for k, v in model.state_dict().items()
        }
        save_file(state, str(checkpoint))
        vocos = Vocos(VocosConfig.from_yaml(VOCOS_CONFIG))
        mel = MelSpectrogram()
        vocos_state = {
            "feature_extractor.mel_spec.spectrogram.window": mel.window,
            "feature_extractor.mel_spec.mel_scale.fb": mel.filters,
            **vocos.state_dict(),
        }
        torch.save(vocos_state, vocos_dir / "pytorch_model.bin")
        (vocos_dir / "config.yaml").write_text(VOCOS_CONFIG.read_text())
        made.touch()
    arch = {
        "dim": cfg.dim,
        "depth": cfg.depth,
        "heads": cfg.heads,
        "ff_mult": cfg.ff_mult,
        "text_dim": cfg.text_dim,
        "conv_layers": cfg.conv_layers,
        "text_mask_padding": cfg.text_mask_padding,
        "pe_attn_head": cfg.pe_attn_head,
    }
    return {"checkpoint": checkpoint, "vocab": VOCAB, "arch": arch, "vocoder": vocos_dir}


def clip_reference(src: Path, dst: Path, seconds: float) -> Path:
    """The first ``seconds`` of a clip (as a 24 kHz float wav)."""
    wave, sr = sf.read(str(src), dtype="float32")
    sf.write(str(dst), wave[: int(seconds * sr)], sr, subtype="FLOAT")
    return dst


def run_reference(
    files: dict[str, Any], mode: str = "bench", timeout: float | None = None, **spec: Any
) -> dict[str, Any] | None:
    """Time the reference on the model ``files`` (from :func:`make_weights`) with
    ``bench/reference_runner.py MODE`` in the reference venv; None when that venv is not set up.
    :class:`RuntimeError` when the runner fails (:class:`subprocess.TimeoutExpired` past
    ``timeout`` seconds)."""
    spec = {
        "checkpoint": files["checkpoint"],
        "vocab": files["vocab"],
        "arch": files["arch"],
        "vocoder_dir": files["vocoder"],
        **spec,
    }
    if not REF_VENV_PYTHON.exists():
        print(
            "reference venv missing (bench/setup_reference.sh): skipping the reference",
            file=sys.stderr,
        )
        return None
    proc = subprocess.run(
        [str(REF_VENV_PYTHON), str(ROOT / "bench" / "reference_runner.py"), mode, "-"],
        input=json.dumps(spec, default=str),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        raise RuntimeError("the reference runner failed")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def machine() -> dict[str, Any]:
    """Hardware and software the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    return {
        "cpu": names[0] if names else cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "loadavg": os.getloadavg(),  # well above 0 means other work shared the cores
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write results (creating bench/results/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))
    print(f"wrote {path}")
