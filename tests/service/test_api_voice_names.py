"""Voice names are unique per key: two keys may each have a voice called ``twin``, and every door
that takes a voice name (``/v1/tts``, ``/v1/audio/speech``, jobs, a script's ``[name]``, the
WebSocket, ``/v1/voices/{name}``) gives a key its own voice first, then the shared one of the
voices directory. An admin key resolving a name that several keys use is 409 ``ambiguous_voice``
with their ids. Which voice spoke is told by the audio: the same seed with another clip is other
audio, so each answer is compared with the same request naming the voice by its id (OpenAI's
body has no seed: there the length tells, since the clips are of different lengths)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers import REF_TEXT, REF_WAV, make_settings, wav_bytes

from f5serve.core.services import Services
from f5serve.engine.audio import load_audio
from f5serve.http.app import create_app

ENV_ADMIN = "the-env-admin-key"
TEXT = "Hello there, this is a short test."
PATH = "/v1/tts/stream-input"
SEED = {"seed": 5}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root: Path = tmp_path_factory.mktemp("voice-names")
    with TestClient(create_app(make_settings(root, api_keys=ENV_ADMIN))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def keys(client: TestClient) -> dict[str, tuple[str, dict[str, str]]]:
    """``name: (key id, headers)`` of two tenants and a database admin, and the env admin."""
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    tenancy = services.tenancy
    made = {"env": (tenancy.env_tenants[0].id, bearer(ENV_ADMIN))}
    for name, admin in (("alice", False), ("bob", False), ("boss", True)):
        row, key = tenancy.create(name, admin)
        made[name] = (row.id, bearer(key))
    return made


@pytest.fixture(scope="module")
def other_clip() -> bytes:
    """A clip that is not the narrator's: the first 60 % of it (so other audio)."""
    audio, sr = load_audio(REF_WAV.read_bytes())
    return wav_bytes(audio[: int(len(audio) * 0.6)], sr)


