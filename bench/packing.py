"""One DiT forward on a batch of mixed lengths: padded and masked against packed.

    python -m bench.packing [--preset F5TTS_v1_Base] [--device cuda] [--dtype bfloat16]
        [--lengths 1400 1100 ...] [--copies 4] [--compile off|on|max] [--compile-cache DIR]
        [--repeats 10]

The batch holds each length of ``--lengths`` ``--copies`` times, each as a conditional and an
unconditional row (guidance), as a running batch of concurrent requests does; the default
lengths are the frames (reference + speech) of ``bench.throughput``'s mixed set. Both layouts
run the same rows on the same weights (random, in the official layout): the padded one
computes rows × longest frames, the packed one the sum of the lengths. Reports the median
milliseconds of ``--repeats`` forwards after a warm-up, the speed-up, the frames each layout
computes, and the relative difference of the two outputs on the real frames. Writes
``bench/results/packing.json``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.common import ROOT, machine, make_weights, write_json
from f5serve import Engine
from f5serve.engine.compile import use_cache_dir
from f5serve.engine.masks import length_mask
from f5serve.engine.packing import kernel_available, pack_lengths

# frames (reference + speech) of bench.throughput's mixed set with --text-repeat 3
LENGTHS = [1480, 1210, 930, 760, 620, 540, 450, 380]


def timed(run: Callable[[], torch.Tensor], device: torch.device, repeats: int) -> float:
    """Median milliseconds of ``run`` after one warm-up call."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    run()
    times = []
    for _ in range(repeats):
        sync()
        started = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="F5TTS_v1_Base")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--lengths", type=int, nargs="+", default=LENGTHS)
    parser.add_argument("--copies", type=int, default=4, help="requests of each length")
    parser.add_argument("--compile", choices=["off", "on", "max"], default="off")
    parser.add_argument("--compile-cache", type=Path, default=None, help="inductor cache folder")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/packing.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.compile_cache is not None:
        use_cache_dir(args.compile_cache)
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine.from_files(
            **make_weights(Path(tmp), args.preset), device=args.device, dtype=args.dtype
        )
    engine.use_packing("on")
    compile_s = engine.compile(args.compile)
    model, device, dtype = engine.model, engine.device, engine.dtype
    lengths = sorted(args.lengths * args.copies, reverse=True) * 2  # conditional, unconditional
    rows, longest, cfg = len(lengths), max(lengths), model.cfg
    gen = torch.Generator().manual_seed(0)
    mask = length_mask(lengths, device)
    assert mask is not None, "the lengths must differ"
    x, cond = (torch.randn(rows, longest, cfg.mel_dim, generator=gen) for _ in range(2))
    text = torch.randn(rows, longest, cfg.text_dim, generator=gen)
    x, cond, text = (v.to(device, dtype) * mask[..., None] for v in (x, cond, text))
    time_ = torch.rand(rows, generator=gen).to(device, dtype)
    packing = pack_lengths(lengths, device)

    padded_out = model(x, cond, text, time_, mask)
    packed_out = model(x, cond, text, time_, mask, packing)
    real = mask[..., None]
    diff = float(((packed_out - padded_out) * real).float().norm() / (padded_out * real).norm())
    padded_ms = timed(lambda: model(x, cond, text, time_, mask), device, args.repeats)
    packed_ms = timed(lambda: model(x, cond, text, time_, mask, packing), device, args.repeats)
    result: dict[str, Any] = {
        "machine": machine(),
        "preset": args.preset,
        "device": str(device),
        "dtype": str(dtype),
        "compile": engine.compile_mode,
        "compile_s": compile_s,
        "attention": "varlen kernel" if kernel_available(device, dtype) else "dense mask",
        "rows": rows,
        "lengths": lengths,
        "padded_frames": rows * longest,
        "packed_frames": sum(lengths),
        "padded_ms": padded_ms,
        "packed_ms": packed_ms,
        "speedup": padded_ms / packed_ms,
        "packed_vs_padded": diff,
    }
    print(
        f"{args.preset}, {device} {dtype}, compile {engine.compile_mode}, "
        f"{result['attention']}: {rows} rows of {min(lengths)}–{longest} frames"
    )
    print(
        f"padded {padded_ms:.1f} ms ({rows * longest} frames), packed {packed_ms:.1f} ms "
        f"({sum(lengths)} frames): {padded_ms / packed_ms:.2f}x; packed vs padded {diff:.2e}"
    )
    write_json(args.out, result)


if __name__ == "__main__":
    main()
