"""The F5-TTS DiT backbone (REFERENCE.md §2): modules and tensor math only.

Parameter names follow the official checkpoints (``transformer.*`` once the ``ema_model.`` prefix
is removed), so state dicts load without renaming. The sampling loop lives in ``sampler.py``.

Unlike the reference, attention masks padded keys whenever a mask is given, so an item's output
does not depend on what it is batched with. Text embeddings are computed per item at the item's
own length (the ConvNeXt GRN normalises over time, so padding would otherwise leak in). With a
:class:`~f5serve.engine.packing.Packing` the transformer blocks run on the real frames alone,
rows laid end to end (``packing.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from f5serve.engine import packing as packed
from f5serve.engine.config import DiTConfig
from f5serve.engine.packing import Packing

TEXT_MAX_POS = 4096  # length of the reference's precomputed text position table
# What a block is told about its rows: a padding mask [B, N] (None: no padding), or a Packing
Layout = torch.Tensor | Packing | None


def per_frame(values: torch.Tensor, layout: Layout) -> torch.Tensor:
    """Per-row vectors ``[B, D]`` shaped to broadcast over the frames of ``x``."""
    if isinstance(layout, Packing):
        return packed.spread(values, layout)
    return values.unsqueeze(1)


class TimestepEmbedding(nn.Module):
    """Sinusoidal features of ``1000·t`` (256 dims) → MLP."""

    def __init__(self, dim: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.time_mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        # t: [B] → [B, dim]
        half = self.freq_dim // 2
        freqs = torch.exp(
            torch.arange(half, device=t.device).float() * -(math.log(10000) / (half - 1))
        )
        angles = 1000 * t.unsqueeze(1) * freqs.unsqueeze(0)
        feats = torch.cat((angles.sin(), angles.cos()), dim=-1).to(t.dtype)
        out: torch.Tensor = self.time_mlp(feats)
        return out


class GRN(nn.Module):
    """Global response normalisation (over the time axis)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.norm(x, p=2, dim=1, keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    """Depthwise conv → LayerNorm → Linear → GELU → GRN → Linear, residual. ``x: [B, N, D]``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.grn = GRN(hidden)
        self.pwconv2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x.transpose(1, 2)).transpose(1, 2)
        h = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(h)))))
        return x + h


def text_position_table(dim: int, length: int = TEXT_MAX_POS) -> torch.Tensor:
    """Fixed text positions: ``cat(cos, sin)`` of ``pos·10000^(-2i/dim)``, ``[length, dim]``."""
    freqs = 1.0 / (10000.0 ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    angles = torch.outer(torch.arange(length).float(), freqs)
    return torch.cat((angles.cos(), angles.sin()), dim=-1)


class TextEmbedding(nn.Module):
    """Token ids → text features aligned to the audio frames."""

    positions: torch.Tensor

    def __init__(self, vocab_size: int, dim: int, conv_layers: int, mask_padding: bool) -> None:
        super().__init__()
        self.text_embed = nn.Embedding(vocab_size + 1, dim)  # id 0 is the filler
        self.mask_padding = mask_padding
        self.text_blocks = nn.Sequential(
            *[ConvNeXtV2Block(dim, dim * 2) for _ in range(conv_layers)]
        )
        self.register_buffer("positions", text_position_table(dim), persistent=False)

    def forward(self, text: torch.Tensor, seq_len: int, drop_text: bool = False) -> torch.Tensor:
        """``text: [B, Nt]`` ids padded with -1 → ``[B, seq_len, dim]``."""
        ids = (text + 1)[:, :seq_len]
        ids = F.pad(ids, (0, seq_len - ids.shape[1]), value=0)
        filler = (ids == 0).unsqueeze(-1)  # [B, N, 1]
        if drop_text:
            ids = torch.zeros_like(ids)
        h = self.text_embed(ids)
        if len(self.text_blocks) == 0:
            return h
        pos = torch.arange(seq_len, device=h.device).clamp(max=TEXT_MAX_POS - 1)
        h = h + self.positions[pos].to(h.dtype)
        if not self.mask_padding:
            out: torch.Tensor = self.text_blocks(h)
            return out
        h = h.masked_fill(filler, 0.0)
        for block in self.text_blocks:
            h = block(h).masked_fill(filler, 0.0)
        return h


class ConvPositionEmbedding(nn.Module):
    """Two grouped convolutions (k=31, 16 groups) with Mish.

    With a mask, padded frames are zeroed before each convolution and in the output, so a padded
    item computes exactly what it computes alone (the reference masks only input and output).
    """

    def __init__(self, dim: int, kernel_size: int = 31, groups: int = 16) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1d = nn.Sequential(
            nn.Conv1d(dim, dim, kernel_size, groups=groups, padding=pad),
            nn.Mish(),
            nn.Conv1d(dim, dim, kernel_size, groups=groups, padding=pad),
            nn.Mish(),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # x: [B, N, D] → [B, N, D]; mask: [B, N]
        keep = None if mask is None else mask.unsqueeze(1)  # [B, 1, N]
        h = x.transpose(1, 2)
        for i in (0, 2):
            if keep is not None:
                h = h.masked_fill(~keep, 0.0)
            h = self.conv1d[i + 1](self.conv1d[i](h))
        if keep is not None:
            h = h.masked_fill(~keep, 0.0)
        return h.transpose(1, 2)


class InputEmbedding(nn.Module):
    """``Linear(cat[x, cond, text])`` plus the convolutional position embedding."""

    def __init__(self, mel_dim: int, text_dim: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(mel_dim * 2 + text_dim, dim)
        self.conv_pos_embed = ConvPositionEmbedding(dim)

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor, text: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        h = self.proj(torch.cat((x, cond, text), dim=-1))
        return self.conv_pos_embed(h, mask) + h


class RotaryEmbedding(nn.Module):
    """Rotary angles over a head's width, each frequency repeated for an adjacent pair."""

    inv_freq: torch.Tensor

    def __init__(self, dim_head: int) -> None:
        super().__init__()
        inv_freq = 1.0 / (10000 ** (torch.arange(0, dim_head, 2).float() / dim_head))
        self.register_buffer("inv_freq", inv_freq)

    def forward(self, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cos, sin)``, each ``[seq_len, dim_head]``."""
        pos = torch.arange(seq_len, device=self.inv_freq.device).type_as(self.inv_freq)
        angles = torch.outer(pos, self.inv_freq).repeat_interleave(2, dim=-1)
        return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x: [B, H, N, Dh]``; each pair ``(a, b)`` → ``(-b, a)`` for the sine part."""
    pairs = x.unflatten(-1, (-1, 2))
    rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return (x * cos + rotated * sin).to(x.dtype)


class Attention(nn.Module):
    """Multi-head self-attention with RoPE; padded keys are masked when a mask is given."""

    def __init__(self, dim: int, heads: int, dim_head: int, rope_heads: int | None) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.rope_heads = rope_heads
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(dim, inner)
        self.to_v = nn.Linear(dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim)])

    def _rope(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        if self.rope_heads is None:
            return apply_rotary(x, *rope)
        n = self.rope_heads
        return torch.cat((apply_rotary(x[:, :n], *rope), x[:, n:]), dim=1)

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], layout: Layout
    ) -> torch.Tensor:
        # x: [B, N, D], layout a mask [B, N] (True = real frame); or packed: [1, T, D]
        b = x.shape[0]
        q, k, v = (
            proj(x).view(b, -1, self.heads, proj.out_features // self.heads).transpose(1, 2)
            for proj in (self.to_q, self.to_k, self.to_v)
        )
        q, k = self._rope(q, rope), self._rope(k, rope)
        if isinstance(layout, Packing):
            out = packed.attention(q, k, v, layout)
        else:
            attn_mask = None if layout is None else layout[:, None, None, :]
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask).transpose(1, 2)
        out = self.to_out[0](out.reshape(b, -1, q.shape[1] * q.shape[3]))
        if isinstance(layout, torch.Tensor):
            out = out.masked_fill(~layout.unsqueeze(-1), 0.0)
        return out


