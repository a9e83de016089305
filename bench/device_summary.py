"""The summary table of ``bench/device_run.sh``: every stage's JSON in one short printout.

    python -m bench.device_summary OUT_DIR

Reads ``eager.json``, ``compiled.json``, ``reference.json`` (eager, beside the reference),
``warm_start.json`` and ``precision.json`` (whichever exist) and prints throughput side by side,
the one-request anchor, the reference, cold and warm start, and precision.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RUNS = {"eager": "eager", "compiled": "compiled", "reference": "eager, ref"}


def load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / f"{name}.json"
    return dict(json.loads(path.read_text())) if path.is_file() else None


def throughput(results: dict[str, dict[str, Any]]) -> None:
    print(
        f"{'run':>10} {'c':>3} {'audio s/s':>10} {'RTF':>7} {'p50 s':>7} {'p95 s':>7} "
        f"{'TTFA50 s':>9} {'TTFA95 s':>9} {'ref s/s':>8} {'vs ref':>7} {'peak MB':>8}"
    )
    for run, data in results.items():
        for row in data["rows"]:
            b = row["batched"]
            ref = row["reference_serial_wall_s"]
            ref_rate = row["reference_audio_s"] / ref if ref else float("nan")
            print(
                f"{run:>10} {row['concurrency']:>3} {b['audio_per_wall_s']:>10.2f} "
                f"{b['rtf']:>7.4f} {b['p50_latency_s']:>7.2f} {b['p95_latency_s']:>7.2f} "
                f"{b['p50_ttfa_s']:>9.3f} {b.get('p95_ttfa_s', float('nan')):>9.3f} "
                f"{ref_rate:>8.2f} {b['audio_per_wall_s'] / ref_rate:>6.2f}x "
                f"{row['peak_memory_mb']:>8.0f}"
            )


def anchors(results: dict[str, dict[str, Any]]) -> None:
    for run, data in results.items():
        a = data.get("anchor") or {}
        if a:
            ref = f", reference RTF {a['reference_rtf']:.4f}" if "reference_rtf" in a else ""
            print(
                f"one request alone ({run}): {a['audio_s']:.1f} s of audio in {a['wall_s']:.3f} s,"
                f" RTF {a['rtf']:.4f}{ref}"
            )


def starts(folder: Path) -> None:
    for name, label in (("compiled", "cold start"), ("warm_start", "warm start")):
        data = load(folder, name)
        if data and "start" in data:
            s = data["start"]
            print(
                f"{label} ({s['compile']}): load {s['load_s']:.1f} s + compile/warm-up "
                f"{s['compile_s']:.1f} s + first request {s['first_request_s']:.2f} s = "
                f"{s['total_s']:.1f} s, peak {s['peak_memory_mb']:.0f} MB"
            )


def precision(folder: Path) -> None:
    data = load(folder, "precision")
    if not data:
        return
    prefix = "mel_vs_float64_"
    names = [k[len(prefix) :] for k in data["trials"][0] if k.startswith(prefix)]
    print(f"{'precision':>14} {'mel vs f64':>11} {'audio vs f64':>13} {'alone vs batched':>17}")
    for name in names:
        worst = [
            max(t[f"{kind}_{name}"] for t in data["trials"])
            for kind in ("mel_vs_float64", "audio_vs_float64", "alone_vs_batched")
        ]
        print(f"{name:>14} {worst[0]:>11.2e} {worst[1]:>13.2e} {worst[2]:>17.2e}")


def main() -> None:
    folder = Path(sys.argv[1])
    results = {label: data for run, label in RUNS.items() if (data := load(folder, run))}
    if results:
        first = next(iter(results.values()))
        print(f"{first['preset']}, {first['steps']} steps, {first['device']} {first['dtype']}")
        throughput(results)
        anchors(results)
    starts(folder)
    precision(folder)


if __name__ == "__main__":
    main()
