"""A pronunciation dictionary per voice.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("voices") as voices:
        voices.add_column(sa.Column("pronunciations", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("voices") as voices:
        voices.drop_column("pronunciations")
