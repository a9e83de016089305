"""Throughput of concurrent requests: the batching scheduler against serving one at a time.

    .venv/bin/python -m bench.throughput [--preset F5TTS_v1_Small] [--steps 8]
        [--concurrency 1 4 8] [--device cpu] [--dtype float32] [--text-repeat 1]
        [--reference] [--anchor] [--compile off|on|max] [--compile-cache DIR]
        [--cuda-graphs off|auto] [--packing off|auto|on] [--batch-frames N] [--no-serial]
        [--first-chunk-seconds S] [--openers off|first|alone] [--opener-frames N]
        [--variant NAME:KEY=VALUE,... ...]

For each concurrency c, the first c requests of a fixed mixed set (references of 3–7 s, outputs of
about 2–6 s; past the eight base requests the set repeats with new seeds; ``--text-repeat K`` says
request i's text 1 + i mod K times, for outputs of up to about 18 s) are sent at once to one
:class:`Scheduler` (streaming, so time to first audio is measured) and, for comparison, served one
after another by the same engine (``Engine.synthesize``; ``--no-serial`` skips this) and, with
``--reference``, by the reference's ``infer_process`` in its own interpreter
(``F5SERVE_REFERENCE_PYTHON``, default ``.venv-ref``) on the same device. ``--anchor`` also times
one request alone: about 10 s of speech from a 5.3 s reference. Random weights in the official
layout (speed does not depend on them). ``--compile`` runs the DiT compiled (``Engine.compile``),
with inductor's cache in ``--compile-cache`` (a fresh folder: a cold start; the folder of an
earlier run: a warm one); the start-up is timed: loading, compiling with its warm-up, and the first
request. ``--cuda-graphs`` (default ``auto``: on for CUDA) replays the steps of unchanged batches
from CUDA graphs; ``--packing`` runs the rows of a batch packed, without padding
(``Engine.use_packing``, default ``off``); ``--batch-frames`` sets the frame budget (default: the
device's).
``--first-chunk-seconds`` is the synthesis option of that name (a short first chunk; default: the
reference's chunking) and ``--openers`` the scheduler's admission of streams' first chunks
(``Scheduler(openers=...)``, default ``first``), ``--opener-frames`` the size of a wave of first
chunks (``Scheduler(opener_frames=...)``, default: no limit). Each streamed request is played
back as it arrives: time to first audio (TTFA) and the seconds a listener would wait after that,
when a piece arrives after the audio before it has played out (stall), are reported as p50/p95.
Prints a table and writes ``bench/results/throughput.json``.

``--variant`` (repeatable) measures more set-ups in the same process after the first, on the
loaded (and compiled) engine, so each costs its bursts, not another start-up: ``NAME:KEY=VALUE,...``
changes the options above for that run (keys ``packing``, ``cuda_graphs``, ``batch_frames``,
``first_chunk`` and ``opener_frames`` (``none``: unset), ``openers``, ``concurrency`` (``1+64``),
``anchor`` (``on``/``off``)); the rest stays as given. Its results go to ``NAME.json`` beside
``--out``, without a start-up of their own (``variant_of`` names the file that has it), and are
written as each finishes: a run stopped part-way keeps the variants done.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
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
from f5serve.engine.compile import use_cache_dir, warm_up
from f5serve.engine.pipeline import default_batch_frames
from f5serve.engine.scheduler import OPENER_MODES, Scheduler


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


REFERENCE_TIMEOUT_S = 600  # all requests and its start-up

# One request alone, the single-request anchor: about 10 s of speech from a 5.3 s reference.
ANCHOR = Request(
    "basic_ref_en.wav",
    5.3,
    EN,
    "The weather is lovely today, so let us take a long walk in the park and watch the boats.",
)


def workload(count: int, text_repeat: int) -> list[Request]:
    """The first ``count`` requests of the mixed set (request i is sent with seed i)."""
    out = []
    for i in range(count):
        base = REQUESTS[i % len(REQUESTS)]
        text = " ".join([base.text] * (1 + i % text_repeat))
        out.append(Request(base.ref, base.ref_seconds, base.ref_text, text))
    return out


def prepare_refs(work: Path, requests: list[Request]) -> list[Path]:
    """Each distinct reference cut once; the clip of each request."""
    clips: dict[tuple[str, float], Path] = {}
    for r in requests:
        if (r.ref, r.ref_seconds) not in clips:
            dst = work / f"ref{len(clips)}.wav"
            clips[(r.ref, r.ref_seconds)] = clip_reference(FIXTURES / r.ref, dst, r.ref_seconds)
    return [clips[(r.ref, r.ref_seconds)] for r in requests]


async def burst(
    sched: Scheduler, work: list[Request], refs: list[Path], c: int, opts: dict[str, Any]
) -> dict[str, Any]:
    async def one(i: int) -> tuple[float, float, float, float]:
        started = time.perf_counter()
        first, played_to, stalled, samples = None, 0.0, 0.0, 0
        async for part in sched.stream(work[i].text, refs[i], work[i].ref_text, seed=i, **opts):
            now = time.perf_counter() - started
            first = first or now
            # playback starts with the first piece; a piece that comes after the audio before
            # it has played out leaves the listener waiting
            stalled += max(0.0, now - played_to) if samples else 0.0
            played_to = max(played_to, now) + len(part) / 24000
            samples += len(part)
        return time.perf_counter() - started, first or 0.0, samples / 24000, stalled

    started = time.perf_counter()
    runs = await asyncio.gather(*(one(i) for i in range(c)))
    wall = time.perf_counter() - started
    return summarize(
        wall, [r[0] for r in runs], [r[2] for r in runs], [r[1] for r in runs], [r[3] for r in runs]
    )


def serial_each(
    engine: Engine, work: list[Request], refs: list[Path], opts: dict[str, Any]
) -> tuple[list[float], list[float]]:
    """Wall seconds and audio seconds of each request served alone."""
    times, audio = [], []
    for i, request in enumerate(work):
        started = time.perf_counter()
        result = engine.synthesize(request.text, refs[i], request.ref_text, seed=i, **opts)
        times.append(time.perf_counter() - started)
        audio.append(result.duration)
    return times, audio


def summarize(
    wall: float,
    latencies: list[float],
    audio: list[float],
    ttfa: list[float] | None,
    stalls: list[float] | None = None,
) -> dict[str, Any]:
    total_audio = sum(audio)
    out = {
        "wall_s": wall,
        "audio_s": total_audio,
        "audio_per_wall_s": total_audio / wall,
        "rtf": wall / total_audio,
        "p50_latency_s": statistics.median(latencies),
        "p95_latency_s": percentile(latencies, 0.95),
    }
    if ttfa is not None:
        out["p50_ttfa_s"] = statistics.median(ttfa)
        out["p95_ttfa_s"] = percentile(ttfa, 0.95)
    if stalls is not None:
        out["p50_stall_s"] = statistics.median(stalls)
        out["p95_stall_s"] = percentile(stalls, 0.95)
    return out


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile."""
    return sorted(values)[max(0, round(q * len(values)) - 1)]


