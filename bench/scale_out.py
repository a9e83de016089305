"""Scale-out on one machine: how soon the jobs of a killed worker run elsewhere, and what the
API replica adds to a sync request it forwards to a worker on loopback.

    PYTHONPATH=src .venv/bin/python -m bench.scale_out [--lease 30] [--requests 300]

Needs a PostgreSQL server (``F5SERVE_TEST_POSTGRES``, default
``postgresql://postgres@127.0.0.1:5432/postgres``): makes a database of its own, upgrades it,
starts two workers (``f5serve worker``, the tiny test model on the CPU) and one API replica
(``f5serve serve --no-worker``), then

- recovery: submits two jobs (worker A has room for both), kills worker B with SIGKILL once it
  runs one, and times how long until each job B held is running (or done) on A — with
  ``--lease`` as
  ``job_lease_seconds`` (default: the setting's default);
- forwarding: ``--requests`` pairs of sequential ``POST /v1/tts`` that the worker answers at
  once (an unknown voice: 404 after routing and validation), one straight to the worker, one
  through the API; the difference of the medians is what forwarding adds.

Writes ``bench/results/scale_out.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from bench.common import FIXTURES, ROOT, machine, write_json
from f5serve.core.db import database_url, upgrade_database
from f5serve.core.settings import Settings

ADMIN_URL = os.environ.get("F5SERVE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
F5SERVE = Path(sys.executable).parent / "f5serve"
GOLDEN = FIXTURES / "golden"
MODELS_TOML = f"""
[[models]]
name = "tiny"
languages = ["en"]
checkpoint = "{GOLDEN / "dit_v1.safetensors"}"
vocab = "{GOLDEN / "vocab.txt"}"
arch = "tiny_v1"
vocoder = "{GOLDEN / "vocos"}"
default = true
"""
REF_TEXT = "Some call me nature, others call me mother nature."
TEXT = "Each worker takes its share of the queue, and none is lost."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """One f5serve process on loopback, configured by F5SERVE_* variables."""

    def __init__(self, root: Path, command: list[str], fields: dict[str, Any]) -> None:
        self.root = root
        self.command = command
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {f"F5SERVE_{k.upper()}": str(v) for k, v in fields.items()}
        self.env = env | {"F5SERVE_PORT": str(self.port), "F5SERVE_HOST": "127.0.0.1"}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        log = (self.root / f"{self.command[0]}-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [str(F5SERVE), *self.command, "--env-file", str(self.root / "none.env")],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise SystemExit(f"{self.url} exited: see its log")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{self.url} did not become ready")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=60)


def make_database() -> tuple[str, Any]:
    admin = create_engine(database_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
    name = f"f5serve_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = database_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade_database(url)
    return url, lambda: _drop(admin, name)


def _drop(admin: Any, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def rows(url: str, query: str) -> list[Any]:
    engine = create_engine(database_url(url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(query)))
    finally:
        engine.dispose()


def recovery(api: Process, victim: Process, rescuer: Process, url: str) -> dict[str, Any]:
    """Seconds from SIGKILL of ``victim`` (running two jobs) until each runs on ``rescuer``
    (started after them, so it is idle: what is timed is recovery, not a queue)."""
    assert victim.process is not None
    body = {"text": " ".join([TEXT] * 6), "voice": "narrator", "nfe_steps": 32}
    ids = [
        httpx.post(f"{api.url}/v1/jobs", json={**body, "seed": i}, timeout=30).json()["job_id"]
        for i in range(2)
    ]
    mine = f"worker_id LIKE '%:{victim.process.pid}:%'"
    held = f"SELECT id FROM jobs WHERE status = 'running' AND {mine}"
    while len(orphans := [r[0] for r in rows(url, held)]) < len(ids):
        time.sleep(0.05)
    rescuer.start()
    rescuer.wait_ready()
    victim.stop(signal.SIGKILL)
    killed = time.monotonic()
    taken: dict[str, float] = {}
    in_list = ", ".join(f"'{i}'" for i in orphans)
    moved = (
        f"SELECT id FROM jobs WHERE id IN ({in_list}) AND (status = 'succeeded' OR "
        f"(status = 'running' AND NOT {mine}))"
    )
    while len(taken) < len(orphans):
        for (job_id,) in rows(url, moved):
            taken.setdefault(job_id, time.monotonic() - killed)
        time.sleep(0.05)
    done = "SELECT count(*) FROM jobs WHERE status = 'succeeded'"
    while rows(url, done)[0][0] < len(ids):
        time.sleep(0.2)
    return {"jobs": len(ids), "seconds": taken}


def latencies(direct: str, forwarded: str, requests: int) -> tuple[list[float], list[float]]:
    """Seconds per request straight to the worker and through the API, alternating one of each
    (so both see the same load on the machine)."""
    body = {"text": TEXT, "voice": "nobody", "model": "tiny"}
    times: dict[str, list[float]] = {direct: [], forwarded: []}
    with httpx.Client() as client:
        for _ in range(requests):
            for target, spent in times.items():
                started = time.perf_counter()
                r = client.post(f"{target}/v1/tts", json=body)
                spent.append(time.perf_counter() - started)
                assert r.status_code == 404, r.text
    return times[direct], times[forwarded]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_lease = Settings.model_fields["job_lease_seconds"].default
    parser.add_argument("--lease", type=float, default=default_lease)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    url, drop = make_database()
    root = Path(tempfile.mkdtemp(prefix="f5serve-scale-"))
    (root / "models.toml").write_text(MODELS_TOML)
    (root / "sample").mkdir()
    shutil.copy(FIXTURES / "basic_ref_en.wav", root / "sample" / "narrator.wav")
    (root / "sample" / "narrator.txt").write_text(
        "Some call me nature, others call me mother nature."
    )
    fields = {
        "database_url": url,
        "storage_url": root / "storage",
        "models_file": root / "models.toml",
        "voices_dir": root / "sample",
        "device": "cpu",
        "job_lease_seconds": args.lease,
    }
    worker_args = ["worker", "--models", "tiny", "--concurrency", "2"]
    victim, rescuer = Process(root, worker_args, fields), Process(root, worker_args, fields)
    api = Process(root, ["serve", "--no-worker", "--no-preload"], fields)
    processes = [victim, rescuer, api]
    try:
        for process in (victim, api):
            process.start().wait_ready()
        direct, forwarded = latencies(victim.url, api.url, args.requests)
        recovered = recovery(api, victim, rescuer, url)
    finally:
        for process in processes:
            process.stop()
        drop()
        shutil.rmtree(root, ignore_errors=True)
    p50_direct, p50_forwarded = statistics.median(direct), statistics.median(forwarded)
    result = {
        "machine": machine(),
        "lease_seconds": args.lease,
        "recovery": recovered,
        "forwarding": {
            "requests": args.requests,
            "direct_p50_ms": round(p50_direct * 1000, 2),
            "forwarded_p50_ms": round(p50_forwarded * 1000, 2),
            "added_p50_ms": round((p50_forwarded - p50_direct) * 1000, 2),
            "added_pairwise_p50_ms": round(
                statistics.median(f - d for f, d in zip(forwarded, direct, strict=True)) * 1000, 2
            ),
            "direct_p90_ms": round(statistics.quantiles(direct, n=10)[-1] * 1000, 2),
            "forwarded_p90_ms": round(statistics.quantiles(forwarded, n=10)[-1] * 1000, 2),
        },
    }
    worst = max(recovered["seconds"].values())
    print(
        f"recovery: {len(recovered['seconds'])} job(s) of the killed worker running elsewhere "
        f"after {min(recovered['seconds'].values()):.1f}–{worst:.1f} s (lease {args.lease:g} s)"
    )
    print(
        f"forwarding: p50 {result['forwarding']['direct_p50_ms']} ms direct, "
        f"{result['forwarding']['forwarded_p50_ms']} ms through the API "
        f"(+{result['forwarding']['added_p50_ms']} ms)"
    )
    write_json(ROOT / "bench" / "results" / "scale_out.json", result)


if __name__ == "__main__":
    main()
