"""The fault suite: every fault on SQLite and on PostgreSQL (PostgreSQL is skipped, saying why,
where no server answers), each with its status and no debris: no voice row without its clip, no
file without a row (no clip, partial file or sidecar left by a failed write).

- **storage read-only**: the storage is a tmpfs of its own, remounted read-only. 503
  ``storage_error`` + ``Retry-After``; an upload leaves no row, a delete keeps row and clip, a
  job fails with ``storage_error``.
- **disk full**: the same tmpfs, filled up to its last pages. The same (a delete works).
- **database locked**: SQLite: another connection holds the write lock; PostgreSQL:
  ``LOCK TABLE``. The event loop answers while a call waits; after ``database_timeout``, 503
  ``database_unavailable`` + ``Retry-After``; an upload leaves no clip.
- **database down**: PostgreSQL: the database is dropped; 503 ``database_unavailable`` +
  ``Retry-After`` on jobs, voices and synthesis; an upload leaves no clip. SQLite is skipped: it
  is a file opened in this process, with no server to lose (and its faults cannot be made
  reliably: an open file keeps its file system from turning read-only, and its write-ahead log
  reuses its pages on a full disk).
- **database outage while running jobs** (PostgreSQL): ``/ready`` answers 503 while the job
  queue's worker is down, and 200 again once it is back; the worker's entry in the directory of
  workers is fresh again.
- **client disconnect**: ``tests/service/test_live_server.py`` (a sync or streaming request's
  synthesis is cancelled and its batch slots freed; a cancelled job stops). No database write
  is involved, so it runs once.

The file systems are real (tmpfs mounts): those tests need root (or CAP_SYS_ADMIN) and are
skipped, saying why, without it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from fresh_databases import ADMIN_URL, database_outage, fresh_postgres
from sqlalchemy import create_engine, text

from f5serve.core.db import (
    WorkerRow,
    database_url,
    open_database,
    upgrade_database,
    utcnow,
)
from f5serve.core.storage.local import META_SUFFIX
from f5serve.http.app import create_app

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
from helpers import REF_TEXT, REF_WAV, make_settings, wait_until

JOB = {"text": "Hello there.", "voice": "narrator"}


# ------------------------------------------------------------------------------ file systems


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


@contextmanager
def tmpfs(path: Path, size: str = "8m") -> Iterator[Path]:
    """A small file system of its own at ``path`` (skips, saying why, where mount is refused)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        run("umount", "--lazy", str(path))


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    run("mount", "-o", "remount,ro", str(path))
    try:
        yield
    finally:
        run("mount", "-o", "remount,rw", str(path))


@contextmanager
def full(path: Path, room: int = 8 * 1024) -> Iterator[None]:
    """Fill the file system at ``path`` up to its last ``room`` bytes (a small sidecar still
    fits, an audio file does not)."""
    filler = path / ".filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for block in (64 * 1024, 1024):
            with contextlib.suppress(OSError):  # ENOSPC: full
                while os.write(fd, b"\0" * block) == block:
                    pass
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - room))
    finally:
        os.close(fd)
    try:
        yield
    finally:
        filler.unlink()


# -------------------------------------------------------------------------------- databases


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'f5serve.db'}"
    url: str = request.getfixturevalue("postgres_url")
    upgrade_database(url)
    return url


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "storage") as path:
        yield path


@contextmanager
def locked(url: str) -> Iterator[None]:
    """Another connection holds the lock that writers (PostgreSQL: everyone) wait for."""
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    locker = create_engine(database_url(url))
    with locker.connect() as connection, connection.begin():
        connection.execute(text("LOCK TABLE jobs, voices IN ACCESS EXCLUSIVE MODE"))
        yield
    locker.dispose()


