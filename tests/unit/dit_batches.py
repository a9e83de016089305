"""Random padded batches for the DiT's forward (the compile and packing tests)."""

from __future__ import annotations

import torch

from f5serve.engine.dit import DiT
from f5serve.engine.masks import length_mask


def flow_inputs(
    model: DiT, lengths: list[int], seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """States, conditioning, text features (zero on padded frames) and times of a padded batch
    of rows of ``lengths`` frames, and its mask (None when the lengths are equal)."""
    gen = torch.Generator().manual_seed(seed)
    rows, frames, cfg = len(lengths), max(lengths), model.cfg
    mask = length_mask(lengths, torch.device("cpu"))
    x, cond = (torch.randn(rows, frames, cfg.mel_dim, generator=gen) for _ in range(2))
    text = torch.randn(rows, frames, cfg.text_dim, generator=gen)
    if mask is not None:
        x, cond, text = (v * mask[..., None] for v in (x, cond, text))
    return x, cond, text, torch.rand(rows, generator=gen), mask


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """``‖a − b‖ / ‖b‖``."""
    return float((a - b).norm() / b.norm())
