"""Distributed jobs: the queue of each job (``tts.<model>``) and, on PostgreSQL, procrastinate's
schema (its tables, types and functions, named ``procrastinate_*``).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from f5serve.errors import ConfigError

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Every object procrastinate's schema makes is named procrastinate_*: drop them all (downgrade).
DROP_PROCRASTINATE = r"""
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind = 'r'
               AND c.relname LIKE 'procrastinate\_%' LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', r.relname);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\_%' LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.signature);
    END LOOP;
    FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'c')
               AND t.typname LIKE 'procrastinate\_%' LOOP
        EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname);
    END LOOP;
END $$;
"""


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("queue", sa.String(128)))
    if op.get_bind().dialect.name == "postgresql":
        _driver_execute(_procrastinate_schema())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _driver_execute(DROP_PROCRASTINATE)
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("queue")


def _procrastinate_schema() -> str:
    try:
        from procrastinate.schema import SchemaManager
    except ImportError:
        raise ConfigError(
            "jobs on PostgreSQL run on procrastinate, which is not installed: "
            "pip install 'f5serve[postgres]'"
        ) from None
    return SchemaManager.get_schema()


def _driver_execute(script: str) -> None:
    """Run a multi-statement script as is (no bind parameters) in the migration's transaction."""
    op.get_bind().connection.driver_connection.execute(script)  # type: ignore[union-attr]