def reference_each(
    files: dict[str, Any],
    work: list[Request],
    refs: list[Path],
    steps: int,
    threads: int,
    device: torch.device,
) -> tuple[list[float], list[float]]:
    """Seconds the reference's ``infer_process`` takes for each request, and the seconds of
    audio it makes (model loading and its reference clean-up excluded); empty without it."""
    try:
        out = run_reference(
            files,
            mode="many",
            timeout=REFERENCE_TIMEOUT_S,
            requests=[
                {"ref_audio": refs[i], "ref_text": r.ref_text, "gen_text": r.text, "seed": i}
                for i, r in enumerate(work)
            ],
            nfe_steps=[steps],
            threads=threads,
            device=device.type,
            lean=device.type == "cuda",
        )
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"the reference was not timed: {exc}", file=sys.stderr)
        return [], []
    if out is None:
        return [], []
    return list(out["request_times_s"]), list(out["audio_seconds"])


def time_anchor(
    engine: Engine, ref: Path, opts: dict[str, Any], repeats: int = 5
) -> dict[str, Any]:
    """Median wall seconds of :data:`ANCHOR` served alone, and its RTF."""
    times, audio = [], 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        result = engine.synthesize(ANCHOR.text, ref, ANCHOR.ref_text, seed=0, **opts)
        times.append(time.perf_counter() - started)
        audio = result.duration
    wall = statistics.median(times)
    return {"wall_s": wall, "audio_s": audio, "rtf": wall / audio}


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def start_engine(
    args: argparse.Namespace, files: dict[str, Any], work: list[Request], refs: list[Path]
) -> tuple[Engine, Scheduler, dict[str, Any]]:
    """Load (and compile) the engine and serve one request: what a server does at start-up,
    timed."""
    cold = None  # whether compiled code had to be generated: an empty cache folder
    if args.compile_cache is not None:
        cold = not any(use_cache_dir(args.compile_cache).iterdir())
    started = time.perf_counter()
    engine = Engine.from_files(**files, device=args.device, dtype=args.dtype)
    if args.batch_frames:
        engine.max_batch_frames = args.batch_frames
    loaded = time.perf_counter()
    engine.use_packing(args.packing)  # before compiling: the warm-up builds the packed graph
    compile_s = engine.compile(args.compile)
    engine.use_cuda_graphs(args.cuda_graphs)
    print(f"loaded in {loaded - started:.1f} s, compiled ({args.compile}) in {compile_s:.1f} s")
    first = time.perf_counter()
    sched = Scheduler(engine, openers=args.openers, opener_frames=args.opener_frames)
    asyncio.run(burst(sched, work, refs, 1, options(args)))  # also the warm-up
    start = {
        "compile": engine.compile_mode,
        "cuda_graphs": engine.cuda_graphs,
        "packed": engine.packed,
        "compile_cache": str(args.compile_cache) if args.compile_cache else None,
        "cold_cache": cold,
        "load_s": loaded - started,
        "compile_s": compile_s,
        "first_request_s": time.perf_counter() - first,
        "total_s": time.perf_counter() - started,
        "peak_memory_mb": peak_memory_mb(engine.device),
    }
    print(
        f"start ({start['compile']}): load {start['load_s']:.1f} s, compile and warm-up "
        f"{compile_s:.1f} s, first request {start['first_request_s']:.2f} s"
    )
    return engine, sched, start


