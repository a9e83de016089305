"""Schema migrations (Alembic), configured in code: no ``alembic.ini`` is needed.

Revisions live in ``versions/`` (``0001`` is the schema from before migrations existed). A
database made before migrations (tables, no ``alembic_version``) counts as ``0001`` and is stamped
so on its first upgrade. :func:`f5serve.core.db.open_database` upgrades SQLite by itself and
checks that PostgreSQL is at :func:`head` (``f5serve db upgrade`` moves it there).
"""

from __future__ import annotations

import functools
import logging

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from f5serve.errors import ConfigError

log = logging.getLogger(__name__)

SCRIPTS = "f5serve.core:migrations"
VERSION_TABLE = "alembic_version"  # Alembic's record of the revision
BASELINE = "0001"  # what create_all made before there were migrations
LOCK_ID = 0x46355356  # PostgreSQL advisory lock: one upgrade at a time


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for f5serve's scripts (running on ``connection``)."""
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPTS)
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def revisions() -> tuple[str, ...]:
    """Every revision, oldest first."""
    scripts = ScriptDirectory.from_config(config())
    return tuple(reversed([script.revision for script in scripts.walk_revisions()]))


def head() -> str:
    """The revision this version of f5serve needs."""
    return revisions()[-1]


def current_revision(connection: Connection) -> str | None:
    """The database's revision: None when empty, :data:`BASELINE` when made before migrations."""
    tables = inspect(connection).get_table_names()
    if VERSION_TABLE in tables:
        return connection.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return BASELINE if "jobs" in tables else None


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to :func:`head`; ``(revision before, revision after)``."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
        before = current_revision(connection)
        _check_known(before)
        if before != head():
            _migrate(connection, before)
    return before, head()


def require_head(engine: Engine) -> None:
    """:class:`ConfigError` unless the schema is at :func:`head`."""
    with engine.connect() as connection:
        revision = current_revision(connection)
    _check_known(revision)
    if revision != head():
        at = f"at {revision}" if revision else "empty"
        raise ConfigError(
            f"the database schema is {at}, this version needs {head()}: run `f5serve db upgrade`"
        )


def _migrate(connection: Connection, before: str | None) -> None:
    cfg = config(connection)
    if before == BASELINE and not inspect(connection).has_table(VERSION_TABLE):
        command.stamp(cfg, BASELINE)  # a database from before migrations
    log.info("upgrading the database schema from %s to %s", before or "empty", head())
    command.upgrade(cfg, "head")


def _check_known(revision: str | None) -> None:
    if revision is not None and revision not in revisions():
        raise ConfigError(
            f"the database schema is at {revision}, which this version of f5serve does not know "
            f"(it needs {head()}): a newer f5serve has upgraded it"
        )
