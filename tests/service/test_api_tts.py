"""POST /v1/tts and /v1/tts/upload: every format decodes to speech; every error is an envelope."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient
from helpers import REF_TEXT, REF_WAV, assert_speech

from f5serve.engine.audio import FORMATS

TEXT = "The quick brown fox jumps over the lazy dog."
VOICE = {"ref_name": "sample/narrator.wav"}


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "opus", "ogg", "aac", "m4a", "pcm"])
def test_each_response_format_decodes_to_24khz_speech(client: TestClient, fmt: str) -> None:
    r = client.post("/v1/tts", json={"text": TEXT, **VOICE, "response_format": fmt, "seed": 1})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == FORMATS[fmt].content_type
    assert_speech(r.content, fmt)


def test_json_response_carries_base64_audio_and_metadata(client: TestClient) -> None:
    r = client.post(
        "/v1/tts", json={"text": TEXT, "voice": "narrator", "response_format": "json", "seed": 7}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    seconds = assert_speech(base64.b64decode(body["audio_base64"]))
    assert body["content_type"] == "audio/wav" and body["sample_rate"] == 24000
    assert body["duration"] == pytest.approx(seconds, abs=1e-3)
    assert body["model"] == "tiny" and body["voice"] == "narrator" and body["seed"] == 7
    assert body["processing_time_seconds"] > 0 and body["job_id"]


def test_same_seed_gives_the_same_audio(client: TestClient) -> None:
    body = {"text": TEXT, **VOICE, "seed": 3, "response_format": "pcm"}
    assert client.post("/v1/tts", json=body).content == client.post("/v1/tts", json=body).content


def test_inline_base64_reference_with_transcript(client: TestClient) -> None:
    ref = base64.b64encode(REF_WAV.read_bytes()).decode()
    r = client.post("/v1/tts", json={"text": TEXT, "ref_audio": ref, "ref_text": REF_TEXT})
    assert r.status_code == 200, r.text
    assert_speech(r.content)


def test_multipart_upload_variant(client: TestClient) -> None:
    r = client.post(
        "/v1/tts/upload",
        data={"text": TEXT, "ref_text": REF_TEXT, "response_format": "flac", "speed": "1.2"},
        files={"ref_audio": ("whatever.bin", REF_WAV.read_bytes(), "application/octet-stream")},
    )
    assert r.status_code == 200, r.text
    assert_speech(r.content, "flac")


def test_multipart_upload_takes_every_option_of_the_json_request(client: TestClient) -> None:
    options = {"speed": 1.1, "nfe_steps": 3, "cfg_strength": 1.5, "sway_sampling_coef": -0.5}
    options |= {"cross_fade": 0.05, "seed": 7, "response_format": "json", "audio_format": "flac"}
    upload = client.post(
        "/v1/tts/upload",
        data={"text": TEXT, "ref_text": REF_TEXT, **{k: str(v) for k, v in options.items()}},
        files={"ref_audio": ("ref.wav", REF_WAV.read_bytes(), "audio/wav")},
    )
    ref_audio = base64.b64encode(REF_WAV.read_bytes()).decode()
    body = {"text": TEXT, "ref_text": REF_TEXT, "ref_audio": ref_audio, **options}
    as_json = client.post("/v1/tts", json=body)
    assert upload.status_code == 200 and as_json.status_code == 200, upload.text
    a, b = upload.json(), as_json.json()
    assert a["content_type"] == "audio/flac" and a["seed"] == 7
    assert a["audio_base64"] == b["audio_base64"]  # the same options give the same audio
    plain = client.post("/v1/tts", json={**body, "cfg_strength": 2.0})
    assert plain.json()["audio_base64"] != a["audio_base64"]  # and the options were applied


def test_remove_silence_keeps_speech(client: TestClient) -> None:
    r = client.post("/v1/tts", json={"text": TEXT, **VOICE, "remove_silence": True})
    assert r.status_code == 200
    assert_speech(r.content)


@pytest.mark.parametrize(
    "ref_name", ["../models.toml", "sample/../models.toml", "/etc/passwd", "sample/a/b.wav", ".."]
)
def test_ref_name_never_escapes_the_voices_directory(client: TestClient, ref_name: str) -> None:
    r = client.post("/v1/tts", json={"text": TEXT, "ref_name": ref_name})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_input"


def _error(r: object) -> tuple[int, str]:
    status = r.status_code  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and body["error"]["message"]
    assert "Traceback" not in str(body)
    return status, body["error"]["code"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"text": TEXT, "voice": "nobody"}, (404, "not_found")),
        ({"text": TEXT, "ref_name": "sample/ghost.wav"}, (404, "not_found")),
        ({"text": TEXT, **VOICE, "model": "no-such-model"}, (404, "not_found")),
        ({"text": TEXT, **VOICE, "language": "sw"}, (422, "unsupported_language")),
        ({"text": TEXT}, (422, "invalid_input")),
        ({"text": "   ", **VOICE}, (422, "invalid_input")),
        ({"text": TEXT, **VOICE, "speed": 9}, (422, "invalid_input")),
        ({"text": TEXT, **VOICE, "response_format": "midi"}, (422, "invalid_input")),
        ({"text": TEXT, **VOICE, "unknown_field": 1}, (422, "invalid_input")),
        ({"text": TEXT, "voice": "narrator", **VOICE}, (422, "invalid_input")),
        ({"text": "x" * 4097, **VOICE}, (413, "payload_too_large")),
        (
            {"text": TEXT, "ref_audio": "bm90IGF1ZGlv", "ref_text": "hi"},
            (415, "unsupported_media_type"),
        ),
        ({"text": TEXT, "ref_audio": "!!!", "ref_text": "hi"}, (422, "invalid_input")),
        (  # no ref_text: to be transcribed, but this deployment's asr_model does not exist
            {"text": TEXT, "ref_audio": base64.b64encode(REF_WAV.read_bytes()).decode()},
            (503, "model_unavailable"),
        ),
    ],
)
def test_bad_requests_get_the_error_envelope(
    client: TestClient, body: dict[str, object], expected: tuple[int, str]
) -> None:
    assert _error(client.post("/v1/tts", json=body)) == expected


def test_malformed_json_is_a_400(client: TestClient) -> None:
    r = client.post("/v1/tts", content=b'{"text": ', headers={"content-type": "application/json"})
    assert _error(r) == (400, "bad_request")


def test_unknown_route_and_wrong_method_use_the_envelope(client: TestClient) -> None:
    assert _error(client.get("/v1/nothing-here")) == (404, "not_found")
    assert _error(client.get("/v1/tts")) == (405, "method_not_allowed")


def test_null_sway_means_a_uniform_time_grid(client: TestClient) -> None:
    base = {"text": TEXT, **VOICE, "seed": 2, "response_format": "pcm"}
    uniform = client.post("/v1/tts", json={**base, "sway_sampling_coef": None})
    swayed = client.post("/v1/tts", json={**base, "sway_sampling_coef": -1.0})
    assert uniform.status_code == swayed.status_code == 200
    assert uniform.content != swayed.content
