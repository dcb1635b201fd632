"""Alembic environment: migrations run on the connection the app hands over (smartapp.schema)."""

from __future__ import annotations

from alembic import context

from smartapp.schema import target_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=target_metadata(), render_as_batch=True, compare_type=True
)
with context.begin_transaction():
    context.run_migrations()
