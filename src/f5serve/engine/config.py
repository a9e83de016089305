"""DiT architecture configs and presets (frozen dataclasses, no global state).

Synthesis options are :class:`f5serve.engine.options.SynthesisOptions`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from f5serve.errors import ModelError, NotFound, UnknownPreset

# Keys that appear in official/community arch configs but do not change inference results.
_TRAINING_ONLY_KEYS = frozenset({"checkpoint_activations", "attn_backend", "attn_mask_enabled"})


@dataclass(frozen=True)
class DiTConfig:
    """Shape of an F5-TTS DiT backbone (upstream F5-TTS's ``DiT`` arguments)."""

    dim: int  # model width
    depth: int  # number of transformer blocks
    heads: int  # attention heads
    ff_mult: int = 2  # MLP expansion
    text_dim: int = 512  # text embedding width
    conv_layers: int = 4  # ConvNeXt-V2 blocks in the text embedding
    text_mask_padding: bool = True  # v1: zero filler positions around every text block
    pe_attn_head: int | None = None  # RoPE on the first N heads only (v0: 1); None = all heads
    dim_head: int = 64  # width of one head
    mel_dim: int = 100  # mel bands
    text_num_embeds: int | None = None  # vocab size; None = taken from vocab.txt at load time
    qk_norm: str | None = None  # not used by any public model; only None is supported
    long_skip_connection: bool = False  # not used by any public model; only False is supported

    def __post_init__(self) -> None:
        if self.qk_norm is not None:
            raise ModelError(f"arch option qk_norm={self.qk_norm!r} is not supported (use null)")
        if self.long_skip_connection:
            raise ModelError("arch option long_skip_connection=true is not supported")
        for name in ("dim", "depth", "heads", "dim_head", "text_dim", "mel_dim", "ff_mult"):
            if getattr(self, name) <= 0:
                raise ModelError(f"arch option {name} must be positive, got {getattr(self, name)}")

    def with_vocab_size(self, size: int) -> DiTConfig:
        """This config with ``text_num_embeds`` set to ``size``."""
        return dataclasses.replace(self, text_num_embeds=size)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DiTConfig:
        """Build from an arch mapping (preset keys or an official YAML ``arch`` table)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields - _TRAINING_ONLY_KEYS)
        if unknown:
            raise ModelError(f"unknown arch option(s): {', '.join(unknown)}")
        missing = [k for k in ("dim", "depth", "heads") if k not in data]
        if missing:
            raise ModelError(f"arch is missing required option(s): {', '.join(missing)}")
        return cls(**{k: v for k, v in data.items() if k in fields})


PRESETS: dict[str, DiTConfig] = {
    "F5TTS_v1_Base": DiTConfig(dim=1024, depth=22, heads=16),
    "F5TTS_Base": DiTConfig(dim=1024, depth=22, heads=16, text_mask_padding=False, pe_attn_head=1),
    "F5TTS_v1_Small": DiTConfig(dim=768, depth=18, heads=12),
    "F5TTS_Small": DiTConfig(dim=768, depth=18, heads=12, text_mask_padding=False, pe_attn_head=1),
    # Tiny models for tests (the golden fixtures' shapes).
    "tiny_v1": DiTConfig(dim=64, depth=2, heads=4, text_dim=32, conv_layers=2),
    "tiny_v0": DiTConfig(
        dim=64,
        depth=2,
        heads=4,
        text_dim=32,
        conv_layers=2,
        text_mask_padding=False,
        pe_attn_head=1,
    ),
}


def resolve_arch(arch: str | Path | Mapping[str, Any] | DiTConfig) -> DiTConfig:
    """Turn a preset name, a JSON file path or an arch mapping into a :class:`DiTConfig`."""
    if isinstance(arch, DiTConfig):
        return arch
    if isinstance(arch, Mapping):
        return DiTConfig.from_dict(arch)
    name = str(arch)
    if name in PRESETS:
        return PRESETS[name]
    if name.endswith(".json"):
        path = Path(name)
        if not path.is_file():
            raise NotFound(f"arch file not found: {path}")
        return DiTConfig.from_dict(json.loads(path.read_text()))
    raise UnknownPreset(
        f"unknown architecture preset {name!r}; known presets: {', '.join(PRESETS)}"
    )
