"""Reduced precision and batching on a GPU, measured against float64.

    python -m bench.precision [--preset F5TTS_v1_Base] [--steps 16] [--device cuda] [--trials 3]
        [--compile on|max] [--compile-cache DIR] [--packing off|auto|on]

Each trial draws fresh seeds and sends the same chunks (references and texts of
``bench.throughput``'s mixed set) through engines that differ only in the DiT's dtype: float64
(the yardstick), float32, bfloat16 and float16. It reports ‖mel − mel64‖ / ‖mel64‖ for the
sampled mels and the same for the vocoded audio. Then, per dtype, each chunk sampled alone is
compared with the same chunk sampled in one batch with all the others (padding must not leak).
``--compile`` adds compiled bfloat16 and float16 engines; ``--packing`` bfloat16 and float16
engines whose batches run packed (``Engine.use_packing``: on CUDA, the variable-length attention
kernel). Random weights in the official layout. Prints a row and writes
``bench/results/precision.json`` as each engine is done (float64 first, then bfloat16 and its
packed and compiled forms, float16 and its, float32), so a run stopped part-way keeps the rows
done.
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from bench.common import ROOT, machine, make_weights, write_json
from bench.throughput import prepare_refs, workload
from f5serve import Engine, SynthesisOptions
from f5serve.engine.compile import use_cache_dir
from f5serve.engine.pipeline import Reference

DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def rel(x: torch.Tensor, ref: torch.Tensor) -> float:
    x, ref = x.double().cpu(), ref.double().cpu()
    if not torch.isfinite(x).all():
        return float("nan")
    return float(torch.linalg.vector_norm(x - ref) / torch.linalg.vector_norm(ref))


def chunks(
    engine: Engine, refs: list[Reference], texts: list[str], seeds: list[int], steps: int
) -> list[Any]:
    opts = SynthesisOptions(nfe_steps=steps)
    return [
        engine.make_item(ref, text, seed, opts)
        for ref, text, seed in zip(refs, texts, seeds, strict=True)
    ]


def make_engines(base: Engine, compile_mode: str, packing: str) -> Iterator[tuple[str, Engine]]:
    """One engine per dtype sharing ``base``'s weights (copied), float64 (the yardstick) first,
    and in half precision a packed one and a compiled one, made one at a time as they are
    needed: a run stopped part-way has measured the first ones."""

    def copy_of(dtype: torch.dtype) -> Engine:
        return Engine(copy.deepcopy(base.model), base.vocab, base.vocoder, base.device, dtype)

    yield "float64", copy_of(torch.float64)
    for name in ("bfloat16", "float16"):
        yield name, copy_of(DTYPES[name])
        packed = copy_of(DTYPES[name])
        if packed.use_packing(packing):
            yield f"{name}+packed", packed
        if compile_mode != "off":
            compiled = copy_of(DTYPES[name])
            try:
                compiled.compile(compile_mode)
            except Exception as exc:  # the other rows are still worth reporting
                print(f"compiled {name} not measured: {type(exc).__name__}: {exc}", file=sys.stderr)
            else:
                yield f"{name}+{compile_mode}", compiled
    yield "float32", copy_of(torch.float32)


def measure(
    engine: Engine,
    base: Engine,
    refs: list[Reference],
    texts: list[str],
    seeds: list[int],
    steps: int,
    truth: tuple[list[torch.Tensor], list[Any]] | None,
) -> tuple[dict[str, float], tuple[list[torch.Tensor], list[Any]]]:
    """One trial of ``engine``: its errors against ``truth`` (float64's mels and audio; None:
    this is float64) and its own mels and audio."""
    mels = engine.sample_items(chunks(engine, refs, texts, seeds, steps))
    audio = base.vocode_items(list(zip(refs, mels, strict=True)))
    mels64, audio64 = truth or (mels, audio)
    # the batch above held all chunks: now each one alone
    alone = [
        engine.sample_items(chunks(engine, [ref], [t], [s], steps))[0]
        for ref, t, s in zip(refs, texts, seeds, strict=True)
    ]
    errors = {
        "mel_vs_float64": max(rel(m, r) for m, r in zip(mels, mels64, strict=True)),
        "audio_vs_float64": max(
            rel(torch.from_numpy(a), torch.from_numpy(r))
            for a, r in zip(audio, audio64, strict=True)
        ),
        "alone_vs_batched": max(rel(a, b) for a, b in zip(alone, mels, strict=True)),
    }
    return errors, (mels, audio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="F5TTS_v1_Base")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--count", type=int, default=4, help="chunks per trial")
    parser.add_argument("--compile", choices=["off", "on", "max"], default="off")
    parser.add_argument("--compile-cache", type=Path, default=None, help="inductor cache folder")
    parser.add_argument("--packing", choices=["off", "auto", "on"], default="off")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/precision.json")
    args = parser.parse_args()
    if args.compile_cache is not None:
        use_cache_dir(args.compile_cache)
    draw = random.SystemRandom()
    with tempfile.TemporaryDirectory() as tmp:
        files = make_weights(Path(tmp), args.preset)
        base = Engine.from_files(**files, device=args.device, dtype="float32")
        work = workload(args.count, 1)
        paths = prepare_refs(Path(tmp), work)
        texts = [r.text for r in work]
        refs = [base.prepare_reference(p, r.ref_text) for p, r in zip(paths, work, strict=True)]
        trials: list[dict[str, Any]] = [
            {"seeds": [draw.randrange(2**31) for _ in work]} for _ in range(args.trials)
        ]
        truths: list[tuple[list[torch.Tensor], list[Any]]] = []
        print(f"{args.preset}, {args.steps} steps, {base.device}, {args.count} chunks a trial")
        print(f"{'dtype':>14} {'mel vs f64':>11} {'audio vs f64':>13} {'alone vs batched':>17}")
        for name, engine in make_engines(base, args.compile, args.packing):
            for i, trial in enumerate(trials):
                errors, sampled = measure(
                    engine,
                    base,
                    refs,
                    texts,
                    trial["seeds"],
                    args.steps,
                    None if name == "float64" else truths[i],
                )
                trial.update({f"{kind}_{name}": value for kind, value in errors.items()})
                if name == "float64":
                    truths.append(sampled)
            worst = [
                max(t[f"{kind}_{name}"] for t in trials)
                for kind in ("mel_vs_float64", "audio_vs_float64", "alone_vs_batched")
            ]
            print(f"{name:>14} {worst[0]:>11.2e} {worst[1]:>13.2e} {worst[2]:>17.2e}")
            write_json(
                args.out,
                {
                    "machine": machine(),
                    "preset": args.preset,
                    "steps": args.steps,
                    "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                    "tf32_cudnn": torch.backends.cudnn.allow_tf32,
                    "trials": trials,
                },
            )


if __name__ == "__main__":
    main()
