"""Empty databases for tests: a SQLite file, or a new database on the machine's PostgreSQL.

The PostgreSQL server is ``F5SERVE_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``); each database gets a random name and is dropped
afterwards, so tests never share one. Without a reachable server (or without psycopg) the test is
skipped, with the reason printed. :func:`database_outage` takes one of them away for a while.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from f5serve.core.db import database_url

ADMIN_URL = os.environ.get("F5SERVE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped on exit."""
    pytest.importorskip("psycopg")
    admin = create_engine(database_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
    name = f"f5serve_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as exc:
        admin.dispose()
        pytest.skip(f"no PostgreSQL server at {ADMIN_URL}: {str(exc).splitlines()[0]}")
    try:
        yield database_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database_outage(url: str) -> Iterator[None]:
    """The database at ``url`` refuses new connections and its open ones are cut, until exit.

    A real outage for its clients (their connections end, new ones fail) while the server, and
    every other database on it, keeps running."""
    name = database_url(url).database
    admin = create_engine(database_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
    cut = text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = :name AND pid <> pg_backend_pid()"
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(cut, {"name": name})
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
