"""API keys as tenants, through every door that takes a key: a key lists, reads, changes,
deletes and downloads only its own jobs and voices (another key's id is 404, as if it did not
exist), may use the shared voices of the voices directory but not change them (403), and an admin
key sees everything; per-key requests per minute and audio seconds per day answer 429 with
Retry-After (the clock is injected); usage in ``/v1/usage`` and ``/metrics``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers import REF_TEXT, REF_WAV, assert_speech, make_settings
from starlette.websockets import WebSocketDisconnect

from f5serve.client import Client, PermissionDeniedError
from f5serve.core.services import Services
from f5serve.http.app import create_app

ENV_ADMIN = "the-env-admin-key"
TEXT = "Hello there, this is a short test."
NOON = 1_790_000_000 - 1_790_000_000 % 86_400 + 43_200.5  # 12:00:00.5 UTC on some day
PATH = "/v1/tts/stream-input"


def services_of(client: TestClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return services


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root: Path = tmp_path_factory.mktemp("tenants")
    with TestClient(create_app(make_settings(root, api_keys=ENV_ADMIN))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def keys(client: TestClient) -> dict[str, dict[str, str]]:
    """Headers of the keys: ``env`` (F5SERVE_API_KEYS), two tenants and a database admin."""
    tenancy = services_of(client).tenancy
    headers = {"env": bearer(ENV_ADMIN)}
    for name, admin in (("alice", False), ("bob", False), ("boss", True)):
        _, key = tenancy.create(name, admin)
        headers[name] = bearer(key)
    return headers


def wait(client: TestClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def upload(client: TestClient, name: str, headers: dict[str, str]) -> str:
    r = client.post(
        "/v1/voices",
        data={"name": name, "ref_text": REF_TEXT},
        files={"audio": ("clip.wav", REF_WAV.read_bytes(), "audio/wav")},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    voice_id: str = r.json()["id"]
    return voice_id


def assert_not_found(response: Any) -> None:
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"


def stream_input_error(client: TestClient, url: str, setup: dict[str, Any], **kw: Any) -> str:
    """The error code of a stream-input session that is refused."""
    with client.websocket_connect(url, **kw) as ws:
        ws.send_json(setup)
        ws.send_json({"text": TEXT})
        ws.send_json({"text": ""})
        event = ws.receive_json()
        while event["type"] not in ("speech.audio.done", "error"):
            event = ws.receive_json()
        assert event["type"] == "error", event
        code: str = event["error"]["code"]
    return code


def test_a_key_sees_only_its_own_jobs(client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    alice, bob = keys["alice"], keys["bob"]
    body = {"text": TEXT, "voice": "narrator", "job_id": "alice-job"}
    assert client.post("/v1/jobs", json=body, headers=alice).status_code == 202
    assert wait(client, "alice-job", alice)["status"] == "succeeded"
    bobs = client.post("/v1/jobs", json={"text": TEXT, "voice": "narrator"}, headers=bob)
    bob_job = bobs.json()["job_id"]
    wait(client, bob_job, bob)

    for method, path in (
        ("GET", "/v1/jobs/alice-job"),
        ("GET", "/v1/jobs/alice-job/audio"),
        ("GET", "/v1/jobs/alice-job/subtitles"),
        ("DELETE", "/v1/jobs/alice-job"),
    ):
        assert_not_found(client.request(method, path, headers=bob))
    listed = client.get("/v1/jobs", headers=bob).json()
    assert [j["job_id"] for j in listed["jobs"]] == [bob_job] and listed["total"] == 1
    assert client.get("/v1/jobs", params={"status": "succeeded"}, headers=bob).json()["total"] == 1
    # reusing another key's job id is a conflict that tells nothing of that job
    reused = client.post("/v1/jobs", json=body, headers=bob)
    assert reused.status_code == 409 and "succeeded" not in reused.text

    assert client.get("/v1/jobs/alice-job", headers=alice).json()["status"] == "succeeded"
    assert_speech(client.get("/v1/jobs/alice-job/audio", headers=alice).content)
    for admin in ("env", "boss"):
        assert client.get("/v1/jobs/alice-job", headers=keys[admin]).status_code == 200
        assert client.get("/v1/jobs/alice-job/audio", headers=keys[admin]).status_code == 200
        ids = {j["job_id"] for j in client.get("/v1/jobs", headers=keys[admin]).json()["jobs"]}
        assert {"alice-job", bob_job} <= ids

    # a job from before keys were tenants (no owner) is the admins' only
    services_of(client).jobs.create("ownerless", {"text": TEXT, "voice": "narrator"})
    assert_not_found(client.get("/v1/jobs/ownerless", headers=alice))
    assert client.get("/v1/jobs/ownerless", headers=keys["boss"]).status_code == 200
    assert client.delete("/v1/jobs/ownerless", headers=keys["boss"]).json()["status"] == "cancelled"


def test_no_route_with_an_id_answers_another_keys_job_or_voice(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """Every route of the OpenAPI document that takes a job or voice id, so a route added later
    is covered without touching this test."""
    alice = keys["alice"]
    job = client.post("/v1/jobs", json={"text": TEXT, "voice": "narrator"}, headers=alice)
    job_id = job.json()["job_id"]
    wait(client, job_id, alice)
    ids = {"{job_id}": job_id, "{voice_id}": upload(client, "alice-only", alice)}
    calls = []
    for template, operations in client.get("/openapi.json").json()["paths"].items():
        for marker, value in ids.items():
            if marker in template:
                calls += [(method, template.replace(marker, value)) for method in operations]
    assert len(calls) >= 7
    calls.sort(key=lambda call: call[0] == "delete")  # the admin deletes last
    for who, expect_found in (("bob", False), ("boss", True)):
        for method, path in calls:
            extra = {"json": {"ref_text": "x"}} if method == "patch" else {}
            r = client.request(method, path, headers=keys[who], **extra)
            if expect_found:
                assert r.status_code < 300, (method, path, r.text)
            else:
                assert_not_found(r)


def test_a_key_sees_only_its_own_voices_and_uses_only_them(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    alice, bob = keys["alice"], keys["bob"]
    alice_voice = upload(client, "alice-voice", alice)
    upload(client, "bob-voice", bob)
    for method, path, extra in (
        ("GET", f"/v1/voices/{alice_voice}", {}),
        ("GET", "/v1/voices/alice-voice", {}),  # by name too
        ("GET", f"/v1/voices/{alice_voice}/audio", {}),
        ("PATCH", f"/v1/voices/{alice_voice}", {"json": {"ref_text": "Mine now."}}),
        ("DELETE", f"/v1/voices/{alice_voice}", {}),
    ):
        assert_not_found(client.request(method, path, headers=bob, **extra))
    names = {v["name"] for v in client.get("/v1/voices", headers=bob).json()["voices"]}
    assert names == {"bob-voice", "narrator"}

    # no door lets bob speak in alice's voice
    speak = {"text": TEXT, "voice": "alice-voice"}
    assert_not_found(client.post("/v1/tts", json=speak, headers=bob))
    openai = {"model": "tts-1", "input": TEXT, "voice": "alice-voice"}
    assert_not_found(client.post("/v1/audio/speech", json=openai, headers=bob))
    job = client.post("/v1/jobs", json=speak, headers=bob).json()["job_id"]
    failed = wait(client, job, bob)  # the worker runs it as bob
    assert failed["status"] == "failed" and failed["error"]["code"] == "not_found"
    script = {"text": "[alice-voice] Hello.", "script": True}
    assert_not_found(client.post("/v1/jobs", json=script, headers=bob))
    setup = {"voice": "alice-voice", "nfe_steps": 2}
    assert stream_input_error(client, PATH, setup, headers=bob) == "not_found"

    assert_speech(client.post("/v1/tts", json=speak, headers=alice).content)
    r = client.get(f"/v1/voices/{alice_voice}", headers=alice)
    assert r.status_code == 200 and r.json()["ref_text"] == REF_TEXT  # bob changed nothing
    for admin in ("env", "boss"):
        every = {v["name"] for v in client.get("/v1/voices", headers=keys[admin]).json()["voices"]}
        assert {"alice-voice", "bob-voice", "narrator"} <= every
    assert client.get("/v1/voices/alice-voice/audio", headers=keys["boss"]).status_code == 200
    assert client.delete(f"/v1/voices/{alice_voice}", headers=keys["boss"]).status_code == 204


def test_library_voices_are_shared_read_only(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    alice = keys["alice"]
    narrator = client.get("/v1/voices/narrator", headers=alice)
    assert narrator.status_code == 200 and narrator.json()["source"] == "directory"
    assert client.get("/v1/voices/narrator/audio", headers=alice).status_code == 200
    for method, extra in (("PATCH", {"json": {"ref_text": "Changed."}}), ("DELETE", {})):
        r = client.request(method, "/v1/voices/narrator", headers=alice, **extra)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    assert client.get("/v1/voices/narrator", headers=alice).json()["ref_text"] == REF_TEXT
    patched = client.patch(
        "/v1/voices/narrator", json={"language": "en"}, headers=keys["boss"]
    )  # an admin may change it
    assert patched.status_code == 200 and patched.json()["language"] == "en"


def test_a_revoked_key_is_refused_by_every_door(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    tenancy = services_of(client).tenancy
    row, key = tenancy.create("carol")
    assert client.get("/v1/voices", headers=bearer(key)).status_code == 200
    tenancy.revoke(row.id)
    for method, path in (("GET", "/v1/voices"), ("GET", "/v1/jobs"), ("POST", "/v1/tts")):
        r = client.request(method, path, headers=bearer(key), json={"text": TEXT})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    setup = {"voice": "narrator", "nfe_steps": 2}
    assert stream_input_error(client, f"{PATH}?api_key={key}", setup) == "unauthorized"


@pytest.fixture
def clock(client: TestClient) -> Iterator[list[float]]:
    """The time the limits see (``now[0]``, seconds since the epoch), moved by the test."""
    tenancy = services_of(client).tenancy
    now = [NOON]
    tenancy.clock = lambda: now[0]
    yield now
    tenancy.clock = time.time


def test_requests_per_minute_answer_429_with_retry_after(
    client: TestClient, keys: dict[str, dict[str, str]], clock: list[float]
) -> None:
    _, key = services_of(client).tenancy.create("limited", requests_per_minute=2)
    limited = bearer(key)
    for _ in range(2):
        assert client.get("/v1/voices", headers=limited).status_code == 200
    refused = client.get("/v1/jobs", headers=limited)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
    assert refused.json()["error"]["code"] == "too_many_requests"
    setup = {"voice": "narrator", "nfe_steps": 2}
    assert stream_input_error(client, PATH, setup, headers=limited) == "too_many_requests"
    assert client.get("/v1/voices", headers=keys["alice"]).status_code == 200  # others go on
    clock[0] += 59.5  # the next minute
    assert client.get("/v1/voices", headers=limited).status_code == 200


def test_audio_seconds_per_day_answer_429_in_every_door(
    client: TestClient, keys: dict[str, dict[str, str]], clock: list[float]
) -> None:
    row, key = services_of(client).tenancy.create("speaker", audio_seconds_per_day=0.5)
    speaker = bearer(key)
    first = client.post("/v1/tts", json={"text": TEXT, "voice": "narrator"}, headers=speaker)
    seconds = assert_speech(first.content)
    for path, body in (
        ("/v1/tts", {"text": TEXT, "voice": "narrator"}),
        ("/v1/tts", {"text": TEXT, "voice": "narrator", "stream": True}),
        ("/v1/audio/speech", {"model": "tts-1", "input": TEXT, "voice": "narrator"}),
        ("/v1/jobs", {"text": TEXT, "voice": "narrator"}),
    ):
        r = client.post(path, json=body, headers=speaker)
        assert r.status_code == 429, (path, r.text)
        assert r.headers["retry-after"] == "43200"  # until midnight UTC
    setup = {"voice": "narrator", "nfe_steps": 2}
    assert stream_input_error(client, PATH, setup, headers=speaker) == "too_many_requests"
    (used,) = client.get("/v1/usage", headers=speaker).json()["keys"]
    assert used["key_id"] == row.id and used["audio_seconds"] == pytest.approx(seconds, abs=1e-3)
    assert used["audio_seconds_per_day"] == 0.5
    clock[0] += 43_200  # a new day
    assert client.post("/v1/tts", json=setup | {"text": TEXT}, headers=speaker).status_code == 200


def test_usage_and_metrics_count_per_key(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    tenancy = services_of(client).tenancy
    row, key = tenancy.create("counter")
    counter = bearer(key)
    for _ in range(3):
        client.get("/v1/voices", headers=counter)
    streamed = client.post(
        "/v1/tts", json={"text": TEXT, "voice": "narrator", "stream": True}, headers=counter
    )
    seconds = assert_speech(streamed.content)
    (mine,) = client.get("/v1/usage", headers=counter).json()["keys"]
    assert mine["requests"] == 5 and mine["name"] == "counter" and not mine["admin"]
    assert mine["audio_seconds"] == pytest.approx(seconds, abs=1e-3)

    every = client.get("/v1/usage", headers=keys["boss"]).json()["keys"]
    names = {u["name"] for u in every}
    assert {"alice", "bob", "boss", "counter"} <= names and any(u["admin"] for u in every)
    assert any(u["key_id"].startswith("env_") for u in every)  # the environment's key

    refused = client.get("/metrics", headers=counter)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    text = client.get("/metrics", headers=keys["boss"]).text
    # its five requests and the refused /metrics: a 403 is a request of the key all the same
    assert f'f5serve_key_requests_total{{key_id="{row.id}",key_name="counter"}} 6.0' in text
    line = f'f5serve_key_audio_seconds_total{{key_id="{row.id}",key_name="counter"}}'
    assert float(text.split(line)[1].split()[0]) == pytest.approx(seconds, abs=1e-3)
    assert key not in text and ENV_ADMIN not in text


def test_the_python_client_reads_usage_and_names_a_refusal(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    with Client(http=TestClient(client.app, headers=keys["alice"])) as alice:
        (mine,) = alice.usage()
        assert mine.name == "alice" and mine.requests >= 1 and not mine.admin
        assert mine.day == datetime.now(timezone.utc).date()
        with pytest.raises(PermissionDeniedError) as refused:
            alice.delete_voice("narrator")
    assert refused.value.code == "forbidden"
    with Client(http=TestClient(client.app, headers=keys["boss"])) as boss:
        assert {"alice", "bob", "boss"} <= {u.name for u in boss.usage()}


def test_the_openapi_document_declares_the_bearer_scheme_and_the_key_errors(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["HTTPBearer"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path in ("/health", "/ready"):
                assert "security" not in operation
                continue
            assert operation["security"] == [{"HTTPBearer": []}], (method, path)
            assert {"401", "429"} <= set(operation["responses"]), (method, path)
    voice = document["paths"]["/v1/voices/{voice_id}"]
    assert "403" in voice["patch"]["responses"] and "403" in voice["delete"]["responses"]
    assert "403" in document["paths"]["/metrics"]["get"]["responses"]


def test_an_open_server_has_no_tenants(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, preload=False, run_worker=False)
    with TestClient(create_app(settings)) as open_client:
        assert open_client.get("/v1/usage").json() == {"keys": []}
        assert open_client.get("/metrics").status_code == 200
        names = [v["name"] for v in open_client.get("/v1/voices").json()["voices"]]
        assert names == ["narrator"]
        # what is made on an open server has no owner, so admin keys alone see it later
        upload(open_client, "open-voice", {})
        assert services_of(open_client).voices.get("open-voice").owner is None


def test_a_closed_websocket_says_why(client: TestClient) -> None:
    with client.websocket_connect(PATH) as ws:
        ws.send_json({"voice": "narrator"})
        assert ws.receive_json()["error"]["code"] == "unauthorized"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008
