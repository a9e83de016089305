"""Time to first byte against total time of a streamed multi-chunk text, per audio format.

    .venv/bin/python -m bench.stream_latency [--preset tiny|F5TTS_v1_Small] [--steps 4]
        [--formats wav mp3 opus aac pcm flac] [--repeat 3]

Starts ``f5serve serve`` (random weights in the official layout for ``--preset``, or the tiny
test model; the narrator's reference clip as voice ``narrator``) on a free loopback port and
asks ``POST /v1/tts`` with ``stream: true`` for the same text of several chunks in each format
through :class:`f5serve.client.Client`, timing the first byte of audio and the last. The same
request unstreamed gives the total time of the whole file. Median of ``--repeat`` runs after a
warm-up request. Prints a table and writes ``bench/results/stream_latency.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import FIXTURES, ROOT, machine, make_weights, write_json
from f5serve.client import Client

REF_TEXT = "Some call me nature, others call me mother nature."
TEXT = (
    "Streaming starts to play the first sentence while the later ones are still being made. "
    "This second sentence is long enough to be a chunk of its own, after the first one. "
    "A third sentence follows, so that the listener hears three chunks joined together. "
    "And the fourth sentence ends the paragraph that the benchmark asks the server to speak."
) * 2
TINY = FIXTURES / "golden"


def models_toml(workdir: Path, preset: str) -> str:
    if preset == "tiny":
        files = {
            "checkpoint": TINY / "dit_v1.safetensors",
            "vocab": TINY / "vocab.txt",
            "arch": "tiny_v1",
            "vocoder": TINY / "vocos",
        }
    else:
        files = {**make_weights(workdir / "weights", preset), "arch": preset}
    lines = "\n".join(f'{key} = "{value}"' for key, value in files.items())
    return f'[[models]]\nname = "bench"\nlanguages = ["en"]\n{lines}\ndefault = true\n'


@contextmanager
def serve(workdir: Path, preset: str, steps: int) -> Iterator[str]:
    """A running ``f5serve serve``; yields its URL."""
    (workdir / "models.toml").write_text(models_toml(workdir, preset))
    voices = workdir / "sample"
    voices.mkdir()
    shutil.copy(FIXTURES / "basic_ref_en.wav", voices / "narrator.wav")
    (voices / "narrator.txt").write_text(REF_TEXT)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = {
        "models_file": workdir / "models.toml",
        "voices_dir": voices,
        "database_url": f"sqlite:///{workdir / 'f5serve.db'}",
        "storage_url": workdir / "storage",
        "device": "cpu",
        "nfe_steps": steps,
        "port": port,
        "run_worker": "false",
        "log_level": "warning",
    }
    env = {**os.environ, **{f"F5SERVE_{k.upper()}": str(v) for k, v in settings.items()}}
    f5serve = Path(sys.executable).parent / "f5serve"
    process = subprocess.Popen([str(f5serve), "serve"], env=env, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not become ready")


def streamed(client: Client, fmt: str) -> dict[str, float]:
    started = time.perf_counter()
    first = None
    size = 0
    for piece in client.stream_speech(TEXT, voice="narrator", response_format=fmt, seed=1):
        if piece and first is None:
            first = time.perf_counter() - started
        size += len(piece)
    return {"ttfb": first or 0.0, "total": time.perf_counter() - started, "bytes": size}


def whole(client: Client, fmt: str) -> float:
    started = time.perf_counter()
    client.speech(TEXT, voice="narrator", response_format=fmt, seed=1)
    return time.perf_counter() - started


def measure(url: str, formats: list[str], repeat: int) -> list[dict[str, Any]]:
    rows = []
    with Client(url) as client:
        segments = [
            e for e in client.stream_segments(TEXT, voice="narrator") if not isinstance(e, bytes)
        ]
        print(f"{len(segments)} chunks, {segments[-1].end:.1f} s of audio")  # also the warm-up
        for fmt in formats:
            runs = [streamed(client, fmt) for _ in range(repeat)]
            wholes = [whole(client, fmt) for _ in range(repeat)]
            row = {
                "format": fmt,
                "chunks": len(segments),
                "audio_seconds": segments[-1].end,
                "ttfb_s": statistics.median(r["ttfb"] for r in runs),
                "stream_total_s": statistics.median(r["total"] for r in runs),
                "whole_total_s": statistics.median(wholes),
                "bytes": runs[0]["bytes"],
            }
            print(
                f"{fmt:5} first byte {row['ttfb_s']:6.2f} s   streamed total "
                f"{row['stream_total_s']:6.2f} s   whole file {row['whole_total_s']:6.2f} s"
            )
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument(
        "--formats", nargs="+", default=["wav", "mp3", "opus", "aac", "pcm", "flac"]
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp), args.preset, args.steps) as url:
        rows = measure(url, args.formats, args.repeat)
    result = {"preset": args.preset, "steps": args.steps, "machine": machine(), "rows": rows}
    write_json(ROOT / "bench" / "results" / "stream_latency.json", result)


if __name__ == "__main__":
    main()
