"""Keys as tenants across real processes on the machine's PostgreSQL: an API replica
(``f5serve serve --no-run-worker``) and a worker (``f5serve worker``) that know the same keys
from the database. A job submitted to the replica runs on the worker as its key; sync requests
the replica forwards are authenticated and charged by the worker; another key sees nothing.
Skipped (reason printed) without a PostgreSQL server."""

from __future__ import annotations

import io
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import soundfile as sf
from fresh_databases import fresh_postgres
from server_process import Server

from f5serve.core.db import open_database, upgrade_database
from f5serve.core.tenants import Tenancy

pytest.importorskip("procrastinate")
pytestmark = pytest.mark.slow

TEXT = "Each key keeps to its own."
WAIT = 60  # seconds an HTTP call may take on a busy 2-core machine
REF = Path(__file__).parents[1] / "fixtures" / "basic_ref_en.wav"


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, dict[str, dict[str, str]]]]:
    """The replica's URL and the headers of two keys, made before the processes start."""
    with fresh_postgres() as url:
        upgrade_database(url)
        tenancy = Tenancy(open_database(url))
        headers = {}
        for name in ("alice", "bob"):
            _, key = tenancy.create(name)
            headers[name] = {"Authorization": f"Bearer {key}"}
        root = tmp_path_factory.mktemp("tenants-scale")
        shared = {"database_url": url, "storage_url": str(root / "storage")}
        (root / "worker").mkdir()
        (root / "api").mkdir()
        worker = Server(root / "worker", "worker", worker_models="tiny", job_workers=1, **shared)
        api = Server(root / "api", run_worker=False, **shared)
        running = []
        try:
            for server in (worker, api):
                running.append(server.start())
            yield api.url, headers
        finally:
            for server in running:
                if server.process is not None and server.process.poll() is None:
                    server.kill(signal.SIGTERM)


def test_jobs_and_forwarded_requests_keep_to_their_key(
    cluster: tuple[str, dict[str, dict[str, str]]],
) -> None:
    api, keys = cluster
    alice, bob = keys["alice"], keys["bob"]
    voice = httpx.post(
        f"{api}/v1/voices",
        data={
            "name": "alice-voice",
            "ref_text": "Some call me nature, others call me mother nature.",
        },
        files={"audio": ("clip.wav", REF.read_bytes(), "audio/wav")},
        headers=alice,
        timeout=WAIT,
    )
    assert voice.status_code == 201, voice.text

    job = httpx.post(
        f"{api}/v1/jobs", json={"text": TEXT, "voice": "alice-voice"}, headers=alice, timeout=WAIT
    )
    assert job.status_code == 202, job.text
    job_id = job.json()["job_id"]
    deadline = time.monotonic() + 180
    while (status := httpx.get(f"{api}/v1/jobs/{job_id}", headers=alice, timeout=WAIT).json())[
        "status"
    ] in ("queued", "running"):
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.2)
    # the worker ran it as alice: her voice was hers to use
    assert status["status"] == "succeeded", status
    assert httpx.get(f"{api}/v1/jobs/{job_id}", headers=bob, timeout=WAIT).status_code == 404
    assert httpx.get(f"{api}/v1/jobs/{job_id}/audio", headers=bob, timeout=WAIT).status_code == 404

    # forwarded to the worker, which checks the key and the voice against the database
    speak = {"text": TEXT, "voice": "alice-voice"}
    spoken = httpx.post(f"{api}/v1/tts", json=speak, headers=alice, timeout=WAIT)
    assert spoken.status_code == 200 and spoken.content[:4] == b"RIFF"
    refused = httpx.post(f"{api}/v1/tts", json=speak, headers=bob, timeout=WAIT)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    assert httpx.post(f"{api}/v1/tts", json=speak, timeout=WAIT).status_code == 401

    # the worker charged the job and the forwarded request to alice, in the shared database
    # (a job's charge is written just after its success: wait for it)
    expected = status["result"]["duration"] + sf.info(io.BytesIO(spoken.content)).duration
    deadline = time.monotonic() + WAIT
    while True:
        (used,) = httpx.get(f"{api}/v1/usage", headers=alice, timeout=WAIT).json()["keys"]
        if used["audio_seconds"] >= expected - 0.01 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert used["audio_seconds"] == pytest.approx(expected, abs=0.01)
    assert (
        httpx.get(f"{api}/v1/usage", headers=bob, timeout=WAIT).json()["keys"][0]["audio_seconds"]
        == 0
    )
