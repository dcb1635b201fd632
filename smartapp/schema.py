"""The database schema, moved forward by Alembic migrations (smartapp/migrations): at start-up
and by `secondlook migrate`. A database created before migrations existed (tables, no
`alembic_version`) is stamped at the baseline first, then upgraded. Two app processes starting
together migrate one after the other: an advisory lock on PostgreSQL, a lock file for SQLite.
After the upgrade, values an older version left clear in encrypted columns are encrypted."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import URL, Connection, Engine, MetaData, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from smartapp.encryption import dialect_cipher
from smartapp.sealing import encrypted_columns, seal_clear_values

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"
_LOCK_ID = 0x5EC0_1007  # pg_advisory_lock key of the migration step
log = logging.getLogger(__name__)


def target_metadata() -> list[MetaData]:
    """Every table of the app, from the modules that define them (tests/test_migrations.py checks
    that every module defining a table is imported here)."""
    import smartapp.cds.feedback
    import smartapp.cds.replay
    import smartapp.finding_decisions
    import smartapp.packet.delivery
    import smartapp.packet.outside_report
    import smartapp.packet.store
    import smartapp.packet.tracking
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
    # A replica of an older version may have written clear values after the migration to
    # encryption ran (a rolling upgrade); they are encrypted at the next start or `secondlook migrate`.
    sealed = seal_clear_values(
        connection, dialect_cipher(connection.dialect), encrypted_columns(target_metadata())
    )
    if sealed:
        log.warning("encrypted %d clear values left in encrypted columns by an older version", sealed)
    return MigrationContext.configure(connection).get_current_revision()


def _downgrade_to(revision: str) -> Callable[[Connection], str | None]:
    def step(connection: Connection) -> str | None:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_ID})
        command.downgrade(_config(connection), revision)
        return MigrationContext.configure(connection).get_current_revision()

    return step


def _migrating(step: Callable[[Connection], str | None]) -> Callable[[Connection], str | None]:
    """Runs a migration step in one transaction; on SQLite with foreign keys off meanwhile."""

    def run(connection: Connection) -> str | None:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite changes a column's type by rebuilding the table (Alembic batch mode); dropping
            # the old copy of a table that others reference would, with foreign keys on, delete
            # their rows through ON DELETE CASCADE
            # (https://www.sqlite.org/foreignkeys.html#fk_schemacommands). The pragma has no
            # effect inside a transaction, so it is set before the migration's.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                revision = step(connection)
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise RuntimeError("the migration left rows whose foreign keys point nowhere")
            return revision
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()

    return run


def _lock_path(url: URL) -> Path | None:
    # SQLite has no advisory lock: a lock file beside the database serialises processes on this host.
    database = url.database if url.get_backend_name() == "sqlite" else None
    return Path(f"{database}.migrate.lock") if database and database != ":memory:" else None


async def migrate(engine: AsyncEngine) -> str | None:
    """Brings the database to the newest schema; returns the revision it is at."""
    return await _run(engine, _upgrade)


async def downgrade(engine: AsyncEngine, revision: str) -> str | None:
    """Takes the database back to `revision` (before rolling back to an older version of the app);
    returns the revision it is at. Revision 0005's downgrade decrypts the patient data."""
    return await _run(engine, _downgrade_to(revision))


async def _run(engine: AsyncEngine, step: Callable[[Connection], str | None]) -> str | None:
    path = _lock_path(engine.url)
    lock = await asyncio.to_thread(_lock_file, path) if path else None
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_migrating(step))
    finally:
        if lock is not None:
            await asyncio.to_thread(_unlock_file, lock)


def migrate_sync(engine: Engine) -> str | None:
    """`migrate` for a blocking engine (batch jobs such as `secondlook screen`)."""
    path = _lock_path(engine.url)
    lock = _lock_file(path) if path else None
    try:
        with engine.connect() as conn:
            return _migrating(_upgrade)(conn)
    finally:
        if lock is not None:
            _unlock_file(lock)


def _lock_file(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _unlock_file(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