VARIANT_KEYS: dict[str, Any] = {
    "packing": ("packing", lambda v: _choice(v, ("off", "auto", "on"))),
    "cuda_graphs": ("cuda_graphs", lambda v: _choice(v, ("off", "auto"))),
    "batch_frames": ("batch_frames", int),
    "first_chunk": ("first_chunk_seconds", lambda v: None if v == "none" else float(v)),
    "openers": ("openers", lambda v: _choice(v, OPENER_MODES)),
    "opener_frames": ("opener_frames", lambda v: None if v == "none" else int(v)),
    "concurrency": ("concurrency", lambda v: [int(c) for c in v.split("+")]),
    "anchor": ("anchor", lambda v: _choice(v, ("on", "off")) == "on"),
}


def _choice(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
    return value


def parse_variant(spec: str, base: argparse.Namespace) -> argparse.Namespace:
    """``NAME:KEY=VALUE,...`` → the options of ``base`` with those changed, and ``out`` the file
    ``NAME.json`` beside ``base.out`` (:class:`argparse.ArgumentTypeError` when malformed)."""
    name, _, changes = spec.partition(":")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise argparse.ArgumentTypeError(f"variant {spec!r}: a name of letters, digits, _ and -")
    args = argparse.Namespace(**vars(base))
    args.out, args.variant_of = base.out.parent / f"{name}.json", base.out.name
    for change in filter(None, changes.split(",")):
        key, sep, value = change.partition("=")
        if key not in VARIANT_KEYS or not sep:
            raise argparse.ArgumentTypeError(
                f"variant {spec!r}: {change!r} is not KEY=VALUE with KEY one of "
                f"{', '.join(VARIANT_KEYS)}"
            )
        attr, convert = VARIANT_KEYS[key]
        try:
            setattr(args, attr, convert(value))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"variant {spec!r}: {key}: {exc}") from exc
    return args


