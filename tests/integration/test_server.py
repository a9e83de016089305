"""A real ``f5serve serve`` on loopback: the official openai client, concurrent requests, and
durability across ``kill -9``."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
from helpers import assert_speech
from server_process import Server

from f5serve.client import Client

pytestmark = pytest.mark.slow
TEXT = "The server answers over a real socket."


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
    client = Client(server.url)
    text = " ".join([TEXT] * 3)
    ids = [client.submit_job(text, voice="narrator", nfe_steps=16, seed=i).job_id for i in range(5)]
    deadline = time.monotonic() + 30
    while client.get_job(ids[0]).status == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    before = {i: client.get_job(i).status for i in ids}
    server.kill()  # SIGKILL: no shutdown code runs
    assert "queued" in before.values(), before
    restarted = Server.__new__(Server)
    restarted.__dict__.update(server.__dict__)
    restarted.start()
    try:
        for job_id in ids:  # a failed or cancelled job raises JobFailedError
            job = client.wait_for_job(job_id, poll_interval=0.2, timeout=120)
            assert job.attempts == (2 if before[job_id] == "running" else 1), job
            assert_speech(client.download_job(job_id, "mp3"), "mp3")
    finally:
        client.close()
        restarted.kill(signal.SIGTERM)
