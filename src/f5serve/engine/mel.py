"""Vocos-type log-mel spectrogram as upstream F5-TTS computes it, in torch only."""

from __future__ import annotations

import math

import torch
from torch import nn

SAMPLE_RATE = 24000
N_FFT = 1024
HOP_LENGTH = 256
N_MELS = 100


def _hz_to_mel(freq: float) -> float:
    """HTK mel scale."""
    return 2595.0 * math.log10(1.0 + freq / 700.0)


def mel_filterbank(
    n_freqs: int = N_FFT // 2 + 1,
    n_mels: int = N_MELS,
    sample_rate: int = SAMPLE_RATE,
    f_min: float = 0.0,
    f_max: float | None = None,
) -> torch.Tensor:
    """Triangular HTK mel filters without area normalisation: ``[n_freqs, n_mels]``."""
    f_max = sample_rate / 2 if f_max is None else f_max
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    mel_pts = torch.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2)
    f_pts = 700.0 * (10.0 ** (mel_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]  # [n_mels + 1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)  # [n_freqs, n_mels + 2]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0)


class MelSpectrogram(nn.Module):
    """Waveform ``[B, samples]`` at 24 kHz → log-mel ``[B, 100, frames]``.

    Magnitude STFT (Hann window, ``center=True`` with reflect padding), HTK mel filters, then
    ``log(clamp(x, 1e-5))``. ``frames = samples // 256 + 1``.
    """

    window: torch.Tensor
    filters: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("filters", mel_filterbank(), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            wave.float(),
            n_fft=N_FFT,
            hop_length=HOP_LENGTH,
            win_length=N_FFT,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        ).abs()  # [B, 513, frames]
        mel = torch.matmul(spec.transpose(-1, -2), self.filters).transpose(-1, -2)
        return mel.clamp(min=1e-5).log()


def frames_for_samples(samples: int) -> int:
    """Number of mel frames the reference takes as the audio length (``samples // hop``)."""
    return samples // HOP_LENGTH
