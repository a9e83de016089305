"""PostgreSQL locked or gone: the statement and lock timeouts end a waiting call, every route
that needs the database answers 503 with ``Retry-After`` (never 500 or a hang), and a process
that runs jobs comes back from an outage: ``/ready`` says when it takes no jobs, and its entry in
the directory of workers is kept fresh again."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from fresh_databases import ADMIN_URL, database_outage, fresh_postgres
from sqlalchemy import create_engine, text

from f5serve.core.db import WorkerRow, database_url, open_database, upgrade_database, utcnow
from f5serve.http.app import create_app

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
from helpers import make_settings

pytest.importorskip("psycopg")
JOB = {"text": "Hello there.", "voice": "narrator"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    with fresh_postgres() as url:
        upgrade_database(url)
        settings = make_settings(
            tmp_path, database_url=url, database_timeout=0.5, run_worker=False, preload=False
        )
        with TestClient(create_app(settings)) as client:
            yield client, url


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    assert response.json()["error"]["code"] == "database_unavailable"


def test_a_locked_table_is_503_after_the_lock_timeout(served: tuple[TestClient, str]) -> None:
    client, url = served
    locker = create_engine(database_url(url))
    with locker.connect() as connection, connection.begin():
        connection.execute(text("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE"))
        assert_unavailable(client.post("/v1/jobs", json=JOB))
        assert client.get("/health").status_code == 200
    locker.dispose()
    assert client.post("/v1/jobs", json=JOB).status_code == 202


def test_a_database_that_is_gone_is_503(served: tuple[TestClient, str]) -> None:
    client, url = served
    name = database_url(url).database
    admin = create_engine(database_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        try:
            assert_unavailable(client.post("/v1/jobs", json=JOB))
            assert_unavailable(client.post("/v1/tts", json=JOB))
            assert_unavailable(client.get("/v1/voices"))
            assert_unavailable(client.get("/v1/jobs"))
            assert client.get("/health").status_code == 200
        finally:  # fresh_postgres drops it again
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def poll(condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.1)


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

            poll(lambda: client.get("/ready").status_code == 200)
            assert queue() == "ok"
            with database_outage(url):
                poll(lambda: queue() != "ok")  # procrastinate's worker stopped
                ready = client.get("/ready")
                assert ready.status_code == 503 and ready.headers["Retry-After"]
                assert ready.json()["checks"]["database"].startswith("unavailable")
            back = utcnow()
            poll(lambda: client.get("/ready").status_code == 200)  # started again
            assert queue() == "ok"
            sessions = open_database(url)

            def announced() -> bool:
                with sessions() as session:
                    return any(row.heartbeat_at > back for row in session.query(WorkerRow))

            poll(announced)  # the directory of workers has it again
