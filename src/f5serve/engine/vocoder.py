"""Vocos mel → waveform vocoder (``charactr/vocos-mel-24khz`` layout)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from f5serve.engine.checkpoint import load_into, read_state_dict
from f5serve.engine.masks import length_mask
from f5serve.errors import ModelError, NotFound


@dataclass(frozen=True)
class VocosConfig:
    """Shape of a Vocos model, read from its ``config.yaml``."""

    input_channels: int = 100  # mel bands
    dim: int = 512  # backbone width
    intermediate_dim: int = 1536  # ConvNeXt hidden width
    num_layers: int = 8  # ConvNeXt blocks
    n_fft: int = 1024  # inverse STFT size
    hop_length: int = 256  # inverse STFT hop

    @classmethod
    def from_yaml(cls, path: Path) -> VocosConfig:
        """Read the ``backbone`` and ``head`` sections of an official Vocos config."""
        try:
            raw: Any = yaml.safe_load(path.read_text())
            backbone = raw["backbone"]["init_args"]
            head = raw["head"]["init_args"]
            if head.get("padding", "same") != "same":
                raise ModelError(f"{path}: only ISTFT padding 'same' is supported")
            return cls(
                input_channels=int(backbone["input_channels"]),
                dim=int(backbone["dim"]),
                intermediate_dim=int(backbone["intermediate_dim"]),
                num_layers=int(backbone["num_layers"]),
                n_fft=int(head["n_fft"]),
                hop_length=int(head["hop_length"]),
            )
        except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path} is not a Vocos config: {exc}") from exc


class ConvNeXtBlock(nn.Module):
    """Vocos ConvNeXt block with layer scale. ``x: [B, C, T]``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, hidden)
        self.pwconv2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.dwconv(x).transpose(1, 2))
        h = self.gamma * self.pwconv2(F.gelu(self.pwconv1(h)))
        return x + h.transpose(1, 2)


class VocosBackbone(nn.Module):
    """Conv embed → LayerNorm → ConvNeXt blocks → LayerNorm. ``[B, mel, T]`` → ``[B, T, C]``."""

    def __init__(self, cfg: VocosConfig) -> None:
        super().__init__()
        self.embed = nn.Conv1d(cfg.input_channels, cfg.dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.convnext = nn.ModuleList(
            [ConvNeXtBlock(cfg.dim, cfg.intermediate_dim) for _ in range(cfg.num_layers)]
        )
        self.final_layer_norm = nn.LayerNorm(cfg.dim, eps=1e-6)

    def forward(self, mel: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mel: [B, 100, T]`` → ``[B, T, C]``; ``mask: [B, T]`` zeroes padded frames before
        every convolution, so a padded item computes exactly what it computes alone."""
        keep = None if mask is None else mask[:, None, :]  # [B, 1, T]
        x = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x if keep is None else x.masked_fill(~keep, 0.0))
        out: torch.Tensor = self.final_layer_norm(x.transpose(1, 2))
        return out


class ISTFT(nn.Module):
    """Inverse STFT with "same" padding: irfft, window, overlap-add, envelope division, trim."""

    window: torch.Tensor

    def __init__(self, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop_length
        self.register_buffer("window", torch.hann_window(n_fft))

    def _overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        # frames: [B, n_fft, T] → [B, (T - 1)·hop + n_fft]
        length = (frames.shape[-1] - 1) * self.hop + self.n_fft
        out = F.fold(
            frames, output_size=(1, length), kernel_size=(1, self.n_fft), stride=(1, self.hop)
        )
        return out[:, 0, 0, :]

    def forward(self, spec: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``spec: [B, n_fft/2 + 1, T]`` complex → ``[B, T·hop]``. With ``mask: [B, T]`` (True
        on a row's real frames, which come first), a row of ``n`` real frames is exact up to
        sample ``n·hop``, as if it were alone, and not a number after that."""
        pad = (self.n_fft - self.hop) // 2
        frames = (
            torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward") * self.window[None, :, None]
        )
        window_sq = self.window.square()[None, :, None].expand(1, -1, spec.shape[-1])
        if mask is not None:  # an item's padded frames add nothing to its samples
            keep = mask[:, None, :]  # [B, 1, T]
            frames = frames * keep
            window_sq = window_sq * keep
        wave = self._overlap_add(frames)[:, pad:-pad]
        envelope = self._overlap_add(window_sq)[:, pad:-pad]
        return wave / envelope


class ISTFTHead(nn.Module):
    """Linear → log-magnitude and phase → complex spectrum → waveform."""

    def __init__(self, cfg: VocosConfig) -> None:
        super().__init__()
        self.out = nn.Linear(cfg.dim, cfg.n_fft + 2)
        self.istft = ISTFT(cfg.n_fft, cfg.hop_length)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x: [B, T, C]`` → ``[B, T·hop]`` (``mask``: see :meth:`ISTFT.forward`)."""
        mag, phase = self.out(x).transpose(1, 2).chunk(2, dim=1)
        mag = torch.clip(torch.exp(mag), max=1e2)
        out: torch.Tensor = self.istft(torch.polar(mag, phase), mask)
        return out


class Vocos(nn.Module):
    """Vocos vocoder: log-mel ``[B, 100, T]`` → waveform ``[B, T·256]`` at 24 kHz."""

    def __init__(self, cfg: VocosConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = VocosBackbone(cfg)
        self.head = ISTFTHead(cfg)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.backbone(mel))
        return out

    @torch.inference_mode()
    def decode_batch(self, mels: list[torch.Tensor]) -> list[torch.Tensor]:
        """Vocode mels of different lengths (each ``[T_i, 100]``) in one batched pass.

        The padded frames are masked in the backbone and left out of each item's overlap-add
        and window envelope (which depend on where the item ends), and each waveform is cut at
        its own length, so every item equals itself vocoded alone.
        """
        lengths = [int(m.shape[0]) for m in mels]
        padded = nn.utils.rnn.pad_sequence(mels, batch_first=True).transpose(1, 2)  # [B, 100, T]
        mask = length_mask(lengths, padded.device)
        waves = self.head(self.backbone(padded, mask), mask)  # [B, T·hop]
        hop = self.cfg.hop_length
        return [waves[i, : n * hop] for i, n in enumerate(lengths)]

    @classmethod
    def from_dir(cls, path: str | Path) -> Vocos:
        """Load ``config.yaml`` + ``pytorch_model.bin`` (or ``model.safetensors``) from a folder."""
        folder = Path(path)
        config = folder / "config.yaml"
        if not config.is_file():
            raise NotFound(f"vocoder config not found: {config}")
        weights = next(
            (
                folder / n
                for n in ("pytorch_model.bin", "model.safetensors")
                if (folder / n).is_file()
            ),
            None,
        )
        if weights is None:
            raise NotFound(f"vocoder weights not found in {folder} (expected pytorch_model.bin)")
        model = cls(VocosConfig.from_yaml(config))
        # The file also holds the feature extractor's mel buffers; we compute those ourselves.
        state = {
            k: v
            for k, v in read_state_dict(weights).items()
            if not k.startswith("feature_extractor.")
        }
        load_into(model, state, f"vocoder {weights}")
        return model.eval()