@pytest.fixture(scope="module")
def twins(
    client: TestClient, keys: dict[str, tuple[str, dict[str, str]]], other_clip: bytes
) -> dict[str, str]:
    """alice and bob each upload a voice called ``twin`` (other clips); ``{who: voice id}``."""
    return {
        "alice": upload(client, "twin", keys["alice"][1], REF_WAV.read_bytes()),
        "bob": upload(client, "twin", keys["bob"][1], other_clip),
    }


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def upload(client: TestClient, name: str, headers: dict[str, str], clip: bytes) -> str:
    r = client.post(
        "/v1/voices",
        data={"name": name, "ref_text": REF_TEXT},
        files={"audio": ("clip.wav", clip, "audio/wav")},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    voice_id: str = r.json()["id"]
    return voice_id


def speak(client: TestClient, headers: dict[str, str], **voice: Any) -> bytes:
    """``/v1/tts`` as raw PCM, seed 5."""
    body = {"text": TEXT, "response_format": "pcm", **SEED, **voice}
    r = client.post("/v1/tts", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.content


def every_door(client: TestClient, headers: dict[str, str], name: str) -> dict[str, bytes]:
    """The audio of ``TEXT`` in the voice called ``name`` through each door that takes a name
    (seed 5 where the door takes one)."""
    tts = speak(client, headers, voice=name)
    openai = {"model": "tts-1", "input": TEXT, "voice": name, "response_format": "pcm"}
    speech = client.post("/v1/audio/speech", json=openai, headers=headers)
    assert speech.status_code == 200, speech.text
    job = client.post("/v1/jobs", json={"text": TEXT, "voice": name, **SEED}, headers=headers)
    assert job.status_code == 202, job.text
    job_id = job.json()["job_id"]
    assert wait(client, job_id, headers)["status"] == "succeeded"
    job_audio = client.get(f"/v1/jobs/{job_id}/audio", params={"format": "pcm"}, headers=headers)
    with client.websocket_connect(PATH, headers=headers) as ws:
        ws.send_json({"voice": name, "response_format": "pcm", **SEED})
        ws.send_json({"text": TEXT})
        ws.send_json({"text": ""})
        events = [ws.receive_json()]
        while events[-1]["type"] not in ("speech.audio.done", "error"):
            events.append(ws.receive_json())
    assert events[-1]["type"] == "speech.audio.done", events[-1]
    streamed = b"".join(base64.b64decode(e["audio"]) for e in events if "delta" in e["type"])
    return {
        "tts": tts,
        "openai": speech.content,
        "job": job_audio.content,
        "websocket": streamed,
    }


def script(client: TestClient, headers: dict[str, str], speaker: str) -> bytes:
    body = {"text": f"[{speaker}] {TEXT}", "script": True, "response_format": "pcm", **SEED}
    r = client.post("/v1/tts", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.content


def wait(client: TestClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def error_of(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_two_keys_each_have_their_own_voice_of_a_name(
    client: TestClient, keys: dict[str, tuple[str, dict[str, str]]], twins: dict[str, str]
) -> None:
    alice, bob = keys["alice"][1], keys["bob"][1]
    assert twins["alice"] != twins["bob"]  # bob's upload was not a 409
    for who, headers in (("alice", alice), ("bob", bob)):
        r = client.get("/v1/voices/twin", headers=headers)
        assert r.status_code == 200 and r.json()["id"] == twins[who]
        listed = client.get("/v1/voices", headers=headers).json()["voices"]
        assert [v["id"] for v in listed if v["name"] == "twin"] == [twins[who]]

    # the same name again in one key's voices is a 409 that says nothing of bob's
    again = client.post(
        "/v1/voices",
        data={"name": "twin", "ref_text": REF_TEXT},
        files={"audio": ("clip.wav", REF_WAV.read_bytes(), "audio/wav")},
        headers=alice,
    )
    assert error_of(again) == (409, "conflict")
    assert "bob" not in again.text and twins["bob"] not in again.text
    renamed = upload(client, "twin-to-be", alice, REF_WAV.read_bytes())
    clash = client.patch(f"/v1/voices/{renamed}", json={"name": "twin"}, headers=alice)
    assert error_of(clash) == (409, "conflict")

    own = {who: speak(client, keys[who][1], voice=twins[who]) for who in ("alice", "bob")}
    assert len(own["alice"]) != len(own["bob"])  # the two clips speak differently
    for who in ("alice", "bob"):
        headers = keys[who][1]
        for door, audio in every_door(client, headers, "twin").items():
            if door == "openai":  # a random seed: the length of the voice's speech
                assert len(audio) == len(own[who]), who
            else:
                assert audio == own[who], (who, door)
        assert script(client, headers, "twin") == script(client, headers, twins[who]), who


def test_a_keys_own_voice_comes_before_the_shared_one(
    client: TestClient, keys: dict[str, tuple[str, dict[str, str]]], other_clip: bytes
) -> None:
    alice, bob = keys["alice"][1], keys["bob"][1]
    shared = client.get("/v1/voices/narrator", headers=bob).json()
    assert shared["source"] == "directory"
    mine = upload(client, "narrator", alice, other_clip)  # no 409: shared names are not taken

    r = client.get("/v1/voices/narrator", headers=alice)
    assert r.json()["id"] == mine and r.json()["source"] == "upload"
    assert client.get("/v1/voices/narrator", headers=bob).json()["id"] == shared["id"]
    names = [v["name"] for v in client.get("/v1/voices", headers=alice).json()["voices"]]
    assert names.count("narrator") == 2  # she still sees the shared one, by its id

    alices = speak(client, alice, voice=mine)
    shared_audio = speak(client, bob, voice=shared["id"])
    assert alices != shared_audio
    assert speak(client, alice, voice="narrator") == alices
    assert speak(client, bob, voice="narrator") == shared_audio
    # ref_name names a file of the voices directory: the shared voice, whoever asks
    assert speak(client, alice, ref_name="sample/narrator.wav") == shared_audio
    # bob never reaches alice's voice, by name or by id
    assert error_of(client.get(f"/v1/voices/{mine}", headers=bob)) == (404, "not_found")


def test_an_admin_gets_a_409_naming_the_ids_when_several_keys_use_a_name(
    client: TestClient, keys: dict[str, tuple[str, dict[str, str]]], twins: dict[str, str]
) -> None:
    for admin in ("boss", "env"):
        headers = keys[admin][1]
        r = client.get("/v1/voices/twin", headers=headers)
        assert error_of(r) == (409, "ambiguous_voice")
        assert r.json()["error"]["details"] == {"voice": "twin", "ids": sorted(twins.values())}
        assert twins["alice"] in r.json()["error"]["message"]
        tts = client.post("/v1/tts", json={"text": TEXT, "voice": "twin"}, headers=headers)
        assert error_of(tts) == (409, "ambiguous_voice")
        job = client.post(
            "/v1/jobs", json={"text": f"[twin] {TEXT}", "script": True}, headers=headers
        )
        assert error_of(job) == (409, "ambiguous_voice")
        # by id it is fine
        assert speak(client, headers, voice=twins["alice"]) == speak(
            client, keys["alice"][1], voice="twin"
        )
        # the shared voice comes before any key's voice of its name
        assert client.get("/v1/voices/narrator", headers=headers).json()["source"] == "directory"
    # a name only one key uses is that key's voice
    only = upload(client, "alice-only", keys["alice"][1], REF_WAV.read_bytes())
    assert client.get("/v1/voices/alice-only", headers=keys["boss"][1]).json()["id"] == only
    # and the admin's own voice comes first
    bosses = upload(client, "twin", keys["boss"][1], REF_WAV.read_bytes())
    assert client.get("/v1/voices/twin", headers=keys["boss"][1]).json()["id"] == bosses
    r = client.get("/v1/voices/twin", headers=keys["env"][1])
    assert r.json()["error"]["details"]["ids"] == sorted([*twins.values(), bosses])


def test_owners_are_shown_to_admin_keys_only(
    client: TestClient, keys: dict[str, tuple[str, dict[str, str]]], twins: dict[str, str]
) -> None:
    alice_id, alice = keys["alice"]
    boss = keys["boss"][1]
    assert client.get(f"/v1/voices/{twins['alice']}", headers=alice).json()["owner"] is None
    assert client.get(f"/v1/voices/{twins['alice']}", headers=boss).json()["owner"] == alice_id
    owners = {v["id"]: v["owner"] for v in client.get("/v1/voices", headers=boss).json()["voices"]}
    assert owners[twins["alice"]] == alice_id and owners[twins["bob"]] == keys["bob"][0]
    shared = client.get("/v1/voices/narrator", headers=boss).json()
    assert shared["owner"] is None and owners[shared["id"]] is None
    assert {v["owner"] for v in client.get("/v1/voices", headers=alice).json()["voices"]} == {None}

    submitted = client.post("/v1/jobs", json={"text": TEXT, "voice": "twin"}, headers=alice)
    job_id = submitted.json()["job_id"]
    assert client.get(f"/v1/jobs/{job_id}", headers=alice).json()["owner"] is None
    assert client.get(f"/v1/jobs/{job_id}", headers=boss).json()["owner"] == alice_id
    listed = client.get("/v1/jobs", headers=boss).json()["jobs"]
    assert {j["job_id"]: j["owner"] for j in listed}[job_id] == alice_id
    assert {j["owner"] for j in client.get("/v1/jobs", headers=alice).json()["jobs"]} == {None}
    wait(client, job_id, alice)
