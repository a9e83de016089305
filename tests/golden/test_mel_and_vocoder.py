"""The log-mel front end and the Vocos vocoder reproduce the reference's golden outputs
(float32, CPU; relative L2 error ≤ 1e-5 per case)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from f5serve.engine.mel import MelSpectrogram
from f5serve.engine.vocoder import Vocos

TOL = 1e-5


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).norm() / expected.norm())


@torch.inference_mode()
def test_log_mel_of_real_speech_matches_reference(golden_dir: Path) -> None:
    g = load_file(golden_dir / "mel.safetensors")
    mel = MelSpectrogram()(g["wave"])  # [1, 100, frames]
    assert mel.shape == g["mel"].shape
    assert rel_err(mel, g["mel"]) <= TOL


@torch.inference_mode()
def test_vocos_decode_matches_reference(golden_dir: Path) -> None:
    g = load_file(golden_dir / "vocos_decode.safetensors")
    vocos = Vocos.from_dir(golden_dir / "vocos").eval()
    wave = vocos(g["mel"])  # [1, samples]
    assert wave.shape == g["wave"].shape
    assert rel_err(wave, g["wave"]) <= TOL


@torch.inference_mode()
def test_batched_decode_of_different_lengths_matches_reference(golden_dir: Path) -> None:
    g = load_file(golden_dir / "vocos_decode.safetensors")
    vocos = Vocos.from_dir(golden_dir / "vocos").eval()
    mel = g["mel"][0].transpose(0, 1)  # [frames, 100]
    full, short = vocos.decode_batch([mel, mel[:37]])  # the short item pads the batch's second row
    assert rel_err(full, g["wave"][0]) <= TOL
    assert rel_err(short, vocos(g["mel"][:, :, :37])[0]) <= TOL