class AdaLayerNorm(nn.Module):
    """AdaLN-Zero: six modulation vectors from the time embedding."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim * 6)

    def forward(self, x: torch.Tensor, t: torch.Tensor, layout: Layout) -> tuple[torch.Tensor, ...]:
        """The modulated ``x`` and the other four vectors, each shaped to broadcast over ``x``."""
        mods = self.linear(F.silu(t)).chunk(6, dim=1)
        shift, scale, gate, shift_mlp, scale_mlp, gate_mlp = (per_frame(m, layout) for m in mods)
        h = F.layer_norm(x, (x.shape[-1],), eps=1e-6) * (1 + scale) + shift
        return h, gate, shift_mlp, scale_mlp, gate_mlp


class FeedForward(nn.Module):
    """Linear → GELU(tanh) → Linear (parameter names as in the checkpoints)."""

    def __init__(self, dim: int, mult: int) -> None:
        super().__init__()
        inner = dim * mult
        self.ff = nn.Sequential(
            nn.Sequential(nn.Linear(dim, inner), nn.GELU(approximate="tanh")),
            nn.Dropout(0.0),
            nn.Linear(inner, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.ff(x)
        return out


class DiTBlock(nn.Module):
    """One transformer block with AdaLN-Zero modulation."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.attn_norm = AdaLayerNorm(cfg.dim)
        self.attn = Attention(cfg.dim, cfg.heads, cfg.dim_head, cfg.pe_attn_head)
        self.ff = FeedForward(cfg.dim, cfg.ff_mult)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        layout: Layout,
    ) -> torch.Tensor:
        h, gate, shift_mlp, scale_mlp, gate_mlp = self.attn_norm(x, t, layout)
        x = x + gate * self.attn(h, rope, layout)
        h = F.layer_norm(x, (x.shape[-1],), eps=1e-6) * (1 + scale_mlp) + shift_mlp
        return x + gate_mlp * self.ff(h)


