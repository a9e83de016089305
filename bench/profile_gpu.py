"""Where a burst's time goes on a GPU: torch.profiler over ``bench.throughput``'s workload.

    python -m bench.profile_gpu [--preset F5TTS_v1_Base] [--steps 16] [--concurrency 1 16]
        [--compile off|on|max] [--compile-cache DIR] [--cuda-graphs off|auto]
        [--packing off|auto|on]

For each concurrency: wall seconds of the burst, the summed time of GPU kernels (busy fraction
= kernels / wall; far under 1 means the GPU waits for Python and launches), the number of
kernel launches, and the operators that take most GPU time. Writes the tables to
``bench/results/profile_gpu.txt`` as each burst is done.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from bench.common import ROOT, make_weights
from bench.throughput import ANCHOR, burst, prepare_refs, workload
from f5serve import Engine
from f5serve.engine.compile import use_cache_dir
from f5serve.engine.scheduler import Scheduler


def init_profiler_for_graphs() -> None:
    """Start the profiler once before any CUDA graph exists: torch's workaround for graphs made
    before the profiler's first use failing when replayed under it (pytorch issue 75504)."""
    try:
        from torch.profiler._utils import _init_for_cuda_graphs
    except ImportError:  # a private helper: without it, profile and hope
        return
    _init_for_cuda_graphs()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="F5TTS_v1_Base")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--compile", choices=["off", "on", "max"], default="off")
    parser.add_argument("--compile-cache", type=Path, default=None, help="inductor cache folder")
    parser.add_argument("--cuda-graphs", choices=["off", "auto"], default="off")
    parser.add_argument("--packing", choices=["off", "auto", "on"], default="off")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/profile_gpu.txt")
    args = parser.parse_args()
    opts = {"nfe_steps": args.steps}
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        files = make_weights(Path(tmp), args.preset)
        work = workload(max(args.concurrency), 3)
        refs = prepare_refs(Path(tmp), [*work, ANCHOR])
        if args.compile_cache is not None:
            use_cache_dir(args.compile_cache)
        if args.cuda_graphs != "off":
            init_profiler_for_graphs()
        engine = Engine.from_files(**files, device=args.device, dtype=args.dtype)
        engine.use_packing(args.packing)
        engine.compile(args.compile)
        engine.use_cuda_graphs(args.cuda_graphs)
        lines.append(
            f"compile {engine.compile_mode}, CUDA graphs {engine.cuda_graphs}, "
            f"packed {engine.packed}"
        )
        print(lines[0])
        sched = Scheduler(engine)
        for c in args.concurrency:
            asyncio.run(burst(sched, work, refs, c, opts))  # warm-up at this size
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                started = time.perf_counter()
                asyncio.run(burst(sched, work, refs, c, opts))
                if engine.device.type == "cuda":
                    torch.cuda.synchronize()
                wall = time.perf_counter() - started
            kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
            busy = sum(e.device_time for e in kernels) / 1e6
            lines.append(
                f"c={c}: wall {wall:.3f} s, GPU kernels {busy:.3f} s "
                f"(busy {busy / wall:.0%}), {len(kernels)} kernel launches"
            )
            lines.append(prof.key_averages().table(sort_by="self_device_time_total", row_limit=18))
            print("\n".join(lines[-2:]))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text("\n".join(lines))  # each size as it is done
        sched.close()


if __name__ == "__main__":
    main()
