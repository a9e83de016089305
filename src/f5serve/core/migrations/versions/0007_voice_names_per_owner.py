"""Voice names unique per owner: two keys may each have a voice called ``narrator``.

The unique constraint on ``voices.name`` becomes two unique indexes, portable to SQLite and every
PostgreSQL version: ``(name, owner)`` for the voices of a key, and ``name`` among the voices with
no owner (the shared voices of the voices directory and those uploaded with no keys), which a
plain ``(name, owner)`` index would not keep apart since NULLs are distinct in it. Existing rows
already have distinct names, so they all fit. Going down is refused while two voices share a
name.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# SQLite's UNIQUE(name) has no name: batch mode names it by this convention to drop it
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
SHARED = sa.text("owner IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("voices", naming_convention=NAMING) as batch:
        batch.drop_constraint(_name_constraint() or "uq_voices_name", type_="unique")
        batch.create_index("uq_voices_name_owner", ["name", "owner"], unique=True)
        batch.create_index(
            "uq_voices_shared_name",
            ["name"],
            unique=True,
            sqlite_where=SHARED,
            postgresql_where=SHARED,
        )


def downgrade() -> None:
    shared = op.get_bind().scalars(
        sa.text("SELECT name FROM voices GROUP BY name HAVING COUNT(*) > 1 ORDER BY name")
    )
    names = list(shared)
    if names:  # refused before anything changes (SQLite does not roll back a table rebuild)
        raise RuntimeError(
            f"cannot go below revision 0007 while voices of several keys share a name "
            f"({', '.join(names)}): rename or delete them first"
        )
    with op.batch_alter_table("voices") as batch:
        batch.drop_index("uq_voices_shared_name")
        batch.drop_index("uq_voices_name_owner")
        batch.create_unique_constraint("voices_name_key", ["name"])


def _name_constraint() -> str | None:
    """The name of the unique constraint on ``name`` (PostgreSQL's ``voices_name_key``; None
    on SQLite, where it has none)."""
    for constraint in sa.inspect(op.get_bind()).get_unique_constraints("voices"):
        if constraint["column_names"] == ["name"]:
            return constraint["name"]
    raise RuntimeError("the voices table has no unique constraint on name")
