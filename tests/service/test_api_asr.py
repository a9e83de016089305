"""Speech recognition through the API: voices and requests without ref_text, the warning of a
ref_text that disagrees with its clip, the quality check over /v1/tts and jobs (a fake
recogniser for the logic); the real Whisper backend on a tiny random model the test builds; and
the clear error without the extra."""

from __future__ import annotations

import base64
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers import REF_TEXT, REF_WAV, make_settings

from f5serve.core.services import Services
from f5serve.engine.asr import Transcript
from f5serve.http.app import create_app
from tiny_whisper import build_tiny_whisper

CLIP = REF_WAV.read_bytes()
CLIP_B64 = base64.b64encode(CLIP).decode("ascii")
SPEAK = {"response_format": "json", "nfe_steps": 2, "seed": 11}


class ScriptedRecognizer:
    """Hears, call after call, the texts it was given (the last one again when they run out)."""

    def __init__(self, heard: Iterable[str]) -> None:
        self.heard = list(heard)
        self.calls = 0

    def transcribe(
        self, audio: np.ndarray, sample_rate: int, language: str | None = None
    ) -> Transcript:
        self.calls += 1
        assert audio.ndim == 1 and len(audio) > sample_rate  # a clip of speech, mono
        return Transcript(self.heard[min(self.calls, len(self.heard)) - 1])


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp("whisper"))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, tiny_whisper: Path) -> Iterator[TestClient]:
    """The tiny TTS model, with the tiny Whisper as the speech recogniser and the check of
    given transcripts on; the voices directory has a clip without its transcript."""
    root = tmp_path_factory.mktemp("f5serve-asr")
    settings = make_settings(root, asr_model=str(tiny_whisper), check_ref_text=True)
    shutil.copy(REF_WAV, settings.voices_dir / "untold.wav")  # type: ignore[operator]
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def services_of(client: TestClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return services


@pytest.fixture
def hears(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Replace the recogniser of the app with a scripted one: ``hears([...])``."""

    def install(heard: Iterable[str]) -> ScriptedRecognizer:
        fake = ScriptedRecognizer(heard)
        services = services_of(client)
        monkeypatch.setattr(services.voices, "recognizer", fake)
        monkeypatch.setattr(services.synthesizer, "recognizer", fake)
        return fake

    return install


def upload(client: TestClient, name: str, **fields: str) -> Any:
    return client.post(
        "/v1/voices",
        data={"name": name, **fields},
        files={"audio": ("clip.wav", CLIP, "audio/wav")},
    )


def wait(client: TestClient, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def tries(segment: dict[str, Any]) -> list[tuple[int, float]]:
    return [(a["seed"], a["cer"]) for a in segment["attempts"]]


# --------------------------------------------------------------------------- the logic (fake)


def test_a_voice_without_ref_text_is_transcribed_once_and_kept(
    client: TestClient, hears: Any
) -> None:
    fake = hears(["Some call me nature."])
    created = upload(client, "heard")
    assert created.status_code == 201, created.text
    voice = created.json()
    assert voice["ref_text"] == "Some call me nature." and voice["warnings"] == []
    assert client.get(f"/v1/voices/{voice['id']}").json()["ref_text"] == "Some call me nature."
    for _ in range(2):
        r = client.post("/v1/tts", json={**SPEAK, "text": "Hello.", "voice": "heard"})
        assert r.status_code == 200, r.text
    assert fake.calls == 1  # the transcript is the voice's: never heard again


def test_a_ref_text_that_disagrees_with_the_clip_is_a_warning(
    client: TestClient, hears: Any
) -> None:
    hears([REF_TEXT])
    right = upload(client, "right", ref_text=REF_TEXT)
    assert right.status_code == 201 and right.json()["warnings"] == []
    wrong = upload(client, "wrong", ref_text="The weather is lovely today.")
    assert wrong.status_code == 201, wrong.text  # a warning, not an error
    [warning] = wrong.json()["warnings"]
    assert "disagrees" in warning and REF_TEXT in warning
    fixed = client.patch(f"/v1/voices/{wrong.json()['id']}", json={"ref_text": REF_TEXT})
    assert fixed.status_code == 200 and fixed.json()["warnings"] == []
    renamed = client.patch(f"/v1/voices/{wrong.json()['id']}", json={"name": "wrong-2"})
    assert renamed.json()["warnings"] == []  # the transcript did not change: not checked


def test_a_request_without_ref_text_is_transcribed(client: TestClient, hears: Any) -> None:
    fake = hears([REF_TEXT])
    by_json = client.post("/v1/tts", json={**SPEAK, "text": "Hello.", "ref_audio": CLIP_B64})
    assert by_json.status_code == 200, by_json.text
    by_form = client.post(
        "/v1/tts/upload",
        data={"text": "Hello.", "nfe_steps": "2", "response_format": "json"},
        files={"ref_audio": ("clip.wav", CLIP, "audio/wav")},
    )
    assert by_form.status_code == 200, by_form.text
    job = client.post("/v1/jobs", json={"text": "Hello.", "ref_audio": CLIP_B64, "nfe_steps": 2})
    assert job.status_code == 202, job.text
    assert wait(client, job.json()["job_id"])["status"] == "succeeded"
    assert fake.calls == 3


def test_the_quality_check_tries_the_next_seed_over_http_and_jobs(
    client: TestClient, hears: Any
) -> None:
    body = {"text": "I have 3 apples.", "voice": "narrator", "quality_check": True}
    hears(["I have tree", "I have three apples."])
    r = client.post("/v1/tts", json={**SPEAK, **body, "max_tries": 3})
    assert r.status_code == 200, r.text
    [segment] = r.json()["segments"]
    [(first, bad), (second, good)] = tries(segment)
    assert (first, second) == (11, 12) and bad > 0.2 and good == 0.0
    assert [a["heard"] for a in segment["attempts"]] == ["I have tree", "I have three apples."]

    hears(["nothing like it"])  # never right: at most max_tries
    job = client.post("/v1/jobs", json={**body, "nfe_steps": 2, "seed": 11, "max_tries": 2})
    assert job.status_code == 202, job.text
    done = wait(client, job.json()["job_id"])
    assert done["status"] == "succeeded", done
    [segment] = done["result"]["segments"]
    assert [seed for seed, _ in tries(segment)] == [11, 12]

    plain = client.post("/v1/tts", json={**SPEAK, "text": "Hi.", "voice": "narrator"})
    assert plain.json()["segments"][0]["attempts"] == []  # no check, no tries


def test_the_quality_check_is_reported_in_the_sse_stream(client: TestClient, hears: Any) -> None:
    hears(["x", "I have three apples."])
    body = {"text": "I have 3 apples.", "voice": "narrator", "quality_check": True}
    r = client.post("/v1/tts", json={**body, "nfe_steps": 2, "seed": 11, "stream_format": "sse"})
    assert r.status_code == 200, r.text
    events = [line for line in r.text.splitlines() if '"speech.segment"' in line]
    assert len(events) == 1 and '"attempts": [{"seed": 11' in events[0]
    assert '{"seed": 12, "cer": 0.0, "heard": "I have three apples."}' in events[0]


# --------------------------------------------------------------------------- the real backend


def test_the_tiny_whisper_runs_through_the_doors(client: TestClient) -> None:
    untold = client.get("/v1/voices/untold").json()  # imported at start-up, transcribed
    assert untold["source"] == "directory" and untold["ref_text"].strip()
    created = upload(client, "whispered")
    assert created.status_code == 201, created.text
    assert created.json()["ref_text"].strip()  # random weights: garbage, but heard
    checked = upload(client, "checked", ref_text=REF_TEXT)
    assert checked.status_code == 201, checked.text
    [warning] = checked.json()["warnings"]  # garbage disagrees with any real transcript
    assert "disagrees" in warning
    body = {
        **SPEAK,
        "text": "Hello there.",
        "voice": "narrator",
        "quality_check": True,
        "cer_threshold": 0,
        "max_tries": 2,
    }
    r = client.post("/v1/tts", json=body)
    assert r.status_code == 200, r.text
    [segment] = r.json()["segments"]
    assert [seed for seed, _ in tries(segment)] == [11, 12]
    assert all(isinstance(a["heard"], str) for a in segment["attempts"])


# --------------------------------------------------------------------------- without the extra


def test_without_the_extra_the_clear_errors_stay(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # f5serve[asr] not installed
    # a fresh app: this one's recogniser has not been loaded yet
    settings = make_settings(tmp_path, check_ref_text=True)
    shutil.copy(REF_WAV, settings.voices_dir / "untold.wav")  # type: ignore[operator]
    with TestClient(create_app(settings)) as fresh:
        assert fresh.get("/v1/voices/untold").status_code == 404  # no transcript: not imported
        voice = upload(fresh, "unheard")
        assert voice.status_code == 422, voice.text
        error = voice.json()["error"]
        assert error["code"] == "asr_unavailable"
        assert error["message"].startswith("ref_text (the transcript of the clip) is required")
        assert "pip install 'f5serve[asr]'" in error["message"]
        r = fresh.post("/v1/tts", json={**SPEAK, "text": "Hi.", "ref_audio": CLIP_B64})
        assert r.status_code == 422
        assert r.json()["error"]["message"].startswith(
            "ref_text (the transcript of ref_audio) is required"
        )
        checked = fresh.post(
            "/v1/tts", json={**SPEAK, "text": "Hi.", "voice": "narrator", "quality_check": True}
        )
        assert checked.status_code == 422
        assert checked.json()["error"]["message"].startswith("quality_check needs speech")
        for body in ({"ref_audio": CLIP_B64}, {"voice": "narrator", "quality_check": True}):
            job = fresh.post("/v1/jobs", json={"text": "Hi.", **body})
            assert job.status_code == 422, job.text  # refused at submission, not when run
            assert job.json()["error"]["code"] == "asr_unavailable"
        given = upload(fresh, "given", ref_text=REF_TEXT)
        assert given.status_code == 201 and given.json()["warnings"] == []  # not checked
