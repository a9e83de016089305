"""Time ``Engine.synthesize`` against the reference's ``infer_process`` on the same weights.

    .venv/bin/python bench/engine_vs_reference.py [--preset F5TTS_v1_Small] [--steps 8 16]

Random weights (speed does not depend on them) in the official layout are loaded by both
implementations; the reference runs in its own virtualenv (``bench/setup_reference.sh``). Both
are timed end to end from a clean reference file: decode, mel, chunking, sampling, Vocos,
loudness restore. float32, CPU. Prints a table and writes
``bench/results/engine_vs_reference.json``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
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

GEN_TEXT = "Some call me nature, others call me"  # about as long as the 3 s reference: ~3 s out
REF_TEXT_3S = "Some call me nature, others call me"


def time_ours(files: dict[str, Any], ref: Path, steps: int, repeats: int) -> dict[str, Any]:
    engine = Engine.from_files(**files, device="cpu")
    kwargs: dict[str, Any] = {"nfe_steps": steps, "seed": 0, "preprocess_ref": False}
    engine.synthesize(GEN_TEXT, ref, REF_TEXT_3S, **kwargs)  # warm-up
    times, audio_s = [], 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        result = engine.synthesize(GEN_TEXT, ref, REF_TEXT_3S, **kwargs)
        times.append(time.perf_counter() - started)
        audio_s = result.duration
    return {"times_s": times, "median_s": statistics.median(times), "audio_seconds": audio_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="F5TTS_v1_Small")
    parser.add_argument("--steps", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/engine_vs_reference.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = make_weights(work, args.preset)
        ref = clip_reference(FIXTURES / "basic_ref_en.wav", work / "ref3s.wav", 3.0)
        reference = run_reference(
            files,
            ref_audio=ref,
            ref_text=REF_TEXT_3S,
            gen_text=GEN_TEXT,
            nfe_steps=args.steps,
            repeats=args.repeats,
            warmup=1,
            seed=0,
            threads=args.threads,
            preprocess_ref=False,
        )
        ours = {steps: time_ours(files, ref, steps, args.repeats) for steps in args.steps}
    rows = []
    for steps in args.steps:
        ref_row = (
            next((r for r in reference["results"] if r["nfe"] == steps), None)
            if reference
            else None
        )
        row = {
            "preset": args.preset,
            "nfe_steps": steps,
            "audio_s": ours[steps]["audio_seconds"],
            "f5serve_s": ours[steps]["median_s"],
            "reference_s": ref_row["median_s"] if ref_row else None,
        }
        row["speedup"] = row["reference_s"] / row["f5serve_s"] if row["reference_s"] else None
        rows.append(row)
    print(
        f"{'preset':16} {'steps':>5} {'audio s':>8} {'f5serve s':>10} "
        f"{'reference s':>12} {'speed-up':>9}"
    )
    for r in rows:
        ref_s = f"{r['reference_s']:.3f}" if r["reference_s"] else "-"
        speed = f"{r['speedup']:.2f}x" if r["speedup"] else "-"
        print(
            f"{r['preset']:16} {r['nfe_steps']:>5} {r['audio_s']:>8.2f} {r['f5serve_s']:>10.3f} "
            f"{ref_s:>12} {speed:>9}"
        )
    write_json(
        args.out,
        {
            "machine": machine(),
            "dtype": "float32",
            "rows": rows,
            "ours": ours,
            "reference": reference,
        },
    )


if __name__ == "__main__":
    main()
