"""Streamed speech (/v1/tts with stream, SSE): the bytes decode to the audio of the same request
sent whole, chunk by chunk with each chunk's text and times."""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers import assert_speech

from audio_match import assert_same_audio
from f5serve.engine.audio import FORMATS

# Long enough for several chunks with the narrator's clip.
TEXT = (
    "The quick brown fox jumps over the lazy dog near the quiet river bank. "
    "A second sentence follows the first one, so that the text needs another chunk. "
    "And a third sentence closes the paragraph with a few more words to speak."
)
BODY = {"text": TEXT, "voice": "narrator", "seed": 11}


def sse_events(client: TestClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    with client.stream("POST", "/v1/tts", json=body) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        return [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus", "aac", "pcm"])
def test_a_streamed_response_decodes_to_the_whole_response(client: TestClient, fmt: str) -> None:
    whole = client.post("/v1/tts", json={**BODY, "response_format": fmt})
    streamed = client.post("/v1/tts", json={**BODY, "response_format": fmt, "stream": True})
    assert streamed.status_code == 200, streamed.text
    assert streamed.headers["content-type"] == FORMATS[fmt].content_type
    if fmt == "pcm":
        assert streamed.content == whole.content
    else:
        assert_same_audio(streamed.content, whole.content, fmt)
    assert_speech(streamed.content, fmt)


def test_formats_that_cannot_stream_are_sent_whole(client: TestClient) -> None:
    whole = client.post("/v1/tts", json={**BODY, "response_format": "flac"})
    streamed = client.post("/v1/tts", json={**BODY, "response_format": "flac", "stream": True})
    assert streamed.status_code == 200 and streamed.content == whole.content


@pytest.mark.parametrize("fmt", ["mp3", "flac"])
def test_sse_sends_each_chunk_with_its_text_and_times(client: TestClient, fmt: str) -> None:
    events = sse_events(client, {**BODY, "response_format": fmt, "stream_format": "sse"})
    assert events[-1]["type"] == "speech.audio.done"
    segments = [e for e in events if e["type"] == "speech.segment"]
    assert len(segments) >= 2 and [s["index"] for s in segments] == list(range(len(segments)))
    assert " ".join(s["text"].strip() for s in segments).split() == TEXT.split()
    assert segments[0]["start"] == 0
    for before, after in itertools.pairwise(segments):
        assert before["start"] < after["start"] < before["end"] < after["end"]  # cross-faded
    if fmt == "mp3":  # a streamable format: a chunk's audio follows its segment at once
        assert events[1]["type"] == "speech.audio.delta"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events if "audio" in e)
    whole = client.post("/v1/tts", json={**BODY, "response_format": fmt})
    assert_same_audio(audio, whole.content, fmt)
    seconds = assert_speech(audio, fmt)
    assert segments[-1]["end"] == pytest.approx(seconds, abs=0.1)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"response_format": "json"}, "give an audio response_format"),
        ({"remove_silence": True}, "remove_silence needs the whole audio"),
    ],
)
def test_what_cannot_stream_is_refused(
    client: TestClient, extra: dict[str, Any], message: str
) -> None:
    r = client.post("/v1/tts", json={**BODY, "stream": True, **extra})
    assert r.status_code == 422 and message in r.json()["error"]["message"]


def test_errors_before_the_first_chunk_are_json(client: TestClient) -> None:
    r = client.post("/v1/tts", json={**BODY, "voice": "nobody", "stream_format": "sse"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
