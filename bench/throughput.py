"""Throughput of concurrent requests: the batching scheduler against serving one at a time.

    .venv/bin/python -m bench.throughput [--preset F5TTS_v1_Small] [--steps 8]
        [--concurrency 1 4 8] [--device cpu] [--dtype float32] [--reference]

For each concurrency c, the first c requests of a fixed mixed set (references of 3–7 s, outputs
of about 2–6 s) are sent at once to one :class:`Scheduler` (streaming, so time to first audio is
measured) and, for comparison, served one after another by the same engine
(``Engine.synthesize``) and, with ``--reference``, by the reference's ``infer_process`` in its
own virtualenv. Random weights in the official layout (speed does not depend on them).
Prints a table and writes ``bench/results/throughput.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

import torch

from bench.common import (
    FIXTURES,
    ROOT,
    clip_reference,
    machine,
    make_weights,
    run_reference,
    write_json,
)
from f5serve import Engine
from f5serve.engine.scheduler import Scheduler


@dataclass(frozen=True)
class Request:
    ref: str  # fixture file
    ref_seconds: float  # cut to this length
    ref_text: str  # (approximate) transcript of the cut
    text: str  # what to say


EN = "Some call me nature, others call me mother nature."
ZH = "对，这就是我，万人敬仰的太乙真人。"
REQUESTS = [
    Request(
        "basic_ref_en.wav", 3.0, "Some call me nature, others call me", "Good morning to you all."
    ),
    Request(
        "basic_ref_en.wav",
        5.3,
        EN,
        "The weather is lovely today, so let us take a long walk in the park.",
    ),
    Request("basic_ref_zh.wav", 6.7, ZH, "今天天气很好，我们一起去公园散步吧。"),
    Request(
        "speech_44k.flac",
        4.0,
        "A short passage of read speech.",
        "Please remember to bring your umbrella tomorrow.",
    ),
    Request("basic_ref_en.wav", 5.3, EN, "Numbers like three, seven and twelve are easy to say."),
    Request(
        "basic_ref_en.wav",
        3.0,
        "Some call me nature, others call me",
        "Thank you for listening, and see you next week.",
    ),
    Request("basic_ref_zh.wav", 6.7, ZH, "虽然有点婴儿肥，但也掩不住我逼人的帅气。"),
    Request(
        "speech_44k.flac",
        4.0,
        "A short passage of read speech.",
        "The train to the city leaves at half past nine.",
    ),
]


def prepare_refs(work: Path) -> list[Path]:
    return [
        clip_reference(FIXTURES / r.ref, work / f"ref{i}.wav", r.ref_seconds)
        for i, r in enumerate(REQUESTS)
    ]


async def burst(sched: Scheduler, refs: list[Path], c: int, opts: dict[str, Any]) -> dict[str, Any]:
    async def one(i: int) -> tuple[float, float, float]:
        started = time.perf_counter()
        first, samples = None, 0
        async for part in sched.stream(
            REQUESTS[i].text, refs[i], REQUESTS[i].ref_text, seed=i, **opts
        ):
            first = first or time.perf_counter() - started
            samples += len(part)
        return time.perf_counter() - started, first or 0.0, samples / 24000

    started = time.perf_counter()
    runs = await asyncio.gather(*(one(i) for i in range(c)))
    wall = time.perf_counter() - started
    return summarize(wall, [r[0] for r in runs], [r[2] for r in runs], [r[1] for r in runs])


def serial_each(
    engine: Engine, refs: list[Path], count: int, opts: dict[str, Any]
) -> tuple[list[float], list[float]]:
    """Wall seconds and audio seconds of each of the first ``count`` requests served alone."""
    times, audio = [], []
    for i in range(count):
        started = time.perf_counter()
        result = engine.synthesize(REQUESTS[i].text, refs[i], REQUESTS[i].ref_text, seed=i, **opts)
        times.append(time.perf_counter() - started)
        audio.append(result.duration)
    return times, audio


def summarize(
    wall: float, latencies: list[float], audio: list[float], ttfa: list[float] | None
) -> dict[str, Any]:
    total_audio = sum(audio)
    out = {
        "wall_s": wall,
        "audio_s": total_audio,
        "audio_per_wall_s": total_audio / wall,
        "rtf": wall / total_audio,
        "p50_latency_s": statistics.median(latencies),
        "p95_latency_s": sorted(latencies)[max(0, round(0.95 * len(latencies)) - 1)],
    }
    if ttfa is not None:
        out["p50_ttfa_s"] = statistics.median(ttfa)
    return out


def reference_each(
    files: dict[str, Any], refs: list[Path], count: int, steps: int, threads: int
) -> list[float]:
    """Seconds the reference's ``infer_process`` takes for each of the first ``count``
    requests (model loading and its reference clean-up excluded)."""
    times = []
    for i in range(count):
        out = run_reference(
            files,
            ref_audio=refs[i],
            ref_text=REQUESTS[i].ref_text,
            gen_text=REQUESTS[i].text,
            nfe_steps=[steps],
            repeats=1,
            warmup=0,
            seed=i,
            threads=threads,
            preprocess_ref=True,
        )
        if out is None:
            return []
        times.append(out["results"][0]["times_s"][0])
    return times


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="F5TTS_v1_Small")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference", action="store_true", help="also time the reference")
    parser.add_argument(
        "--batch-frames", type=int, default=None, help="frame budget (default: the device's)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/throughput.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    opts = {"nfe_steps": args.steps}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = make_weights(work, args.preset)
        refs = prepare_refs(work)
        engine = Engine.from_files(**files, device=args.device, dtype=args.dtype)
        if args.batch_frames:
            engine.max_batch_frames = args.batch_frames
        sched = Scheduler(engine)
        asyncio.run(burst(sched, refs, 1, opts))  # warm-up
        most = max(args.concurrency)
        alone, audio = serial_each(engine, refs, most, opts)
        ref_times = (
            reference_each(files, refs, most, args.steps, args.threads) if args.reference else []
        )
        for c in args.concurrency:
            batched = asyncio.run(burst(sched, refs, c, opts))
            # c requests arriving together, served one after another: each waits for those before
            one_by_one = summarize(sum(alone[:c]), list(accumulate(alone[:c])), audio[:c], None)
            ref_s = sum(ref_times[:c]) if ref_times else None
            rows.append(
                {
                    "concurrency": c,
                    "batched": batched,
                    "serial": one_by_one,
                    "reference_serial_wall_s": ref_s,
                    "peak_memory_mb": peak_memory_mb(engine.device),
                }
            )
        sched.close()
    print(
        f"{args.preset}, {args.steps} steps, {engine.device} {engine.dtype}, "
        f"frame budget {engine.max_batch_frames}"
    )
    print(
        f"{'c':>3} {'batched audio/s':>16} {'RTF':>6} {'p50 s':>7} {'p95 s':>7} {'TTFA s':>7} "
        f"{'serial audio/s':>15} {'ref audio/s':>12} {'vs serial':>9} {'vs ref':>7}"
    )
    for r in rows:
        b, s = r["batched"], r["serial"]
        ref_rate = (
            b["audio_s"] / r["reference_serial_wall_s"] if r["reference_serial_wall_s"] else None
        )
        print(
            f"{r['concurrency']:>3} {b['audio_per_wall_s']:>16.3f} {b['rtf']:>6.2f} "
            f"{b['p50_latency_s']:>7.2f} {b['p95_latency_s']:>7.2f} {b['p50_ttfa_s']:>7.2f} "
            f"{s['audio_per_wall_s']:>15.3f} {ref_rate or float('nan'):>12.3f} "
            f"{b['audio_per_wall_s'] / s['audio_per_wall_s']:>8.2f}x "
            f"{(b['audio_per_wall_s'] / ref_rate) if ref_rate else float('nan'):>6.2f}x"
        )
    write_json(
        args.out,
        {
            "machine": machine(),
            "preset": args.preset,
            "steps": args.steps,
            "device": str(engine.device),
            "dtype": str(engine.dtype),
            "max_batch_frames": engine.max_batch_frames,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
