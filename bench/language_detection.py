#!/usr/bin/env python3
"""What ``language="auto"`` costs per request: the script fast path vs lingua, short vs long text.

    .venv/bin/python bench/language_detection.py [--repeat 2000]

Prints a table and writes ``bench/results/language_detection.json``. Measures, in one process:
building the detector (lazy and with every language model preloaded), the first detection after a
lazy build (it loads language models on demand), and the steady-state cost of
``LanguageRouter.route(text)`` per call (median and p99 of single calls, in microseconds) for texts
that take the script fast path (zh, ja, ru, hi) and texts that need lingua (Latin script).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from f5serve.registry import Catalog, LanguageRouter
from f5serve.registry.language import DETECTORS, lingua_codes

SHORT = {
    "zh": "今天天气很好，我们去散步吧。",
    "ja": "今日はいい天気ですね。",
    "ru": "Сегодня прекрасная погода.",
    "hi": "आज मौसम बहुत अच्छा है।",
    "en": "The weather is lovely today.",
    "de": "Das Wetter ist heute schön.",
    "fr": "Il fait très beau aujourd'hui.",
    "es": "Hoy hace muy buen tiempo.",
    "fi": "Tänään on kaunis sää.",
}
LONG_EN = (
    "The committee met on Tuesday to review the budget for the coming year. After a long "
    "discussion about maintenance costs, the members agreed to postpone the new library wing "
    "until the spring, when the results of the survey will be known. "
) * 4  # ~ 960 characters, a typical long request
LONG_ZH = (
    "委员会周二开会审议来年的预算。"
    "经过关于维护费用的长时间讨论，成员们同意将新图书馆的建设推迟到春天。"
) * 8


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def per_call_us(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and p99 of single calls, microseconds."""
    for _ in range(20):
        fn()
    samples = sorted(timed(fn) * 1e6 for _ in range(repeat))
    return statistics.median(samples), samples[int(0.99 * (len(samples) - 1))]


def fresh_process(mode: str) -> dict[str, float]:
    """Detector set-up cost in a new process (lingua caches language models process-wide)."""
    code = f"""
import json, sys, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
from language_detection import measure_setup
print(json.dumps(measure_setup({mode!r})))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_setup(mode: str) -> dict[str, float]:
    """Build (lazily or preloaded) and route one German sentence; seconds and MB of memory."""
    catalog = Catalog.builtin()
    languages = lingua_codes(catalog.languages())
    before = rss_mb()
    build = timed(lambda: DETECTORS.get(languages, preload=mode == "preloaded"))
    first = timed(lambda: LanguageRouter(catalog).route(SHORT["de"]))
    return {
        f"{mode}_build_s": round(build, 3),
        f"{mode}_first_route_s": round(first, 3),
        f"{mode}_memory_mb": round(rss_mb() - before, 1),
    }


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()

    catalog = Catalog.builtin()
    languages = lingua_codes(catalog.languages())
    rows: list[dict[str, object]] = []

    setup = {**fresh_process("lazy"), **fresh_process("preloaded")}
    router = LanguageRouter(catalog)
    router.warm_up()

    cases = [(f"short {code}", text) for code, text in SHORT.items()]
    cases += [("long en (960 chars)", LONG_EN), (f"long zh ({len(LONG_ZH)} chars)", LONG_ZH)]
    for label, text in cases:
        found = router.detect(text)
        median, p99 = per_call_us(lambda t=text: router.route(t), args.repeat)  # type: ignore[misc]
        rows.append(
            {
                "text": label,
                "chars": len(text),
                "path": found.method,
                "detected": found.language,
                "median_us": round(median, 1),
                "p99_us": round(p99, 1),
            }
        )

    machine = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "lingua": version("lingua-language-detector"),
        "languages": sorted(languages),
    }
    print(
        f"language detection — {machine['cpu']}, {machine['cores']} cores, "
        f"Python {machine['python']}, lingua {machine['lingua']}"
    )
    print(f"languages: {', '.join(sorted(languages))}")
    for key, value in setup.items():
        print(f"  {key:32} {value}")
    print(f"\n{'text':24} {'chars':>6} {'path':>7} {'lang':>5} {'median µs':>10} {'p99 µs':>9}")
    for r in rows:
        print(
            f"{r['text']!s:24} {r['chars']:>6} {r['path']!s:>7} {r['detected']!s:>5} "
            f"{r['median_us']:>10} {r['p99_us']:>9}"
        )
    out = Path(__file__).parent / "results" / "language_detection.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "setup": setup, "per_call": rows}, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
