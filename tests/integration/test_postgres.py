"""Jobs and voices in a real PostgreSQL server (``F5SERVE_DATABASE_URL=postgresql://...``).

The server is the machine's (``F5SERVE_TEST_POSTGRES``, default
``postgresql://postgres@127.0.0.1:5432/postgres``); each run makes its own database, migrates it
(``f5serve db upgrade``) and drops it. Without a reachable server these tests are skipped, with
the reason printed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fresh_databases import fresh_postgres

from f5serve.core.db import database_url, open_database, upgrade_database, utcnow
from f5serve.core.jobs.store import QUEUED, RUNNING, SUCCEEDED, Claim, JobStore
from f5serve.core.storage import StorageError
from f5serve.errors import ConfigError, Conflict
from f5serve.http.app import create_app

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
from helpers import REF_TEXT, REF_WAV, assert_speech, make_settings

pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh database on the server at the newest schema, dropped afterwards."""
    with fresh_postgres() as url:
        upgrade_database(url)
        yield url


def test_the_job_lifecycle_in_postgresql(pg_url: str) -> None:
    store = JobStore(open_database(pg_url))
    job, created = store.create("pg-job-1", {"text": "Hello.", "voice": "narrator"})
    assert created and job.status == QUEUED
    again, created = store.create("pg-job-1", {"text": "Hello.", "voice": "narrator"})
    assert not created and again.id == "pg-job-1"
    with pytest.raises(Conflict):
        store.create("pg-job-1", {"text": "Something else."})
    claimed = store.claim("pg-job-1", "worker-a", 30)
    assert claimed is not None and claimed.status == RUNNING and claimed.attempts == 1
    assert store.claim("pg-job-1", "worker-b", 30) is None  # a second worker does not get it
    claim = Claim.of(claimed)
    store.progress(claim, 0.5, 1, 2, 8, 16)
    assert store.get("pg-job-1").step == 8
    done = store.succeed(claim, {"output_key": "output/pg-job-1.wav", "duration": 1.5})
    assert done is not None and done.status == SUCCEEDED and done.result is not None
    assert done.result["duration"] == 1.5 and done.finished_at is not None
    assert done.finished_at.tzinfo is not None  # times come back timezone-aware
    assert [j.id for j in store.page(SUCCEEDED, 10, 0).jobs] == ["pg-job-1"]
    expired = store.expire_before(utcnow() + timedelta(seconds=1))
    assert [j.id for j in expired] == ["pg-job-1"]


def test_running_jobs_of_a_dead_process_are_requeued(pg_url: str) -> None:
    sessions = open_database(pg_url)
    store = JobStore(sessions)
    store.create("pg-job-2", {"text": "Hi."})
    store.claim("pg-job-2", "a-worker-that-dies", 0)  # its lease has run out
    restarted = JobStore(open_database(pg_url))  # another process, same database
    assert "pg-job-2" in restarted.requeue_expired()
    assert restarted.get("pg-job-2").status == QUEUED


def test_the_service_runs_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=pg_url)
    with TestClient(create_app(settings)) as client:
        r = client.post(
            "/v1/voices",
            data={"name": "pg-voice", "ref_text": REF_TEXT},
            files={"audio": ("a.wav", REF_WAV.read_bytes(), "audio/wav")},
        )
        assert r.status_code == 201, r.text
        again = client.post(
            "/v1/voices",
            data={"name": "pg-voice", "ref_text": REF_TEXT},
            files={"audio": ("a.wav", REF_WAV.read_bytes(), "audio/wav")},
        )
        assert again.status_code == 409
        job = client.post("/v1/jobs", json={"text": "Stored in PostgreSQL.", "voice": "pg-voice"})
        assert job.status_code == 202
        job_id = job.json()["job_id"]
        deadline = time.monotonic() + 120
        while (status := client.get(f"/v1/jobs/{job_id}").json()["status"]) != SUCCEEDED:
            assert status in ("queued", "running") and time.monotonic() < deadline, status
            time.sleep(0.2)
        assert_speech(client.get(f"/v1/jobs/{job_id}/audio").content)
    # a new process on the same database sees the voice and the finished job
    with TestClient(create_app(make_settings(tmp_path, database_url=pg_url))) as client:
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == SUCCEEDED
        assert client.get("/v1/voices/pg-voice").status_code == 200


def test_an_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(StorageError, match="cannot open the database postgresql"):
        open_database("postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    try:
        open_database("postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    except StorageError as exc:
        assert "secret" not in exc.message  # the password is never shown


def test_urls_are_checked_and_postgres_urls_use_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    assert database_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert database_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert database_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(ConfigError, match="not valid"):
        database_url("not a url")
    with pytest.raises(ConfigError, match="unknown database"):
        open_database("oracle2000://u@h/db")
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"pip install 'f5serve\[postgres\]'"):
        open_database("postgresql://u@127.0.0.1/db")
