"""The words through the API: normalisation, pronunciations (request, voice, server),
multi-speaker scripts, chunk timestamps and job subtitles."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest
import srt
import webvtt
from fastapi.testclient import TestClient
from helpers import REF_TEXT, REF_WAV, make_settings

from f5serve.http.app import create_app

VOICE = {"voice": "narrator", "response_format": "json", "seed": 2}
LONG = "The quick brown fox jumps over the lazy dog near the quiet river bank. " * 4


def speak(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/tts", json={**VOICE, **body})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def texts(body: dict[str, Any]) -> list[str]:
    return [s["text"] for s in body["segments"]]


def wait(client: TestClient, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture(scope="module")
def alice(client: TestClient) -> str:
    r = client.post(
        "/v1/voices",
        data={"name": "alice", "ref_text": REF_TEXT},
        files={"audio": ("alice.wav", REF_WAV.read_bytes(), "audio/wav")},
    )
    assert r.status_code == 201, r.text
    return "alice"


def test_json_answers_carry_segments_of_the_normalised_text(client: TestClient) -> None:
    body = speak(client, text="I have 3 apples.")
    assert texts(body) == ["I have three apples."]
    assert body["segments"][0]["start"] == 0.0
    assert body["segments"][-1]["end"] == pytest.approx(body["duration"], abs=2e-3)
    assert texts(speak(client, text="I have 3 apples.", normalize=False)) == ["I have 3 apples."]


def test_a_long_text_has_one_segment_per_chunk_in_order(client: TestClient) -> None:
    segments = speak(client, text=LONG)["segments"]
    assert len(segments) > 1
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(segments))


def test_request_pronunciations_show_in_the_segments(client: TestClient) -> None:
    body = speak(client, text="nginx is fast.", pronunciations={"nginx": "engine x"})
    assert texts(body) == ["engine x is fast."]
    r = client.post("/v1/tts", json={**VOICE, "text": "Hi.", "pronunciations": {"/(/": "x"}})
    assert r.status_code == 422 and "not a valid pattern" in r.json()["error"]["message"]


def test_voice_pronunciations_are_stored_used_and_overridden(
    client: TestClient, alice: str
) -> None:
    r = client.patch(f"/v1/voices/{alice}", json={"pronunciations": {"SQL": "sequel"}})
    assert r.status_code == 200 and r.json()["pronunciations"] == {"SQL": "sequel"}
    assert texts(speak(client, voice=alice, text="SQL rocks.")) == ["sequel rocks."]
    overridden = speak(client, voice=alice, text="SQL rocks.", pronunciations={"SQL": "S Q L"})
    assert texts(overridden) == ["S Q L rocks."]
    assert texts(speak(client, text="SQL rocks.")) == ["SQL rocks."]  # other voices: unchanged
    assert client.patch(f"/v1/voices/{alice}", json={"pronunciations": {}}).status_code == 200
    assert texts(speak(client, voice=alice, text="SQL rocks.")) == ["SQL rocks."]


def test_a_voice_uploaded_with_pronunciations(client: TestClient) -> None:
    upload = {"audio": ("bob.wav", REF_WAV.read_bytes(), "audio/wav")}
    form = {"name": "bob", "ref_text": REF_TEXT, "pronunciations": '{"GIF": "jif"}'}
    r = client.post("/v1/voices", data=form, files=upload)
    assert r.status_code == 201, r.text
    assert r.json()["pronunciations"] == {"GIF": "jif"}
    bad = client.post(
        "/v1/voices", data={**form, "name": "bob2", "pronunciations": "[1]"}, files=upload
    )
    assert bad.status_code == 422


def test_a_script_speaks_each_line_in_its_voice(client: TestClient, alice: str) -> None:
    body = speak(client, text="Once upon a time. [alice] I am 7.", script=True, speaker_pause=0.3)
    assert texts(body) == ["Once upon a time.", "I am seven."]
    assert body["voice"] == "narrator, alice"
    first, second = body["segments"]
    assert second["start"] - first["end"] == pytest.approx(0.3, abs=2e-3)


def test_a_script_with_unknown_voices_fails_before_any_work(client: TestClient, alice: str) -> None:
    body = {**VOICE, "text": "[alice] Hi. [zed] Yo. [ann] Hey.", "script": True}
    r = client.post("/v1/tts", json=body)
    assert r.status_code == 404
    assert r.json()["error"]["details"] == {"voices": ["zed", "ann"]}
    job = client.post("/v1/jobs", json={k: v for k, v in body.items() if k != "response_format"})
    assert job.status_code == 404 and "zed" in job.json()["error"]["message"]


def test_a_job_stores_segments_and_offers_subtitles(client: TestClient) -> None:
    r = client.post("/v1/jobs", json={"text": LONG, "voice": "narrator", "seed": 1})
    job_id = r.json()["job_id"]
    done = wait(client, job_id)
    assert done["status"] == "succeeded" and done["links"]["subtitles"]
    segments = done["result"]["segments"]
    assert len(segments) > 1
    subrip = client.get(f"/v1/jobs/{job_id}/subtitles")
    assert subrip.status_code == 200 and subrip.headers["content-type"].startswith(
        "application/x-subrip"
    )
    cues = list(srt.parse(subrip.text))
    assert [c.content for c in cues] == [s["text"] for s in segments]
    assert cues[-1].end.total_seconds() == pytest.approx(segments[-1]["end"], abs=1e-3)
    vtt = client.get(f"/v1/jobs/{job_id}/subtitles", params={"format": "vtt"})
    assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
    captions = webvtt.from_string(vtt.text).captions
    assert [c.text for c in captions] == [s["text"] for s in segments]
    assert client.get(f"/v1/jobs/{job_id}/subtitles", params={"format": "txt"}).status_code == 422


def test_subtitles_of_a_job_that_failed_are_a_conflict(client: TestClient) -> None:
    r = client.post("/v1/jobs", json={"text": "Hi.", "voice": "nobody-here"})
    job_id = r.json()["job_id"]
    assert wait(client, job_id)["status"] == "failed"
    answer = client.get(f"/v1/jobs/{job_id}/subtitles")
    assert answer.status_code == 409 and answer.json()["error"]["code"]


def test_server_wide_pronunciations_come_first(tmp_path: Path) -> None:
    words = tmp_path / "words.json"
    words.write_text(json.dumps({"SQL": "sequel", "GIF": "gif"}))
    settings = make_settings(tmp_path, pronunciations_file=words)
    with TestClient(create_app(settings)) as client:
        body = speak(client, text="SQL GIF.", pronunciations={"GIF": "jif"})
    assert texts(body) == ["sequel jif."]


def test_a_script_job_has_a_cue_per_line(client: TestClient, alice: str) -> None:
    body = {"text": "[narrator] It was late. [alice] Who is there?", "script": True, "seed": 3}
    job_id = client.post("/v1/jobs", json=body).json()["job_id"]
    done = wait(client, job_id)
    assert done["status"] == "succeeded", done
    assert done["result"]["voice"] == "narrator, alice"
    assert done["progress"]["fraction"] == pytest.approx(1.0)
    cues = list(srt.parse(client.get(f"/v1/jobs/{job_id}/subtitles").text))
    assert [c.content for c in cues] == ["It was late.", "Who is there?"]
