"""Job ownership: the worker running a job and the expiry of its lease.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("worker_id", sa.String(64)))
        jobs.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True)))
        jobs.create_index("ix_jobs_status_lease", ["status", "lease_expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_index("ix_jobs_status_lease")
        jobs.drop_column("lease_expires_at")
        jobs.drop_column("worker_id")