@contextmanager
def dropped(url: str) -> Iterator[None]:
    """The PostgreSQL database is dropped (and made again afterwards, with its schema, for the
    server to stop cleanly)."""
    name = database_url(url).database
    admin = create_engine(database_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        try:
            yield
        finally:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    upgrade_database(url)


# ------------------------------------------------------------------------------------ server


@contextmanager
def serving(root: Path, url: str, storage: Path, **overrides: Any) -> Iterator[TestClient]:
    settings = make_settings(root, database_url=url, storage_url=str(storage), **overrides)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def client(tmp_path: Path, database: str, storage: Path) -> Iterator[TestClient]:
    """A server whose database calls give up after half a second."""
    with serving(tmp_path, database, storage, database_timeout=0.5, preload=False) as client:
        yield client


def upload(client: TestClient, name: str) -> httpx.Response:
    files = {"audio": ("ref.wav", REF_WAV.read_bytes(), "audio/wav")}
    return client.post("/v1/voices", data={"name": name, "ref_text": REF_TEXT}, files=files)


def assert_unavailable(response: httpx.Response, code: str) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["error"]["code"] == code


def assert_no_debris(client: TestClient) -> None:
    """Every voice row has its clip, and every file in the storage is a voice's clip, a job's
    output or the sidecar of one (no partial file, no orphan)."""
    services = client.app.state.services  # type: ignore[attr-defined]
    root: Path = services.storage.root
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    objects = {f for f in files if not f.endswith(META_SUFFIX)}
    clips = {row.audio_key for row in services.voices.all()}
    outputs = {
        job.result["output_key"]
        for job in services.jobs.page(None, 200, 0).jobs
        if job.result and "output_key" in job.result
    }
    assert clips <= objects, "a voice row lost its clip"
    assert objects <= clips | outputs, f"orphan files: {objects - clips - outputs}"
    assert files - objects == {f + META_SUFFIX for f in objects}, "orphan or missing sidecars"


# ---------------------------------------------------------------------------- storage faults

STORAGE_FAULTS = {"read-only": read_only, "full": full}


@pytest.mark.parametrize("fault", STORAGE_FAULTS)
def test_a_voice_upload_on_broken_storage(client: TestClient, storage: Path, fault: str) -> None:
    with STORAGE_FAULTS[fault](storage):
        assert_unavailable(upload(client, "newcomer"), "storage_error")
    assert client.get("/v1/voices/newcomer").status_code == 404  # no row without its clip
    assert_no_debris(client)
    assert upload(client, "newcomer").status_code == 201  # and it works again


def test_a_voice_delete_on_read_only_storage_keeps_both(client: TestClient, storage: Path) -> None:
    created = upload(client, "kept")
    assert created.status_code == 201, created.text
    voice_id = created.json()["id"]
    with read_only(storage):
        assert_unavailable(client.delete(f"/v1/voices/{voice_id}"), "storage_error")
    assert client.get(f"/v1/voices/{voice_id}").status_code == 200  # the row is back
    assert client.get(f"/v1/voices/{voice_id}/audio").status_code == 200  # and its clip
    assert_no_debris(client)
    assert client.delete(f"/v1/voices/{voice_id}").status_code == 204
    assert_no_debris(client)


def test_a_voice_delete_on_a_full_disk_works(client: TestClient, storage: Path) -> None:
    """Removing a file needs no room."""
    created = upload(client, "gone")
    assert created.status_code == 201, created.text
    with full(storage):
        assert client.delete(f"/v1/voices/{created.json()['id']}").status_code == 204
    assert_no_debris(client)


@pytest.mark.parametrize("fault", STORAGE_FAULTS)
def test_a_job_whose_output_cannot_be_stored_fails_with_the_storage_code(
    tmp_path: Path, database: str, storage: Path, fault: str
) -> None:
    with serving(tmp_path, database, storage) as client:
        with STORAGE_FAULTS[fault](storage):
            body = {"text": "Stored nowhere.", "voice": "narrator"}
            submitted = client.post("/v1/jobs", json=body)
            assert submitted.status_code == 202, submitted.text
            job_url = f"/v1/jobs/{submitted.json()['job_id']}"
            wait_until(
                lambda: client.get(job_url).json()["status"] not in ("queued", "running"),
                "the job never finished",
                timeout=120,
            )
        job = client.get(job_url).json()
        assert job["status"] == "failed"
        assert job["error"]["code"] == "storage_error"
        assert_no_debris(client)


# --------------------------------------------------------------------------- database faults


def test_the_event_loop_answers_while_a_job_claim_waits(
    tmp_path: Path, database: str, storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database.startswith("sqlite"):
        pytest.skip(
            "on PostgreSQL procrastinate's worker claims jobs (not the in-process worker spied "
            "on here); /health under a held lock is checked by the next test"
        )
    with serving(tmp_path, database, storage, database_timeout=30.0, preload=False) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
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
        with locked(database):
            client.portal.call(services.worker.requeued, [job.id])  # type: ignore[union-attr]
            wait_until(claiming.is_set, "the worker never tried to claim the job")
            assert client.get("/health").status_code == 200
            # a claim on the event loop would have held /health until it gave up
            assert not claimed.is_set()
        wait_until(lambda: services.jobs.get(job.id).status != "queued", "the job never ran")


def test_a_locked_database_is_503_with_retry_after_and_leaves_nothing(
    client: TestClient, database: str
) -> None:
    with locked(database):
        assert_unavailable(client.post("/v1/jobs", json=JOB), "database_unavailable")
        assert_unavailable(upload(client, "newcomer"), "database_unavailable")
        assert client.get("/health").status_code == 200
    assert_no_debris(client)  # the clip of the failed upload is gone
    assert client.post("/v1/jobs", json=JOB).status_code == 202


def test_a_database_that_is_down_is_503(client: TestClient, database: str) -> None:
    if database.startswith("sqlite"):
        pytest.skip("SQLite cannot be taken down (see the table at the top of this module)")
    storage = client.app.state.services.storage  # type: ignore[attr-defined]
    stored = storage.list()
    with dropped(database):
        assert_unavailable(client.post("/v1/jobs", json=JOB), "database_unavailable")
        assert_unavailable(client.post("/v1/tts", json=JOB), "database_unavailable")
        assert_unavailable(client.get("/v1/voices"), "database_unavailable")
        assert_unavailable(client.get("/v1/jobs"), "database_unavailable")
        assert_unavailable(upload(client, "newcomer"), "database_unavailable")
        assert client.get("/health").status_code == 200
        assert storage.list() == stored  # the clip of the failed upload is gone


@pytest.mark.slow  # procrastinate gives up on the database after its pool's 30 s
def test_a_worker_is_ready_again_after_a_database_outage(tmp_path: Path) -> None:
    with fresh_postgres() as url:
        upgrade_database(url)
        settings = make_settings(
            tmp_path, database_url=url, run_worker=True, preload=False, job_lease_seconds=1.5
        )
        with TestClient(create_app(settings)) as client:

            def queue() -> str:
                return client.get("/ready").json()["checks"]["queue"]  # type: ignore[no-any-return]

            wait_until(lambda: client.get("/ready").status_code == 200, "never ready", 120)
            assert queue() == "ok"
            with database_outage(url):
                wait_until(lambda: queue() != "ok", "the queue's worker never stopped", 120)
                ready = client.get("/ready")
                assert ready.status_code == 503 and ready.headers["Retry-After"]
                assert ready.json()["checks"]["database"].startswith("unavailable")
            back = utcnow()
            wait_until(lambda: client.get("/ready").status_code == 200, "never ready again", 120)
            assert queue() == "ok"
            sessions = open_database(url)

            def announced() -> bool:
                with sessions() as session:
                    return any(row.heartbeat_at > back for row in session.query(WorkerRow))

            wait_until(announced, "the directory of workers never had it again", 120)
