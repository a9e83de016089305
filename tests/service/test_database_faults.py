"""A locked database: database calls wait in threads, never on the event loop, and give up
after ``database_timeout`` with 503 and ``Retry-After``."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers import REF_TEXT, REF_WAV, make_settings, wait_until

from f5serve.http.app import create_app

JOB = {"text": "Hello there.", "voice": "narrator"}


def database_file(client: TestClient) -> Path:
    url = client.app.state.services.settings.database_url  # type: ignore[attr-defined]
    return Path(url.removeprefix("sqlite:///"))


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the write lock of the SQLite database at ``path`` (readers pass, writers wait)."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=60)
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def app_client(root: Path, timeout: float, **overrides: Any) -> TestClient:
    settings = make_settings(root, database_timeout=timeout, preload=False, **overrides)
    return TestClient(create_app(settings))


@pytest.fixture
def patient(tmp_path: Path) -> Iterator[TestClient]:
    """A server whose database calls wait up to 30 s for a lock."""
    with app_client(tmp_path, 30.0) as client:
        yield client


@pytest.fixture
def impatient(tmp_path: Path) -> Iterator[TestClient]:
    with app_client(tmp_path, 0.2, run_worker=False) as client:
        yield client


def test_the_event_loop_answers_while_a_job_claim_waits(
    patient: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = patient.app.state.services  # type: ignore[attr-defined]
    claiming, claimed = threading.Event(), threading.Event()
    claim = services.jobs.claim

    def spy(*args: Any) -> Any:
        claiming.set()
        try:
            return claim(*args)
        finally:
            claimed.set()

    monkeypatch.setattr(services.jobs, "claim", spy)
    job, _ = services.jobs.create("locked-claim", JOB)
    with locked(database_file(patient)):
        patient.portal.call(services.worker.requeued, [job.id])  # type: ignore[union-attr]
        wait_until(claiming.is_set, "the worker never tried to claim the job")
        assert patient.get("/health").status_code == 200
        # a claim on the event loop would have held /health until it gave up
        assert not claimed.is_set()
    wait_until(lambda: services.jobs.get(job.id).status != "queued", "the job never ran")


def test_a_locked_database_is_503_with_retry_after_and_leaves_nothing(
    impatient: TestClient,
) -> None:
    storage = impatient.app.state.services.storage  # type: ignore[attr-defined]
    clips_before = storage.list("voices/")
    with locked(database_file(impatient)):
        response = impatient.post("/v1/jobs", json=JOB)
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"]
        assert response.json()["error"]["code"] == "database_unavailable"
        files = {"audio": ("ref.wav", REF_WAV.read_bytes(), "audio/wav")}
        fields = {"name": "newcomer", "ref_text": REF_TEXT}
        upload = impatient.post("/v1/voices", data=fields, files=files)
        assert upload.status_code == 503 and upload.headers["Retry-After"], upload.text
        assert impatient.get("/health").status_code == 200
    assert storage.list("voices/") == clips_before  # the clip of the failed upload is gone
    assert impatient.post("/v1/jobs", json=JOB).status_code == 202
