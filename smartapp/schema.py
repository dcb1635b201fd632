"""The database schema, moved forward by Alembic migrations (smartapp/migrations): at start-up
and by `secondlook migrate`. A database created before migrations existed (tables, no
`alembic_version`) is stamped at the baseline first, then upgraded. Two app processes starting
together migrate one after the other: an advisory lock on PostgreSQL, a lock file for SQLite."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"
_LOCK_ID = 0x5EC0_1007  # pg_advisory_lock key of the migration step


def target_metadata() -> list[MetaData]:
    """Every table of the app, from the modules that define them (tests/test_migrations.py checks
    that every module defining a table is imported here)."""
    import smartapp.cds.feedback
    import smartapp.cds.replay
    import smartapp.finding_actions
    import smartapp.packet.store
    import smartapp.worklist.access
    import smartapp.worklist.tables  # noqa: F401
    from launch.tables import metadata as launch_metadata
    from smartapp.storage import metadata as app_metadata

    return [launch_metadata, app_metadata]


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> str | None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_ID})
    config = _config(connection)
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" not in tables and "launch_sessions" in tables:
        command.stamp(config, BASELINE)  # made by create_all before migrations existed
    command.upgrade(config, "head")
    return MigrationContext.configure(connection).get_current_revision()


async def migrate(engine: AsyncEngine) -> str | None:
    """Brings the database to the newest schema; returns the revision it is at."""
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:":
        async with engine.begin() as conn:
            return await conn.run_sync(_upgrade)
    # SQLite has no advisory lock: a lock file beside the database serialises processes on this host.
    lock = await asyncio.to_thread(_lock_file, Path(f"{database}.migrate.lock"))
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(_upgrade)
    finally:
        await asyncio.to_thread(_unlock_file, lock)


def _lock_file(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _unlock_file(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
