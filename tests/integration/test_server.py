"""A real ``f5serve serve`` on loopback: the official openai client, concurrent requests, and
durability across ``kill -9``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
from helpers import assert_speech, make_deployment

pytestmark = pytest.mark.slow
F5SERVE = Path(sys.executable).parent / "f5serve"
TEXT = "The server answers over a real socket."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``f5serve serve`` (or ``f5serve worker``) as a child process, configured by environment
    variables."""

    def __init__(self, root: Path, command: str = "serve", **extra: Any) -> None:
        self.root = root
        self.command = command
        self.port = free_port()
        fields = make_deployment(root) | extra | {"port": self.port, "host": "127.0.0.1"}
        self.env = {**os.environ, **{f"F5SERVE_{k.upper()}": str(v) for k, v in fields.items()}}
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        log = (self.root / "server.log").open("ab")
        self.process = subprocess.Popen(
            [str(F5SERVE), self.command, "--env-file", str(self.root / "none.env")],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.root / "server.log").read_text()
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("server did not become ready")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("server")).start()
    yield srv
    srv.kill(signal.SIGTERM)


def test_the_openai_client_works_unchanged(server: Server) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    speech = client.audio.speech.create(
        model="tts-1", voice="narrator", input=TEXT, response_format="wav"
    )
    assert_speech(speech.content)
    mp3 = client.audio.speech.create(model="tts-1", voice="narrator", input=TEXT)
    assert_speech(mp3.content, "mp3")
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="narrator", input=TEXT, response_format="pcm"
    ) as response:
        assert_speech(b"".join(response.iter_bytes()), "pcm")
    assert "tiny" in [m.id for m in client.models.list().data]


def test_the_openai_client_streams_sse(server: Server) -> None:
    import base64
    import json

    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="narrator", input=TEXT, response_format="pcm", stream_format="sse"
    ) as response:
        events = [json.loads(x[6:]) for x in response.iter_lines() if x.startswith("data: ")]
    assert events[-1]["type"] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert_speech(audio, "pcm")


def test_concurrent_sync_requests_all_succeed(server: Server) -> None:
    def one(i: int) -> bytes:
        body = {"text": f"{TEXT} Number {i}.", "voice": "narrator", "response_format": "flac"}
        r = httpx.post(f"{server.url}/v1/tts", json=body, timeout=120)
        assert r.status_code == 200, r.text
        return r.content

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(6)))
    for data in results:
        assert_speech(data, "flac")


def test_every_accepted_job_completes_after_kill_9(tmp_path: Path) -> None:
    # the restarted server re-runs the job that was running once its lease has expired
    server = Server(tmp_path, job_workers=1, job_lease_seconds=2).start()
    body = {"text": " ".join([TEXT] * 3), "voice": "narrator", "nfe_steps": 16}
    ids = []
    for i in range(5):
        r = httpx.post(f"{server.url}/v1/jobs", json={**body, "seed": i}, timeout=30)
        assert r.status_code == 202
        ids.append(r.json()["job_id"])
    deadline = time.monotonic() + 30
    while httpx.get(f"{server.url}/v1/jobs/{ids[0]}").json()["status"] == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    before = {i: httpx.get(f"{server.url}/v1/jobs/{i}").json()["status"] for i in ids}
    server.kill()  # SIGKILL: no shutdown code runs
    assert "queued" in before.values(), before
    restarted = Server.__new__(Server)
    restarted.__dict__.update(server.__dict__)
    restarted.start()
    try:
        deadline = time.monotonic() + 120
        pending = set(ids)
        while pending and time.monotonic() < deadline:
            for job_id in list(pending):
                job = httpx.get(f"{server.url}/v1/jobs/{job_id}").json()
                assert job["status"] not in ("failed", "cancelled"), job
                if job["status"] == "succeeded":
                    pending.discard(job_id)
            time.sleep(0.2)
        assert not pending, pending
        for job_id in ids:
            job = httpx.get(f"{server.url}/v1/jobs/{job_id}").json()
            assert job["attempts"] == (2 if before[job_id] == "running" else 1), job
            audio = httpx.get(f"{server.url}/v1/jobs/{job_id}/audio", params={"format": "mp3"})
            assert_speech(audio.content, "mp3")
    finally:
        restarted.kill(signal.SIGTERM)
