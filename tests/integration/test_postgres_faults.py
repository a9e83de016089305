"""PostgreSQL locked or gone: the statement and lock timeouts end a waiting call, and every
route that needs the database answers 503 with ``Retry-After`` (never 500 or a hang)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from fresh_databases import ADMIN_URL, fresh_postgres
from sqlalchemy import create_engine, text

from f5serve.core.db import database_url, upgrade_database
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
