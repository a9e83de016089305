"""A pronunciation dictionary per voice.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("voices") as voices:
        voices.add_column(sa.Column("pronunciations", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("voices") as voices:
        voices.drop_column("pronunciations")