def run_block(
    block: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    rope: tuple[torch.Tensor, torch.Tensor],
    layout: Layout,
) -> torch.Tensor:
    """One block's forward; the unit that ``compile.py`` compiles (shared by all blocks)."""
    out: torch.Tensor = block(x, t, rope, layout)
    return out


BlockRunner = Callable[
    [nn.Module, torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor], Layout],
    torch.Tensor,
]


class AdaLayerNormFinal(nn.Module):
    """Final modulation: the linear layer yields ``scale`` then ``shift``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim * 2)

    def forward(self, x: torch.Tensor, t: torch.Tensor, layout: Layout) -> torch.Tensor:
        scale, shift = (per_frame(m, layout) for m in self.linear(F.silu(t)).chunk(2, dim=1))
        return F.layer_norm(x, (x.shape[-1],), eps=1e-6) * (1 + scale) + shift


class DiT(nn.Module):
    """The backbone: predicts the flow ``v(x_t, t | cond, text)``."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        if cfg.text_num_embeds is None:
            raise ValueError("DiTConfig.text_num_embeds must be set before building the model")
        self.cfg = cfg
        self.time_embed = TimestepEmbedding(cfg.dim)
        self.text_embed = TextEmbedding(
            cfg.text_num_embeds, cfg.text_dim, cfg.conv_layers, cfg.text_mask_padding
        )
        self.input_embed = InputEmbedding(cfg.mel_dim, cfg.text_dim, cfg.dim)
        self.rotary_embed = RotaryEmbedding(cfg.dim_head)
        self.transformer_blocks = nn.ModuleList([DiTBlock(cfg) for _ in range(cfg.depth)])
        self.norm_out = AdaLayerNormFinal(cfg.dim)
        self.proj_out = nn.Linear(cfg.dim, cfg.mel_dim)
        self.run_block: BlockRunner = run_block  # compile.set_mode swaps in a compiled one

    def embed_text(self, text: torch.Tensor, lengths: list[int], drop_text: bool) -> torch.Tensor:
        """Text features for each item at its own length, zero-padded: ``[B, max(lengths), Dt]``.

        Constant over the flow steps: compute once per request.
        """
        items = [
            self.text_embed(text[i : i + 1], n, drop_text=drop_text)[0]
            for i, n in enumerate(lengths)
        ]
        return nn.utils.rnn.pad_sequence(items, batch_first=True)

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor,
        text_embed: torch.Tensor,
        time: torch.Tensor,
        mask: torch.Tensor | None = None,
        packing: Packing | None = None,
    ) -> torch.Tensor:
        """One flow evaluation.

        x, cond: [B, N, 100]; text_embed: [B, N, Dt] (from :meth:`embed_text`);
        time: [B] (or a scalar); mask: [B, N] bool, True on real frames, or None; packing: the
        same rows' :func:`~f5serve.engine.packing.pack_lengths`, to run the blocks packed.
        Returns the predicted flow [B, N, 100] (zero on padded frames when packed).
        """
        if time.ndim == 0:
            time = time.repeat(x.shape[0])
        t = self.time_embed(time)
        h = self.input_embed(x, cond, text_embed, mask)
        cos, sin = self.rotary_embed(x.shape[1])
        layout: Layout = mask
        if packing is not None:
            h = h.flatten(0, 1)[packing.flat].unsqueeze(0)  # [1, T, D]
            cos, sin, layout = cos[packing.positions], sin[packing.positions], packing
        for block in self.transformer_blocks:
            h = self.run_block(block, h, t, (cos, sin), layout)
        out: torch.Tensor = self.proj_out(self.norm_out(h, t, layout))
        if packing is None:
            return out
        padded = out.new_zeros(x.shape[0] * x.shape[1], out.shape[-1])
        return padded.index_copy(0, packing.flat, out[0]).view(*x.shape[:2], -1)
