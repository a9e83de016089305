"""Packed batches: the DiT's transformer blocks run on the real frames of every row laid end to
end (``[1, T, D]``, ``T`` the sum of the rows' lengths) instead of a padded ``[R, Nmax, D]``.

A batch of mixed lengths then costs the sum of its lengths, not rows × longest: the linear
layers and the attention skip the padding. What stays padded is cheap and needs the row layout:
the input embedding (its convolutions must not see a neighbouring row) and the output
projection's result, which the sampler reads per row. Inside a block only attention mixes
frames; it attends within each row (a block-diagonal "document" mask):

- on CUDA in float16/bfloat16 with torch's variable-length kernel
  (``torch.nn.attention.varlen.varlen_attn``, FlashAttention over cumulative row offsets),
  which never computes across rows;
- elsewhere with ``scaled_dot_product_attention`` under a dense block-diagonal mask, whose
  memory grows with ``T²``: the exact path the tests check on a CPU, not a fast one.

Modes: ``off`` (padded rows, the default until measured on a GPU), ``on``, ``auto`` (on where
the variable-length kernel runs).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

MODES = ("off", "auto", "on")
# torch ≥ 2.9 has the kernel; it is imported on first use (its module imports torch._dynamo)
HAS_VARLEN = importlib.util.find_spec("torch.nn.attention.varlen") is not None


def varlen_kernel() -> Callable[..., Any]:
    """torch's ``varlen_attn``."""
    from torch.nn.attention.varlen import varlen_attn

    return varlen_attn


class Packing(NamedTuple):
    """Where each packed frame comes from; every field is a tensor on the batch's device."""

    flat: torch.Tensor  # [T] long: the frame's place in the padded batch flattened to [R·Nmax]
    rows: torch.Tensor  # [T] long: its row
    positions: torch.Tensor  # [T] long: its position within its row
    offsets: torch.Tensor  # [R + 1] int32: where each row starts (cumulative lengths)
    span: torch.Tensor  # [Nmax]: only its length is read (the longest row, kept as a shape)


def pack_lengths(lengths: list[int], device: torch.device) -> Packing:
    """The :class:`Packing` of rows of ``lengths`` frames padded to ``max(lengths)``."""
    longest = max(lengths)
    sizes = torch.tensor(lengths, device=device)
    rows = torch.repeat_interleave(torch.arange(len(lengths), device=device), sizes)
    offsets = F.pad(torch.cumsum(sizes, 0), (1, 0))
    positions = torch.arange(rows.shape[0], device=device) - offsets[rows]
    return Packing(
        flat=rows * longest + positions,
        rows=rows,
        positions=positions,
        offsets=offsets.to(torch.int32),
        span=torch.arange(longest, device=device),
    )


def kernel_available(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the variable-length attention kernel runs for ``device`` and ``dtype``."""
    return HAS_VARLEN and device.type == "cuda" and dtype in (torch.float16, torch.bfloat16)


def resolve_mode(mode: str, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``mode`` packs batches on ``device`` in ``dtype`` (``auto``: where the
    variable-length kernel runs)."""
    if mode not in MODES:
        raise ValueError(f"packing mode {mode!r} is not one of {', '.join(MODES)}")
    return mode == "on" or (mode == "auto" and kernel_available(device, dtype))


def spread(values: torch.Tensor, packing: Packing) -> torch.Tensor:
    """Per-row vectors ``[R, D]`` → per packed frame ``[1, T, D]``."""
    return values[packing.rows].unsqueeze(0)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: Packing) -> torch.Tensor:
    """Attention within each row of packed ``q, k, v: [1, H, T, Dh]`` → ``[1, T, H, Dh]``."""
    if kernel_available(q.device, q.dtype):
        longest, offsets = packing.span.shape[0], packing.offsets
        q, k, v = (x[0].transpose(0, 1) for x in (q, k, v))  # [T, H, Dh]
        out = varlen_kernel()(q, k, v, offsets, offsets, longest, longest)
        assert isinstance(out, torch.Tensor)  # no auxiliary outputs were asked for
        return out.unsqueeze(0)
    same_row = packing.rows[:, None] == packing.rows[None, :]  # [T, T]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=same_row).transpose(1, 2)
