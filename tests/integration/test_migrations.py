"""Schema migrations on SQLite and on the machine's PostgreSQL: a fresh database goes to head, a
database made before migrations keeps its jobs and voices, PostgreSQL behind is a clear error,
and ``f5serve db upgrade`` / ``f5serve db current`` work from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, create_engine, text

from f5serve.core import migrations
from f5serve.core.db import (
    Base,
    VoiceRow,
    database_revision,
    database_url,
    open_database,
    upgrade_database,
)
from f5serve.core.jobs.store import QUEUED, JobStore
from f5serve.errors import ConfigError

FIXTURES = Path(__file__).parents[1] / "fixtures"
F5SERVE = Path(sys.executable).parent / "f5serve"
HEAD = migrations.head()


def engine_of(url: str) -> Engine:
    return create_engine(database_url(url))


def make_database_before_migrations(url: str) -> None:
    """The tables exactly as f5serve made them with create_all before migrations existed, with
    a running job, a finished one and a voice in them."""
    engine = engine_of(url)
    ddl = (FIXTURES / f"schema_before_migrations_{engine.dialect.name}.sql").read_text()
    with engine.begin() as conn:
        for statement in ddl.split(";"):
            if statement.strip():
                conn.execute(text(statement))
        conn.execute(
            text(
                "INSERT INTO jobs (id, status, request, created_at, started_at, attempts, "
                "progress, chunk, chunks, step, steps) VALUES "
                "('old-running', 'running', '{\"text\": \"Hi.\"}', :t, :t, 1, 0.5, 1, 2, 3, 8),"
                "('old-done', 'succeeded', '{\"text\": \"Yo.\"}', :t, :t, 1, 1.0, 1, 1, 8, 8)"
            ),
            {"t": "2026-01-02 03:04:05"},
        )
        conn.execute(
            text(
                "INSERT INTO voices (id, name, ref_text, source, audio_key, duration, sha256, "
                "created_at, updated_at) VALUES ('v1', 'narrator', 'Some words.', 'upload', "
                "'voices/v1.wav', 3.5, 'abc', :t, :t)"
            ),
            {"t": "2026-01-02 03:04:05"},
        )
    engine.dispose()


def ours(name: str | None, type_: str, parent_names: object) -> bool:
    """f5serve's own tables (procrastinate's, on PostgreSQL, are procrastinate's business)."""
    return not (type_ == "table" and (name or "").startswith("procrastinate_"))


def schema_differences(url: str, metadata: MetaData) -> list[object]:
    """What separates the database's tables from ``metadata`` (Alembic's autogenerate diff)."""
    engine = engine_of(url)
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_name": ours}
        context = MigrationContext.configure(conn, opts=opts)
        diff = [d for d in compare_metadata(context, metadata) if "alembic_version" not in str(d)]
    engine.dispose()
    return diff


def f5serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(F5SERVE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_a_fresh_database_is_migrated_to_head_and_matches_the_models(empty_database: str) -> None:
    assert database_revision(empty_database) is None
    assert upgrade_database(empty_database) == (None, HEAD)
    assert database_revision(empty_database) == HEAD
    assert schema_differences(empty_database, Base.metadata) == []
    assert upgrade_database(empty_database) == (HEAD, HEAD)  # a second upgrade changes nothing


def test_revision_1_is_the_schema_made_before_migrations(empty_database: str) -> None:
    make_database_before_migrations(empty_database)
    engine = engine_of(empty_database)
    before = MetaData()
    before.reflect(engine)
    with engine.begin() as conn:
        before.drop_all(conn)
        command.upgrade(migrations.config(conn), "0001")
    engine.dispose()
    assert schema_differences(empty_database, before) == []


def test_migrations_go_down_and_up_again(empty_database: str) -> None:
    upgrade_database(empty_database)
    engine = engine_of(empty_database)
    with engine.begin() as conn:
        command.downgrade(migrations.config(conn), "0001")
    engine.dispose()
    assert database_revision(empty_database) == "0001"
    assert upgrade_database(empty_database) == ("0001", HEAD)


def test_a_sqlite_database_from_before_migrations_is_upgraded_when_opened(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    make_database_before_migrations(url)
    assert database_revision(url) == migrations.BASELINE
    sessions = open_database(url)
    assert database_revision(url) == HEAD
    assert_old_rows_are_intact(JobStore(sessions))


def test_a_postgresql_database_from_before_migrations_is_upgraded_by_the_cli(
    postgres_url: str,
) -> None:
    make_database_before_migrations(postgres_url)
    with pytest.raises(ConfigError) as behind:
        open_database(postgres_url)
    assert behind.value.message == (
        f"the database schema is at 0001, this version needs {HEAD}: run `f5serve db upgrade`"
    )
    current = f5serve("db", "current", "--database-url", postgres_url)
    assert current.returncode == 0 and current.stdout == f"0001 (needs upgrade to {HEAD})\n"
    # the URL comes from F5SERVE_DATABASE_URL, as for `serve`
    upgraded = f5serve("db", "upgrade", env={"F5SERVE_DATABASE_URL": postgres_url})
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"upgraded the database schema from 0001 to {HEAD}" in upgraded.stderr
    current = f5serve("db", "current", "--database-url", postgres_url)
    assert current.stdout == f"{HEAD} (head)\n"
    assert_old_rows_are_intact(JobStore(open_database(postgres_url)))


def assert_old_rows_are_intact(store: JobStore) -> None:
    done = store.get("old-done")
    assert done.status == "succeeded" and done.request == {"text": "Yo."}
    assert done.owner is None  # made before keys were tenants: the admins' only
    assert store.get("old-running").worker_id is None  # it ran before leases existed
    assert store.requeue_expired() == ["old-running"]  # so its worker counts as gone
    assert store.get("old-running").status == QUEUED
    with store.sessions() as session:
        voice = session.get(VoiceRow, "v1")
    assert voice is not None and voice.name == "narrator" and voice.duration == 3.5
    assert voice.owner is None


def test_postgresql_behind_stops_the_server_with_one_line(postgres_url: str) -> None:
    with pytest.raises(ConfigError, match=r"schema is empty, this version needs .* db upgrade"):
        open_database(postgres_url)
    served = f5serve("serve", "--database-url", postgres_url, "--no-preload", "--port", "1")
    assert served.returncode == 1
    assert served.stderr == (
        f"error: the database schema is empty, this version needs {HEAD}: "
        "run `f5serve db upgrade`\n"
    )


def test_a_schema_newer_than_this_version_is_refused(empty_database: str) -> None:
    upgrade_database(empty_database)
    engine = engine_of(empty_database)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    for action in (open_database, upgrade_database):
        with pytest.raises(ConfigError, match="at 9999, which this version of f5serve does not"):
            action(empty_database)
