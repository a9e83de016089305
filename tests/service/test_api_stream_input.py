"""WS /v1/tts/stream-input: text in pieces, each finished sentence spoken as soon as it is
complete, with its segments; flush and end; the same keys and limits as the HTTP API."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers import assert_speech, make_settings
from starlette.testclient import WebSocketTestSession

from f5serve.http.app import create_app

SETUP = {"voice": "narrator", "seed": 3, "nfe_steps": 2}
PATH = "/v1/tts/stream-input"


def events_until_done(ws: WebSocketTestSession) -> list[dict[str, Any]]:
    events = [ws.receive_json()]
    while events[-1]["type"] not in ("speech.audio.done", "error"):
        events.append(ws.receive_json())
    return events


def audio_of(events: list[dict[str, Any]]) -> bytes:
    return b"".join(base64.b64decode(e["audio"]) for e in events if e["type"].endswith("delta"))


def test_each_finished_sentence_is_spoken_before_the_text_ends(client: TestClient) -> None:
    with client.websocket_connect(PATH) as ws:
        ws.send_json(SETUP)
        for piece in ("The first sen", "tence is done. The sec", "ond one is not"):
            ws.send_json({"text": piece})
        first = ws.receive_json()  # arrives while the text is still open
        assert first == {**first, "type": "speech.segment", "index": 0, "start": 0.0}
        assert first["text"] == "The first sentence is done."
        ws.send_json({"text": " yet, but now it is."})
        ws.send_json({"text": ""})
        events = [first, *events_until_done(ws)]
    segments = [e for e in events if e["type"] == "speech.segment"]
    assert [s["text"] for s in segments] == [
        "The first sentence is done.",
        "The second one is not yet, but now it is.",
    ]
    assert segments[1]["start"] == pytest.approx(segments[0]["end"], abs=1e-3)  # one timeline
    seconds = assert_speech(audio_of(events), "pcm")
    assert seconds == pytest.approx(segments[-1]["end"], abs=2e-3)
    assert events[-1]["type"] == "speech.audio.done"


def test_the_audio_equals_each_sentence_sent_to_v1_tts(client: TestClient) -> None:
    with client.websocket_connect(PATH) as ws:
        ws.send_json({**SETUP, "response_format": "pcm"})
        ws.send_json({"text": "One sentence here. Another sentence there.", "flush": True})
        ws.send_json({"text": ""})
        streamed = audio_of(events_until_done(ws))
    sent = [
        client.post(
            "/v1/tts", json={**SETUP, "text": text, "seed": 3 + i, "response_format": "pcm"}
        )
        for i, text in enumerate(["One sentence here.", "Another sentence there."])
    ]
    assert streamed == b"".join(r.content for r in sent)


def test_flush_speaks_text_without_a_sentence_end(client: TestClient) -> None:
    with client.websocket_connect(PATH) as ws:
        ws.send_json({**SETUP, "response_format": "wav"})
        ws.send_json({"text": "no full stop yet", "flush": True})
        assert ws.receive_json()["text"] == "no full stop yet"
        ws.send_json({"text": ""})
        events = events_until_done(ws)
    assert_speech(audio_of(events), "wav")


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ({**SETUP, "voice": "nobody"}, "not_found"),
        ({**SETUP, "response_format": "flac"}, "invalid_input"),
        ({**SETUP, "nfe_steps": 0}, "invalid_input"),
        ({**SETUP, "remove_silence": True}, "invalid_input"),
    ],
)
def test_problems_are_an_error_event(client: TestClient, setup: dict[str, Any], code: str) -> None:
    with client.websocket_connect(PATH) as ws:
        ws.send_json(setup)
        ws.send_json({"text": "Hello there."})
        ws.send_json({"text": ""})
        events = events_until_done(ws)
    assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == code


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root: Path = tmp_path_factory.mktemp("keys")
    with TestClient(create_app(make_settings(root, api_keys="key-1"))) as test_client:
        yield test_client


def test_the_api_key_is_required_when_configured(strict: TestClient) -> None:
    with strict.websocket_connect(PATH) as ws:
        ws.send_json(SETUP)
        assert ws.receive_json()["error"]["code"] == "unauthorized"
    for url, headers in ((f"{PATH}?api_key=key-1", {}), (PATH, {"Authorization": "Bearer key-1"})):
        with strict.websocket_connect(url, headers=headers) as ws:
            ws.send_json(SETUP)
            ws.send_json({"text": "Hi."})
            ws.send_json({"text": ""})
            assert events_until_done(ws)[-1]["type"] == "speech.audio.done"
