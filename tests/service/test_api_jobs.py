"""Jobs: 202 after commit, progress, download in any format, cancel, idempotent ids, paging,
status filter, failures, timeouts, retention, and recovery after a restart."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from helpers import REF_TEXT, REF_WAV, assert_speech, make_settings

from f5serve.core.services import Services
from f5serve.engine.audio import FORMATS
from f5serve.http.app import create_app

TEXT = "A job that the worker runs in the background."
LONG = " ".join(["This sentence is here to make the job take a while to finish."] * 12)


def wait(client: TestClient, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def services_of(client: TestClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return services


def test_job_runs_and_downloads_in_every_format(client: TestClient) -> None:
    r = client.post("/v1/jobs", json={"text": TEXT, "voice": "narrator", "seed": 5})
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    assert r.json()["links"]["self"] == f"/v1/jobs/{job_id}"
    done = wait(client, job_id)
    assert done["status"] == "succeeded", done
    assert done["progress"]["fraction"] == 1.0 and done["attempts"] == 1
    assert done["result"]["model"] == "tiny" and done["result"]["seed"] == 5
    assert done["started_at"] and done["finished_at"] and done["error"] is None
    for fmt in ("wav", "flac", "mp3", "opus", "aac", "pcm"):
        audio = client.get(f"/v1/jobs/{job_id}/audio", params={"format": fmt})
        assert audio.status_code == 200, audio.text
        assert audio.headers["content-type"] == FORMATS[fmt].content_type
        assert audio.headers["content-disposition"] == f'attachment; filename="{job_id}.{fmt}"'
        seconds = assert_speech(audio.content, fmt)
        assert seconds == pytest.approx(done["result"]["duration"], abs=0.12)


def test_a_job_with_an_inline_reference_clip(client: TestClient) -> None:
    ref = base64.b64encode(REF_WAV.read_bytes()).decode()
    body = {"text": TEXT, "ref_audio": ref, "ref_text": REF_TEXT}
    job_id = client.post("/v1/jobs", json=body).json()["job_id"]
    done = wait(client, job_id)
    assert done["status"] == "succeeded" and done["result"]["voice"] is None
    assert_speech(client.get(f"/v1/jobs/{job_id}/audio").content)


def test_progress_is_reported_and_the_model_held_while_a_job_runs(client: TestClient) -> None:
    body = {"text": TEXT + " " + TEXT, "voice": "narrator", "nfe_steps": 16}
    r = client.post("/v1/jobs", json=body)
    job_id = r.json()["job_id"]
    seen, held = set(), set()
    manager = services_of(client).registry.manager
    while (body := client.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
        if body["status"] == "running":
            seen.add(body["progress"]["fraction"])
            held.add(manager.loaded()[0].in_use)
            assert body["progress"]["steps"] in (0, 16)
        time.sleep(0.02)
    assert body["status"] == "succeeded"
    assert any(0 < f < 1 for f in seen), seen
    assert 1 in held and manager.loaded()[0].in_use == 0  # held from eviction while it ran


def test_cancelling_a_job_stops_it(client: TestClient) -> None:
    job_id = client.post(
        "/v1/jobs", json={"text": LONG, "voice": "narrator", "nfe_steps": 128}
    ).json()["job_id"]
    cancelled = client.delete(f"/v1/jobs/{job_id}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    time.sleep(0.3)
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
    audio = client.get(f"/v1/jobs/{job_id}/audio")
    assert audio.status_code == 409 and audio.json()["error"]["details"]["status"] == "cancelled"


def test_client_job_ids_are_idempotent(client: TestClient) -> None:
    body = {"text": TEXT, "voice": "narrator", "job_id": "order-42"}
    first = client.post("/v1/jobs", json=body)
    again = client.post("/v1/jobs", json=body)
    assert first.status_code == 202 and again.status_code == 200
    assert first.json()["job_id"] == again.json()["job_id"] == "order-42"
    clash = client.post("/v1/jobs", json={**body, "text": "Something else."})
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "conflict"
    assert wait(client, "order-42")["attempts"] == 1


def test_a_job_stored_before_an_option_existed_is_the_same_job(tmp_path: Path) -> None:
    """A body stored by an older version lacks today's newer option fields; submitting the same
    body again is idempotent (200), not a conflict."""
    settings = make_settings(tmp_path, run_worker=False, preload=False)
    old_body = {"text": TEXT, "voice": "narrator", "speed": 1.0, "cfg_strength": 2.0}
    with TestClient(create_app(settings)) as client:
        services_of(client).jobs.create("from-before", old_body)
        again = client.post("/v1/jobs", json={**old_body, "job_id": "from-before"})
        assert again.status_code == 200 and again.json()["job_id"] == "from-before"
        other = client.post("/v1/jobs", json={**old_body, "speed": 1.5, "job_id": "from-before"})
        assert other.status_code == 409


def test_listing_pages_and_filters_by_status(client: TestClient) -> None:
    ids = [
        client.post("/v1/jobs", json={"text": TEXT, "voice": "narrator"}).json()["job_id"]
        for _ in range(3)
    ]
    for job_id in ids:
        wait(client, job_id)
    page = client.get("/v1/jobs", params={"limit": 2, "offset": 0}).json()
    assert len(page["jobs"]) == 2 and page["total"] >= 3 and page["limit"] == 2
    second = client.get("/v1/jobs", params={"limit": 2, "offset": 2}).json()
    assert not {j["job_id"] for j in page["jobs"]} & {j["job_id"] for j in second["jobs"]}
    done = client.get("/v1/jobs", params={"status": "succeeded", "limit": 200}).json()
    assert set(ids) <= {j["job_id"] for j in done["jobs"]}
    assert all(j["status"] == "succeeded" for j in done["jobs"])
    bad = client.get("/v1/jobs", params={"status": "sleeping"})
    assert bad.status_code == 422


def test_failed_jobs_report_the_error(client: TestClient) -> None:
    job_id = client.post("/v1/jobs", json={"text": TEXT, "voice": "ghost"}).json()["job_id"]
    failed = wait(client, job_id)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "not_found" and "ghost" in failed["error"]["message"]


def test_jobs_over_the_time_limit_fail_with_timeout(client: TestClient) -> None:
    worker = services_of(client).worker
    worker.timeout = 0.001
    try:
        job_id = client.post("/v1/jobs", json={"text": LONG, "voice": "narrator"}).json()["job_id"]
        assert wait(client, job_id)["error"]["code"] == "timeout"
    finally:
        worker.timeout = 600


def test_outputs_expire_after_the_retention_time(client: TestClient) -> None:
    job_id = client.post("/v1/jobs", json={"text": TEXT, "voice": "narrator"}).json()["job_id"]
    key = wait(client, job_id)["result"]["output_key"]
    services = services_of(client)
    services.worker.retention = 0
    try:
        assert services.worker.cleanup() >= 1
    finally:
        services.worker.retention = 86_400
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "expired"
    gone = client.get(f"/v1/jobs/{job_id}/audio")
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "expired"
    assert not services.storage.exists(key)


def test_job_errors_use_the_envelope(client: TestClient) -> None:
    assert client.get("/v1/jobs/nope").status_code == 404
    assert client.delete("/v1/jobs/nope").status_code == 404
    bad_id = client.post("/v1/jobs", json={"text": TEXT, "voice": "narrator", "job_id": "../x"})
    assert bad_id.status_code == 422
    bad_b64 = client.post("/v1/jobs", json={"text": TEXT, "ref_audio": "%%%", "ref_text": "a"})
    assert bad_b64.status_code == 422
    huge = client.post("/v1/jobs", json={"text": "y" * 100_001, "voice": "narrator"})
    assert huge.status_code == 413
    # the limit of jobs themselves: no advice to use the endpoint just called
    assert huge.json()["error"]["message"] == "text is 100001 characters long (at most 100000)"


def test_a_full_job_queue_gives_429(client: TestClient) -> None:
    services = services_of(client)
    limit = services.settings.max_queued_jobs
    object.__setattr__(services.settings, "max_queued_jobs", 0)
    try:
        r = client.post("/v1/jobs", json={"text": TEXT, "voice": "narrator"})
    finally:
        object.__setattr__(services.settings, "max_queued_jobs", limit)
    assert r.status_code == 429 and "retry-after" in r.headers


def test_submissions_at_once_do_not_overshoot_the_queue_limit(tmp_path: Path) -> None:
    """Ten jobs submitted together with room for three: exactly three are queued."""
    settings = make_settings(tmp_path, run_worker=False, preload=False, max_queued_jobs=3)
    app = create_app(settings)

    async def submit_ten() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            body = {"text": TEXT, "voice": "narrator"}
            return await asyncio.gather(*(client.post("/v1/jobs", json=body) for _ in range(10)))

    responses = asyncio.run(submit_ten())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] * 3 + [429] * 7, statuses
    assert all("retry-after" in r.headers for r in responses if r.status_code == 429)
    services: Services = app.state.services
    assert services.jobs.count("queued") == 3


def test_queued_and_interrupted_jobs_run_after_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, run_worker=False, preload=False)
    with TestClient(create_app(settings)) as first:
        ids = [
            first.post("/v1/jobs", json={"text": TEXT, "voice": "narrator"}).json()["job_id"]
            for _ in range(3)
        ]
        # as if a worker had died while running it, and its lease had run out since
        services_of(first).jobs.claim(ids[0], "a-worker-that-died", 0)
        assert first.get(f"/v1/jobs/{ids[0]}").json()["status"] == "running"
        assert first.get(f"/v1/jobs/{ids[1]}").json()["status"] == "queued"
    with TestClient(create_app(make_settings(tmp_path))) as second:
        results = [wait(second, job_id) for job_id in ids]
    assert [r["status"] for r in results] == ["succeeded"] * 3
    assert results[0]["attempts"] == 2 and results[1]["attempts"] == 1
