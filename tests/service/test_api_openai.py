"""POST /v1/audio/speech as OpenAI defines it (in-process; the real client is in
tests/integration/test_server.py)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers import assert_speech

BODY = {"model": "tts-1", "input": "Hello from the OpenAI endpoint.", "voice": "narrator"}


def test_default_format_is_mp3(client: TestClient) -> None:
    r = client.post("/v1/audio/speech", json=BODY)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
    assert_speech(r.content, "mp3")


@pytest.mark.parametrize("fmt", ["opus", "aac", "flac", "wav", "pcm"])
def test_every_openai_response_format(client: TestClient, fmt: str) -> None:
    r = client.post("/v1/audio/speech", json={**BODY, "response_format": fmt, "speed": 1.5})
    assert r.status_code == 200, r.text
    assert_speech(r.content, fmt)


def test_our_model_names_work_too(client: TestClient) -> None:
    r = client.post("/v1/audio/speech", json={**BODY, "model": "tiny", "response_format": "wav"})
    assert r.status_code == 200


def test_sse_stream_sends_base64_deltas_then_done(client: TestClient) -> None:
    for fmt in ("pcm", "wav"):
        body = {**BODY, "stream_format": "sse", "response_format": fmt}
        with client.stream("POST", "/v1/audio/speech", json=body) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
        assert [e["type"] for e in events][-1] == "speech.audio.done"
        deltas = [e for e in events if e["type"] == "speech.audio.delta"]
        assert deltas and all(e["audio"] for e in deltas)
        assert_speech(b"".join(base64.b64decode(e["audio"]) for e in deltas), fmt)


def test_pcm_is_raw_s16le_without_a_header(client: TestClient) -> None:
    r = client.post("/v1/audio/speech", json={**BODY, "response_format": "pcm"})
    assert r.headers["content-type"] == "audio/pcm"
    assert len(r.content) % 2 == 0 and not r.content.startswith(b"RIFF")
    samples = np.frombuffer(r.content, dtype="<i2")
    assert 0.5 < len(samples) / 24000 < 30 and np.abs(samples).max() > 100


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**BODY, "voice": "alloy"}, 404),
        ({**BODY, "speed": 5}, 422),
        ({**BODY, "speed": 0.1}, 422),
        ({**BODY, "response_format": "ogg-vorbis"}, 422),
        ({**BODY, "input": "z" * 4097}, 413),
        ({"model": "tts-1", "voice": "narrator"}, 422),
    ],
)
def test_openai_errors(client: TestClient, body: dict[str, object], status: int) -> None:
    r = client.post("/v1/audio/speech", json=body)
    assert r.status_code == status and r.json()["error"]["message"]


def test_sse_errors_before_the_stream_are_plain_json(client: TestClient) -> None:
    r = client.post("/v1/audio/speech", json={**BODY, "voice": "alloy", "stream_format": "sse"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_sse_of_the_openai_route_has_only_openais_events(client: TestClient) -> None:
    body = {**BODY, "input": " ".join([BODY["input"]] * 6), "stream_format": "sse"}
    with client.stream("POST", "/v1/audio/speech", json=body) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert {e["type"] for e in events} == {"speech.audio.delta", "speech.audio.done"}
    assert len(events) > 2  # mp3 streams: a delta per chunk, and the encoder's last bytes