def configure(engine: Engine, args: argparse.Namespace) -> Scheduler:
    """Set ``engine`` up for a variant's options, and a scheduler for them (a compiled engine
    that starts packing builds that graph here, not in a timed burst)."""
    if engine.use_packing(args.packing) and engine.compile_mode != "off":
        warm_up(engine.model, engine.device, engine.dtype, packed=True)  # from the cache if built
    engine.use_cuda_graphs(args.cuda_graphs)
    engine.max_batch_frames = args.batch_frames or default_batch_frames(
        engine.model, engine.device, engine.dtype
    )
    return Scheduler(engine, openers=args.openers, opener_frames=args.opener_frames)


def run_variant(
    args: argparse.Namespace, engine: Engine, work: list[Request], refs: list[Path]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A variant's runs on the loaded engine, after a warm-up request in its set-up."""
    sched = configure(engine, args)
    try:
        asyncio.run(burst(sched, work, refs, 1, options(args)))
        return measure(args, engine, sched, work, refs, [], [])
    finally:
        sched.close()


def measure(
    args: argparse.Namespace,
    engine: Engine,
    sched: Scheduler,
    work: list[Request],
    refs: list[Path],
    alone: list[float],
    audio: list[float],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The bursts at each of ``args.concurrency`` (beside serving one at a time, when timed) and
    the one-request anchor when asked for."""
    opts = options(args)
    anchor = time_anchor(engine, refs[-1], opts) if args.anchor else {}
    rows = []
    for c in args.concurrency:
        if engine.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(engine.device)
        batched = asyncio.run(burst(sched, work, refs, c, opts))
        # c requests arriving together, served one after another: each waits for those before
        one_by_one = (
            summarize(sum(alone[:c]), list(accumulate(alone[:c])), audio[:c], None)
            if alone
            else None
        )
        rows.append(
            {
                "concurrency": c,
                "batched": batched,
                "serial": one_by_one,
                "reference_serial_wall_s": None,
                "reference_audio_s": None,
                "peak_memory_mb": peak_memory_mb(engine.device),
            }
        )
    return rows, anchor


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The synthesis options of every request."""
    return {"nfe_steps": args.steps, "first_chunk_seconds": args.first_chunk_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="F5TTS_v1_Small")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--text-repeat", type=int, default=1, help="say texts up to K times")
    parser.add_argument("--reference", action="store_true", help="also time the reference")
    parser.add_argument("--anchor", action="store_true", help="also time one 10 s request")
    parser.add_argument(
        "--batch-frames", type=int, default=None, help="frame budget (default: the device's)"
    )
    parser.add_argument("--compile", choices=["off", "on", "max"], default="off")
    parser.add_argument("--cuda-graphs", choices=["off", "auto"], default="auto")
    parser.add_argument("--packing", choices=["off", "auto", "on"], default="off")
    parser.add_argument(
        "--no-serial", action="store_true", help="skip serving the requests one at a time"
    )
    parser.add_argument(
        "--compile-cache",
        type=Path,
        default=None,
        help="inductor cache folder",
    )
    parser.add_argument(
        "--first-chunk-seconds", type=float, default=None, help="a short first chunk (option)"
    )
    parser.add_argument(
        "--openers",
        choices=OPENER_MODES,
        default="first",
        help="admission of streams' first chunks",
    )
    parser.add_argument(
        "--opener-frames", type=int, default=None, help="frames of first chunks in one wave"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/throughput.json")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="also measure this set-up in the same process (see above)",
    )
    args = parser.parse_args()
    args.variant_of = None
    try:
        variants = [parse_variant(spec, args) for spec in args.variant]
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    torch.set_num_threads(args.threads)
    opts = options(args)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        files = make_weights(tmp_dir, args.preset)
        longest = max(max(v.concurrency) for v in [args, *variants])
        work = workload(longest, args.text_repeat)
        refs = prepare_refs(tmp_dir, [*work, ANCHOR])
        engine, sched, start = start_engine(args, files, work, refs)
        alone, audio = ([], []) if args.no_serial else serial_each(engine, work, refs, opts)
        rows, anchor = measure(args, engine, sched, work, refs, alone, audio)
        sched.close()
        report(args, engine, start, rows, anchor)  # before the reference: it may fail or hang
        for variant in variants:
            print(f"=== variant {variant.out.stem}")
            try:
                rows_v, anchor_v = run_variant(variant, engine, work, refs)
            except Exception:  # one set-up's failure is its own: the next ones still run
                traceback.print_exc()
                continue
            report(variant, engine, {}, rows_v, anchor_v)
        if args.reference:
            ref_times, ref_audio = reference_each(
                files, [*work, ANCHOR], refs, args.steps, args.threads, engine.device
            )
            if ref_times:
                for row in rows:
                    c = row["concurrency"]
                    row["reference_serial_wall_s"] = sum(ref_times[:c])
                    row["reference_audio_s"] = sum(ref_audio[:c])
                if args.anchor:
                    anchor["reference_wall_s"] = ref_times[-1]
                    anchor["reference_rtf"] = ref_times[-1] / ref_audio[-1]
                report(args, engine, start, rows, anchor)


def report(
    args: argparse.Namespace,
    engine: Engine,
    start: dict[str, Any],
    rows: list[dict[str, Any]],
    anchor: dict[str, Any],
) -> None:
    print(
        f"{args.preset}, {args.steps} steps, {engine.device} {engine.dtype}, compile "
        f"{engine.compile_mode}, CUDA graphs {engine.cuda_graphs}, packed {engine.packed}, "
        f"frame budget "
        f"{engine.max_batch_frames}, text repeat {args.text_repeat}, first chunk "
        f"{args.first_chunk_seconds or 'as the reference'} s, openers {args.openers}, "
        f"opener waves of {args.opener_frames or 'any'} frames"
    )
    print(
        f"{'c':>3} {'batched audio/s':>16} {'RTF':>7} {'p50 s':>7} {'p95 s':>7} {'TTFA s':>7} "
        f"{'TTFA95':>7} {'stall95':>7} "
        f"{'serial audio/s':>15} {'ref audio/s':>12} {'vs serial':>9} {'vs ref':>7} {'peak MB':>8}"
    )
    for r in rows:
        b = r["batched"]
        serial_rate = r["serial"]["audio_per_wall_s"] if r["serial"] else float("nan")
        ref_rate = (
            r["reference_audio_s"] / r["reference_serial_wall_s"]
            if r["reference_serial_wall_s"]
            else None
        )
        print(
            f"{r['concurrency']:>3} {b['audio_per_wall_s']:>16.3f} {b['rtf']:>7.4f} "
            f"{b['p50_latency_s']:>7.2f} {b['p95_latency_s']:>7.2f} {b['p50_ttfa_s']:>7.2f} "
            f"{b['p95_ttfa_s']:>7.2f} {b['p95_stall_s']:>7.2f} "
            f"{serial_rate:>15.3f} {ref_rate or float('nan'):>12.3f} "
            f"{b['audio_per_wall_s'] / serial_rate:>8.2f}x "
            f"{(b['audio_per_wall_s'] / ref_rate) if ref_rate else float('nan'):>6.2f}x "
            f"{r['peak_memory_mb']:>8.0f}"
        )
    if anchor:
        print(f"one request alone: {anchor}")
    write_json(
        args.out,
        {
            "machine": machine(),
            "preset": args.preset,
            "steps": args.steps,
            "device": str(engine.device),
            "dtype": str(engine.dtype),
            "max_batch_frames": engine.max_batch_frames,
            "cuda_graphs": engine.cuda_graphs,
            "packed": engine.packed,
            "text_repeat": args.text_repeat,
            "first_chunk_seconds": args.first_chunk_seconds,
            "openers": args.openers,
            "opener_frames": args.opener_frames,
            "start": start,
            "variant_of": args.variant_of,
            "anchor": anchor,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
