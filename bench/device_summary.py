"""The summary table of ``bench/device_run.sh``: every stage's results in one short printout.

    python -m bench.device_summary OUT_DIR

Reads whichever exist of ``eager.json``, ``compiled.json``, ``graphs.json`` (compiled with CUDA
graphs), ``packed.json`` (the same with packed batches), ``graphs_max.json`` (max-autotune,
graphs and packing), ``ttfa.json`` and ``ttfa_alone.json`` (a short first chunk, openers
``first`` and ``alone``), ``ttfa_waves.json`` (openers ``alone`` in waves), ``budget_old.json``
(compiled under the former frame budget), ``reference.json`` (eager, beside the reference),
``warm_start.json``, ``precision.json``, ``packing.json`` and ``profile_gpu.txt`` (a run measured
as a variant of another, in its process, has no start-up of its own), and prints
throughput side by side (each run against the reference timed in the same call, at the
concurrencies it was timed at), the one-request anchors, cold and warm starts, precision, the
packed forward against the padded one and the profile's first lines.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RUNS = {
    "eager": "eager",
    "compiled": "compiled",
    "graphs": "compiled+graphs",
    "packed": "+packed",
    "graphs_max": "max+graphs+packed",
    "ttfa": "+first chunk",
    "ttfa_alone": "+first, alone",
    "ttfa_waves": "+first, waves",
    "budget_old": "compiled, 65536",
    "reference": "eager, ref",
}
NAN = float("nan")


def load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / f"{name}.json"
    try:
        return dict(json.loads(path.read_text())) if path.is_file() else None
    except (OSError, ValueError) as exc:  # a stage killed while writing
        print(f"{path}: unreadable ({exc})")
        return None


def reference_rates(results: dict[str, dict[str, Any]]) -> dict[int, float]:
    """Seconds of audio per second of the reference, by concurrency, from any run that has it."""
    rates = {}
    for data in results.values():
        for row in data["rows"]:
            if row.get("reference_serial_wall_s"):
                rates[row["concurrency"]] = (
                    row["reference_audio_s"] / row["reference_serial_wall_s"]
                )
    return rates


def throughput(results: dict[str, dict[str, Any]]) -> None:
    refs = reference_rates(results)
    print(
        f"{'run':>16} {'c':>3} {'budget':>7} {'audio s/s':>10} {'RTF':>7} {'p50 s':>7} "
        f"{'p95 s':>7} {'TTFA50 s':>9} {'TTFA95 s':>9} {'stall95 s':>9} {'ref s/s':>8} "
        f"{'vs ref':>7} {'peak MB':>8}"
    )
    for run, data in results.items():
        for row in data["rows"]:
            b = row["batched"]
            ref_rate = refs.get(row["concurrency"], NAN)
            print(
                f"{run:>16} {row['concurrency']:>3} {data.get('max_batch_frames', 0):>7} "
                f"{b['audio_per_wall_s']:>10.2f} {b['rtf']:>7.4f} {b['p50_latency_s']:>7.2f} "
                f"{b['p95_latency_s']:>7.2f} {b['p50_ttfa_s']:>9.3f} "
                f"{b.get('p95_ttfa_s', NAN):>9.3f} {b.get('p95_stall_s', NAN):>9.3f} "
                f"{ref_rate:>8.2f} "
                f"{b['audio_per_wall_s'] / ref_rate:>6.2f}x {row['peak_memory_mb']:>8.0f}"
            )


def anchors(results: dict[str, dict[str, Any]]) -> None:
    ref_rtf = next(
        (d["anchor"]["reference_rtf"] for d in results.values() if "reference_rtf" in d["anchor"]),
        None,
    )
    if ref_rtf is not None:
        print(f"one request alone (reference): RTF {ref_rtf:.4f}")
    for run, data in results.items():
        a = data.get("anchor") or {}
        if a:
            ratio = f", {ref_rtf / a['rtf']:.2f}x the reference" if ref_rtf else ""
            print(
                f"one request alone ({run}): {a['audio_s']:.1f} s of audio in {a['wall_s']:.3f} s,"
                f" RTF {a['rtf']:.4f}{ratio}"
            )


def starts(folder: Path) -> None:
    for name in ("graphs", "packed", "graphs_max", "compiled", "warm_start"):
        data = load(folder, name)
        if data and data.get("start"):  # a variant shares the start-up of its process
            s = data["start"]
            label = {True: "cold start", False: "warm start"}.get(s.get("cold_cache"), "start")
            print(
                f"{label} ({name}, {s['compile']}): load {s['load_s']:.1f} s + compile/warm-up "
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


def packing(folder: Path) -> None:
    data = load(folder, "packing")
    if data:
        print(
            f"one forward, {data['rows']} rows ({data['compile']}, {data['attention']}): padded "
            f"{data['padded_ms']:.1f} ms ({data['padded_frames']} frames), packed "
            f"{data['packed_ms']:.1f} ms ({data['packed_frames']} frames), "
            f"{data['speedup']:.2f}x, packed vs padded {data['packed_vs_padded']:.2e}"
        )


def profile(folder: Path) -> None:
    path = folder / "profile_gpu.txt"
    if path.is_file():
        lines = [ln for ln in path.read_text().splitlines() if ln.startswith(("compile", "c="))]
        print("profile: " + "; ".join(lines))


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
    packing(folder)
    profile(folder)


if __name__ == "__main__":
    main()
