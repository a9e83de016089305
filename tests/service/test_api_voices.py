"""The voice library: uploads in several formats (identified by content), CRUD, the voices
directory, and corrupt files."""

from __future__ import annotations

import sys

import pytest
from fastapi.testclient import TestClient
from helpers import REF_TEXT, REF_WAV, assert_speech, decode

from f5serve.core import listing
from f5serve.core.services import Services
from f5serve.engine.audio import encode_audio, load_audio

REF_AUDIO, REF_SR = load_audio(REF_WAV)


def upload(client: TestClient, name: str, data: bytes, filename: str = "clip.bin") -> object:
    return client.post(
        "/v1/voices",
        data={"name": name, "ref_text": REF_TEXT, "language": "en"},
        files={"audio": (filename, data, "application/octet-stream")},
    )


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg"])
def test_upload_in_any_format_is_cleaned_resampled_and_usable(client: TestClient, fmt: str) -> None:
    data = encode_audio(REF_AUDIO, REF_SR, fmt)
    r = upload(client, f"voice-{fmt}", data, filename="no-extension")
    assert r.status_code == 201, r.text  # type: ignore[attr-defined]
    voice = r.json()  # type: ignore[attr-defined]
    assert voice["source"] == "upload" and voice["language"] == "en"
    assert 3.0 < voice["duration"] < 12.5
    clip = client.get(f"/v1/voices/{voice['id']}/audio")
    assert clip.headers["content-type"] == "audio/wav"
    audio, sr = decode(clip.content)
    assert sr == 24000 and len(audio) / sr == pytest.approx(voice["duration"], abs=0.01)
    speech = client.post("/v1/tts", json={"text": "Testing my new voice.", "voice": voice["id"]})
    assert speech.status_code == 200
    assert_speech(speech.content)


def test_voice_crud(client: TestClient) -> None:
    created = upload(client, "crud", REF_WAV.read_bytes()).json()  # type: ignore[attr-defined]
    assert client.get(f"/v1/voices/{created['id']}").json()["name"] == "crud"
    assert client.get("/v1/voices/crud").json()["id"] == created["id"]  # by name too
    assert "crud" in [v["name"] for v in client.get("/v1/voices").json()["voices"]]
    patched = client.patch(
        f"/v1/voices/{created['id']}", json={"name": "crud-2", "ref_text": "New words."}
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "crud-2" and patched.json()["ref_text"] == "New words."
    assert client.delete(f"/v1/voices/{created['id']}").status_code == 204
    assert client.get(f"/v1/voices/{created['id']}").status_code == 404
    assert client.get(f"/v1/voices/{created['id']}/audio").status_code == 404


def test_the_core_voice_list_is_what_the_api_lists(client: TestClient) -> None:
    """One list for every door: HTTP shows it as /v1/voices; a directory voice also has the
    ref_name a request may use (RunPod lists it), an upload none."""
    upload(client, "listed", REF_WAV.read_bytes())
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    voices = {v.name: v for v in listing.voices(services.voices)}
    api = {v["name"]: v for v in client.get("/v1/voices").json()["voices"]}
    assert set(voices) == set(api)
    assert voices["listed"].ref_name is None and voices["listed"].id == api["listed"]["id"]
    assert voices["narrator"].ref_name == "sample/narrator.wav"
    assert voices["narrator"].duration == api["narrator"]["duration"]


def test_duplicate_names_conflict(client: TestClient) -> None:
    assert upload(client, "twin", REF_WAV.read_bytes()).status_code == 201  # type: ignore[attr-defined]
    again = upload(client, "twin", REF_WAV.read_bytes())
    assert again.status_code == 409  # type: ignore[attr-defined]
    other = upload(client, "twin-b", REF_WAV.read_bytes()).json()  # type: ignore[attr-defined]
    rename = client.patch(f"/v1/voices/{other['id']}", json={"name": "twin"})
    assert rename.status_code == 409


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"this is plain text, not audio at all" * 10, 415, "unsupported_media_type"),
        (REF_WAV.read_bytes()[:44], 422, "invalid_audio"),  # a header without samples
        (encode_audio(REF_AUDIO[:2400], REF_SR, "wav"), 422, "invalid_audio"),  # 0.1 s
        (encode_audio(REF_AUDIO * 0, REF_SR, "flac"), 422, "invalid_audio"),  # silent
        (b"", 422, "invalid_input"),
    ],
)
def test_corrupt_short_or_silent_uploads_are_refused(
    client: TestClient, data: bytes, status: int, code: str
) -> None:
    r = upload(client, "bad", data)
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    assert r.json()["error"]["code"] == code  # type: ignore[attr-defined]


def test_invalid_names_and_missing_transcripts_are_refused(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_name = upload(client, "../evil", REF_WAV.read_bytes())
    assert bad_name.status_code == 422  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "transformers", None)  # without f5serve[asr]
    no_text = client.post(
        "/v1/voices", data={"name": "x"}, files={"audio": ("a", REF_WAV.read_bytes())}
    )
    assert no_text.status_code == 422
    assert no_text.json()["error"]["message"].startswith("ref_text (the transcript of the clip)")


def test_a_name_with_a_trailing_newline_is_refused(client: TestClient) -> None:
    """The name pattern covers the whole name: ``$`` would let a final newline through."""
    created = upload(client, "newline\n", REF_WAV.read_bytes())
    assert created.status_code == 422, created.text  # type: ignore[attr-defined]
    voice = upload(client, "plain", REF_WAV.read_bytes()).json()  # type: ignore[attr-defined]
    renamed = client.patch(f"/v1/voices/{voice['id']}", json={"name": "plain\n"})
    assert renamed.status_code == 422, renamed.text
    assert renamed.json()["error"]["code"] == "invalid_input"


def test_voices_directory_is_imported_and_named_by_file(client: TestClient) -> None:
    narrator = client.get("/v1/voices/narrator").json()
    assert narrator["source"] == "directory" and narrator["ref_text"] == REF_TEXT
    for ref_name in ("sample/narrator.wav", "narrator.wav", "narrator"):
        r = client.post("/v1/tts", json={"text": "By file name.", "ref_name": ref_name})
        assert r.status_code == 200, (ref_name, r.text)
