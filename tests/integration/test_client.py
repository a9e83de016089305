"""``f5serve.client`` (sync and async) against a real ``f5serve serve`` on loopback."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
from helpers import REF_TEXT, REF_WAV, assert_speech
from server_process import Server

from audio_match import assert_same_audio
from f5serve.client import (
    AsyncClient,
    Client,
    InvalidRequestError,
    Job,
    JobFailedError,
    NotFoundError,
    PayloadTooLargeError,
    Segment,
)

pytestmark = pytest.mark.slow
TEXT = (
    "The client speaks to a real server over a socket. "
    "A second sentence makes sure that the text is cut into more than one chunk. "
    "And a third one closes the paragraph with a few more words."
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("client"), max_text_chars=500).start()
    yield srv
    srv.kill(signal.SIGTERM)


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url) as c:
        yield c


def test_importing_the_client_does_not_load_the_engine() -> None:
    code = "import sys, f5serve.client; print(sorted({'torch', 'fastapi'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_health_models_and_voices(client: Client) -> None:
    assert client.health() == {"status": "ok"} and client.ready()["status"] == "ready"
    model = {m.id: m for m in client.models()}["tiny"]
    assert model.id == "tiny" and model.loaded and model.device == "cpu"
    voice = client.upload_voice("guest", REF_WAV, REF_TEXT, language="en")
    assert voice.name == "guest" and voice.source == "upload" and voice.duration > 1
    assert {v.name for v in client.list_voices()} >= {"guest", "narrator"}
    assert client.get_voice("guest") == voice
    renamed = client.update_voice(voice.id, name="visitor", ref_text="Some call me nature.")
    assert renamed.name == "visitor" and renamed.ref_text == "Some call me nature."
    assert_speech(client.voice_audio("visitor"))
    client.delete_voice(voice.id)
    with pytest.raises(NotFoundError) as caught:
        client.get_voice(voice.id)
    assert caught.value.status == 404 and caught.value.code == "not_found"


def test_speech_whole_streamed_and_with_segments(client: Client) -> None:
    whole = client.speech(TEXT, voice="narrator", response_format="pcm", seed=4, nfe_steps=4)
    pieces = list(client.stream_speech(TEXT, voice="narrator", seed=4, nfe_steps=4))
    assert b"".join(pieces) == whole
    events = list(
        client.stream_segments(TEXT, voice="narrator", response_format="mp3", seed=4, nfe_steps=4)
    )
    segments = [e for e in events if isinstance(e, Segment)]
    assert len(segments) >= 2 and segments[0].start == 0
    mp3 = b"".join(e for e in events if isinstance(e, bytes))
    assert_same_audio(
        mp3,
        client.speech(TEXT, voice="narrator", response_format="mp3", seed=4, nfe_steps=4),
        "mp3",
    )
    info = client.speech_info(TEXT, voice="narrator", audio_format="flac", seed=4, nfe_steps=4)
    assert info.seed == 4 and info.model == "tiny" and info.voice == "narrator"
    assert info.content_type == "audio/flac" and assert_speech(info.audio, "flac") > 1


def test_openai_speech(client: Client) -> None:
    assert_speech(client.openai_speech("Hello there.", "narrator"), "mp3")
    streamed = b"".join(
        client.stream_openai_speech("Hello there.", "narrator", response_format="wav")
    )
    assert_speech(streamed, "wav")


def test_errors_carry_the_envelope(client: Client) -> None:
    with pytest.raises(PayloadTooLargeError) as too_long:
        client.speech("x" * 501, voice="narrator")
    assert too_long.value.status == 413 and too_long.value.details["max_chars"] == 500
    with pytest.raises(InvalidRequestError) as invalid:
        client.speech(TEXT, voice="narrator", nfe_steps=0)
    assert invalid.value.code == "invalid_input" and "nfe_steps" in invalid.value.message
    with pytest.raises(NotFoundError):
        list(client.stream_speech(TEXT, voice="nobody"))


def test_a_job_from_submit_to_download(client: Client) -> None:
    job = client.submit_job(TEXT, voice="narrator", seed=2, nfe_steps=4, job_id="client-1")
    assert job.job_id == "client-1" and job.status in ("queued", "running", "succeeded")
    seen: list[Job] = []
    done = client.wait_for_job("client-1", progress=seen.append, poll_interval=0.05, timeout=120)
    assert done.status == "succeeded" and seen[-1] == done and done.progress.fraction == 1
    assert done.result is not None and done.result["seed"] == 2
    assert_speech(client.download_job("client-1", "opus"), "opus")
    listed = client.list_jobs(status="succeeded")
    assert "client-1" in [j.job_id for j in listed.jobs] and listed.total >= 1
    long = client.submit_job(" ".join([TEXT] * 20), voice="narrator", nfe_steps=32)
    assert client.cancel_job(long.job_id).status == "cancelled"
    with pytest.raises(JobFailedError) as failed:
        client.wait_for_job(long.job_id, poll_interval=0.05, timeout=60)
    assert failed.value.job.status == "cancelled"


def test_the_async_client(server: Server) -> None:
    async def main() -> None:
        async with AsyncClient(server.url) as client:
            whole = await client.speech(TEXT, voice="narrator", response_format="pcm", seed=8)
            streamed = [p async for p in client.stream_speech(TEXT, voice="narrator", seed=8)]
            assert b"".join(streamed) == whole
            events = [e async for e in client.stream_segments(TEXT, voice="narrator", seed=8)]
            assert b"".join(e for e in events if isinstance(e, bytes)) == whole
            job = await client.submit_job("A short job.", voice="narrator")
            done = await client.wait_for_job(job.job_id, poll_interval=0.05, timeout=120)
            assert_speech(await client.download_job(done.job_id, "mp3"), "mp3")
            assert "tiny" in [m.id for m in await client.models()]
            with pytest.raises(NotFoundError):
                await client.get_job("nope")

    asyncio.run(main())
