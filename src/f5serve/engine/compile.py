"""Optional ``torch.compile`` of the DiT, one transformer block at a time (regional compilation).

Every block runs the same code, so one compiled graph serves all of them (torch ≥ 2.5 inlines a
module's parameters as graph inputs): compiling costs one block, not the whole depth. Batch rows
and frames are marked dynamic, so serving does not recompile per request: a model compiles at
most three graphs (one row without a mask, several rows without and with a padding mask; a
fourth for packed rows, ``packing.py``), all of which :func:`warm_up` builds at load. Attention
stays ``scaled_dot_product_attention`` (or the variable-length kernel) inside the graph.

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

from f5serve.engine.dit import DiT, Layout, run_block
from f5serve.engine.masks import length_mask
from f5serve.engine.packing import Packing, pack_lengths

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
    a later process reuses it; ``TORCHINDUCTOR_CACHE_DIR``, when set, wins. Returns the folder.

    Importing ``torch._dynamo`` (torch does it for its own modules, too) fills the variable in
    with torch's default folder, a temporary one: that value counts as unset."""
    given = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if not given or Path(given).absolute() == _torch_default_cache_dir():
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(path).expanduser())
    folder = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _torch_default_cache_dir() -> Path | None:
    """The folder inductor uses when ``TORCHINDUCTOR_CACHE_DIR`` is unset (None: unknown)."""
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:  # torch < 2.3
        return None
    return Path(default_cache_dir()).absolute()


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
        layout: Layout,
    ) -> torch.Tensor:
        # rows and frames vary per batch: trace them as symbols (a single row stays a constant)
        for tensor, dims in ((x, (0, 1)), (t, (0,)), (rope[0], (0,)), (rope[1], (0,))):
            torch._dynamo.maybe_mark_dynamic(tensor, dims)
        if isinstance(layout, Packing):
            for field in layout:
                torch._dynamo.maybe_mark_dynamic(field, 0)
        elif layout is not None:
            torch._dynamo.maybe_mark_dynamic(layout, (0, 1))
        out: torch.Tensor = self.compiled(block, x, t, rope, layout)
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
def warm_up(model: DiT, device: torch.device, dtype: torch.dtype, packed: bool = False) -> float:
    """Build every graph serving can meet (compiling, or loading it from the cache), with
    ``packed`` the one of packed rows too; seconds."""
    started = time.perf_counter()
    cfg = model.cfg
    n = WARM_UP_FRAMES
    batches = [([n], False), ([n, n], False), ([n, n - 7], False), ([n, n - 7], True)]
    for lengths, pack in batches[: 4 if packed else 3]:
        rows = len(lengths)
        x = torch.zeros(rows, n, cfg.mel_dim, device=device, dtype=dtype)
        text = torch.zeros(rows, n, cfg.text_dim, device=device, dtype=dtype)
        time_ = torch.full((rows,), 0.5, device=device, dtype=dtype)
        mask = length_mask(lengths, device)
        model(x, x, text, time_, mask, pack_lengths(lengths, device) if pack else None)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started
