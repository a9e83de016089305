"""Padding masks for batches of different lengths."""

from __future__ import annotations

import torch


def length_mask(lengths: list[int], device: torch.device) -> torch.Tensor | None:
    """``[B, max(lengths)]`` bool, True on real frames; None when all lengths are equal."""
    if len(set(lengths)) <= 1:
        return None
    positions = torch.arange(max(lengths), device=device)
    return positions[None, :] < torch.tensor(lengths, device=device)[:, None]
