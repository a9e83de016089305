"""Optional ``torch.compile`` of the DiT, one transformer block at a time (regional compilation).

Every block runs the same code, so one compiled graph serves all of them (torch ≥ 2.5 inlines a
module's parameters as graph inputs): compiling costs one block, not the whole depth. Batch rows
and frames are marked dynamic, so serving does not recompile per request: a model compiles at
most three graphs (one row without a mask, several rows without and with a padding mask), all of
which :func:`warm_up` builds at load. Attention stays ``scaled_dot_product_attention`` inside
the graph.

Modes: ``off``; ``on`` (inductor's default); ``max`` (``max-autotune-no-cudagraphs``: slower to
compile, faster to run); ``auto`` (``on`` on CUDA, ``off`` elsewhere, where compiling does not
pay). Compiled code is cached on disk (:func:`use_cache_dir`), so a second start on the same
machine skips code generation.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from f5serve.engine.dit import DiT, run_block
from f5serve.engine.masks import length_mask

MODES = ("off", "auto", "on", "max")
INDUCTOR_MODES = {"on": "default", "max": "max-autotune-no-cudagraphs"}
# Graphs one code object may hold before dynamo falls back to eager: every loaded model (arch,
# dtype) adds three graphs of ``run_block``, so the default (8) would cover only two models.
RECOMPILE_LIMIT = 64
WARM_UP_FRAMES = 160  # frames of the warm-up inputs (any length > 1 gives the same graphs)


def resolve_mode(mode: str, device: torch.device) -> str:
    """``off``, ``on`` or ``max`` for ``mode`` on ``device`` (``auto``: on for CUDA only)."""
    if mode not in MODES:
        raise ValueError(f"compile mode {mode!r} is not one of {', '.join(MODES)}")
    if mode == "auto":
        return "on" if device.type == "cuda" else "off"
    return mode


def use_cache_dir(path: str | Path) -> Path:
    """Keep inductor's compiled code (FX graphs, kernels, autotuning) under ``path`` so that
    a later process reuses it; ``TORCHINDUCTOR_CACHE_DIR``, when set, wins. Returns the folder."""
    folder = Path(os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(path).expanduser())))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class CompiledBlocks:
    """A drop-in for :func:`~f5serve.engine.dit.run_block` that runs the compiled graph."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.compiled = torch.compile(run_block, mode=INDUCTOR_MODES[mode])

    def __call__(
        self,
        block: torch.nn.Module,
        x: torch.Tensor,
        t: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        # rows and frames vary per batch: trace them as symbols (a single row stays a constant)
        for tensor, dims in ((x, (0, 1)), (t, (0,)), (rope[0], (0,)), (rope[1], (0,))):
            torch._dynamo.maybe_mark_dynamic(tensor, dims)
        if mask is not None:
            torch._dynamo.maybe_mark_dynamic(mask, (0, 1))
        out: torch.Tensor = self.compiled(block, x, t, rope, mask)
        return out


def set_mode(model: DiT, mode: str) -> None:
    """Run ``model``'s blocks compiled in ``mode`` (``on``/``max``) or eagerly (``off``)."""
    if mode == "off":
        model.run_block = run_block
        return
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    setattr(config, name, max(getattr(config, name), RECOMPILE_LIMIT))  # renamed in torch 2.7
    model.run_block = CompiledBlocks(mode)


@torch.inference_mode()
def warm_up(model: DiT, device: torch.device, dtype: torch.dtype) -> float:
    """Build every graph serving can meet (compiling, or loading it from the cache); seconds."""
    started = time.perf_counter()
    cfg = model.cfg
    n = WARM_UP_FRAMES
    for lengths in ([n], [n, n], [n, n - 7]):
        rows = len(lengths)
        x = torch.zeros(rows, n, cfg.mel_dim, device=device, dtype=dtype)
        text = torch.zeros(rows, n, cfg.text_dim, device=device, dtype=dtype)
        time_ = torch.full((rows,), 0.5, device=device, dtype=dtype)
        model(x, x, text, time_, length_mask(lengths, device))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started
