"""The database: SQLAlchemy tables of jobs, voices, workers and API keys (SQLite by default,
PostgreSQL by URL).

``postgresql://user:password@host/db`` (or ``postgres://``) uses the psycopg 3 driver, the
``postgres`` extra. The schema is made and changed by the migrations of
:mod:`f5serve.core.migrations`: a SQLite database is upgraded when it is opened, a PostgreSQL one
by ``f5serve db upgrade`` (opening one that is behind is a :class:`ConfigError`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import URL, Engine, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from f5serve.core import migrations
from f5serve.core.storage.base import StorageError
from f5serve.errors import ConfigError

PSYCOPG = "postgresql+psycopg"  # the driver of postgresql:// URLs
LANGUAGE_CHARS = 16  # the length of a voice's language column


def utcnow() -> datetime:
    """The current time in UTC (timezone-aware)."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of f5serve's tables."""


class JobRow(Base):
    """One job: its request, its state, its progress and its result."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    chunk: Mapped[int] = mapped_column(Integer, default=0)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    step: Mapped[int] = mapped_column(Integer, default=0)
    steps: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    worker_id: Mapped[str | None] = mapped_column(String(64))  # the worker running it
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    queue: Mapped[str | None] = mapped_column(String(128))  # tts.<model>, where it waits to run
    # the API key that submitted it (None: submitted with no keys configured, or before keys
    # were tenants)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)

    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_status_lease", "status", "lease_expires_at"),
    )


class VoiceRow(Base):
    """A voice of the library: a cleaned 24 kHz reference clip and its transcript."""

    __tablename__ = "voices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    ref_text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(LANGUAGE_CHARS))
    source: Mapped[str] = mapped_column(String(16))  # "upload" or "directory"
    audio_key: Mapped[str] = mapped_column(String(256))
    duration: Mapped[float] = mapped_column(Float)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # {word or /pattern/: replacement} applied to text spoken in this voice
    pronunciations: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # the API key that uploaded it (None: a voice of the voices directory, or uploaded with no
    # keys configured)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)


class WorkerRow(Base):
    """A process that serves synthesis over HTTP (a worker), as it last announced itself."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(String(256))  # where API replicas reach it
    models: Mapped[list[str]] = mapped_column(JSON)  # the models it serves (empty: every model)
    capacity: Mapped[int] = mapped_column(Integer)  # requests and jobs it runs at once
    in_flight: Mapped[int] = mapped_column(Integer)  # requests and jobs it ran at its heartbeat
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ApiKeyRow(Base):
    """An API key (a tenant): only the SHA-256 of the key is stored, and its first characters
    for display."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    admin: Mapped[bool] = mapped_column(Boolean)
    # None: the server's default (key_requests_per_minute, key_audio_seconds_per_day)
    requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    audio_seconds_per_day: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class KeyUsageRow(Base):
    """What a key used in its current window of one period ("minute" or "day", UTC): one row
    per key and period, started again when a new window begins."""

    __tablename__ = "key_usage"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger)  # seconds since the epoch // period length
    requests: Mapped[int] = mapped_column(Integer)
    audio_seconds: Mapped[float] = mapped_column(Float)


def open_database(url: str, timeout: float | None = None) -> sessionmaker[Session]:
    """Connect to ``url``, check (PostgreSQL) or upgrade (SQLite) the schema, and return a
    session factory.

    With ``timeout``, a call waits at most that many seconds for a lock (SQLite's busy timeout,
    PostgreSQL's ``lock_timeout``) or for a statement to run (PostgreSQL's
    ``statement_timeout``). From then on a database that cannot be reached, is locked past the
    timeout or refuses to write raises :class:`DatabaseUnavailable` (503).

    :class:`ConfigError` for a URL that cannot be used (or a missing driver) or a PostgreSQL
    schema that is behind, :class:`StorageError` when the database cannot be reached."""
    parsed = database_url(url)
    engine = _make_engine(parsed, timeout)
    if parsed.get_backend_name() == "sqlite":
        _reach(parsed, migrations.upgrade, engine)
    else:
        _reach(parsed, migrations.require_head, engine)
    event.listen(engine, "handle_error", _unavailable)
    return sessionmaker(engine, expire_on_commit=False)


class DatabaseUnavailable(StorageError):
    """The database cannot be reached, stayed locked past the timeout or refuses to write."""

    code = "database_unavailable"


def _unavailable(context: ExceptionContext) -> None:
    """``handle_error`` hook: operational failures (connection, lock, timeout, read-only) as
    :class:`DatabaseUnavailable`; a failed pre-ping is left to the pool, which reconnects."""
    if context.is_pre_ping or not isinstance(context.sqlalchemy_exception, OperationalError):
        return
    reason = str(context.original_exception).strip().splitlines()[0]
    raise DatabaseUnavailable(f"the database is unavailable: {reason}") from None


def upgrade_database(url: str) -> tuple[str | None, str]:
    """``f5serve db upgrade``: the schema at ``url`` brought to the newest revision;
    ``(revision before, revision after)``."""
    parsed = database_url(url)
    engine = _make_engine(parsed)
    try:
        return _reach(parsed, migrations.upgrade, engine)
    finally:
        engine.dispose()


def database_revision(url: str) -> str | None:
    """``f5serve db current``: the schema revision at ``url`` (None for an empty database)."""
    parsed = database_url(url)
    engine = _make_engine(parsed)
    try:
        with _reach(parsed, engine.connect) as connection:
            return migrations.current_revision(connection)
    finally:
        engine.dispose()


T = TypeVar("T")


def _reach(parsed: URL, action: Callable[..., T], *args: Any) -> T:
    """``action(*args)``, a database that cannot be reached raised as :class:`StorageError`."""
    try:
        return action(*args)
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise StorageError(
            f"cannot open the database {parsed.render_as_string(hide_password=True)}: {reason}"
        ) from None


def database_url(url: str) -> URL:
    """``url`` parsed, PostgreSQL URLs pointed at the psycopg 3 driver."""
    if url.startswith("postgres://"):  # the scheme Heroku and others hand out
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "the database URL is not valid: use sqlite:///path or postgresql://user@host/db"
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername=PSYCOPG)
    return parsed


def _make_engine(parsed: URL, timeout: float | None = None) -> Engine:
    if parsed.get_backend_name() != "sqlite":
        try:
            return create_engine(parsed, pool_pre_ping=True, connect_args=_pg_timeouts(timeout))
        except NoSuchModuleError:
            raise ConfigError(
                f"unknown database {parsed.drivername!r}: use sqlite:/// or postgresql://"
            ) from None
        except ImportError as exc:
            hint = ": pip install 'f5serve[postgres]'" if parsed.drivername == PSYCOPG else ""
            raise ConfigError(
                f"the database driver of {parsed.drivername} ({exc.name}) is not installed{hint}"
            ) from None
    if parsed.database and parsed.database != ":memory:":
        try:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the database folder for {parsed}: {exc}") from exc
    busy = 30.0 if timeout is None else timeout
    engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": busy})

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        cursor.execute("PRAGMA synchronous=FULL")  # a commit survives a crash of the machine
        cursor.close()

    return engine


def _pg_timeouts(timeout: float | None) -> dict[str, Any]:
    """libpq connection arguments: connect, lock and statement timeouts of ``timeout`` s."""
    if timeout is None:
        return {}
    ms = max(1, round(timeout * 1000))
    return {
        "connect_timeout": max(1, round(timeout)),
        "options": f"-c lock_timeout={ms} -c statement_timeout={ms}",
    }
