"""Alembic's entry point: runs the migrations on the connection f5serve hands it.

There is no ``alembic.ini``: :mod:`f5serve.core.migrations` builds the configuration in code and
puts an open connection in ``config.attributes["connection"]``.
"""

from alembic import context

from f5serve.core.db import Base

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
