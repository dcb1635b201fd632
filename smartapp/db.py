"""The app's SQL engine: SQLite file by default, PostgreSQL by URL. Tables of every layer are
created here, because `launch` receives its engine from the app and never opens one itself."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, MetaData, event, inspect, text
from sqlalchemy import create_engine as create_sync_engine_
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def create_engine(database_url: str) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # WAL lets page reads proceed while a refresh writes; foreign keys are off by default.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True)


# Blocking drivers for the same URLs, for batch jobs (`secondlook screen`) that run outside an event loop.
_SYNC_DRIVERS = {"sqlite+aiosqlite": "sqlite", "postgresql+asyncpg": "postgresql+psycopg"}


def create_sync_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    url = url.set(drivername=_SYNC_DRIVERS.get(url.drivername, url.drivername))
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_sync_engine_(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_sync_engine_(url, pool_pre_ping=True)


def create_tables_sync(engine: Engine, *metadatas: MetaData) -> None:
    """`create_tables` for a blocking engine."""
    with engine.begin() as conn:
        for metadata in metadatas:
            metadata.create_all(conn)
            _add_missing_columns(conn, metadata)


async def create_tables(engine: AsyncEngine, *metadatas: MetaData) -> None:
    """Creates missing tables, and adds columns that a newer release added to an existing table
    (nullable ones only; anything else would need a real migration, and says so)."""
    async with engine.begin() as conn:
        for metadata in metadatas:
            await conn.run_sync(metadata.create_all)
            await conn.run_sync(_add_missing_columns, metadata)


def _add_missing_columns(conn: Connection, metadata: MetaData) -> None:
    inspector = inspect(conn)
    quote = conn.dialect.identifier_preparer.quote
    for table in metadata.sorted_tables:
        existing = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in existing:
                continue
            if not column.nullable:
                raise RuntimeError(f"table {table.name} lacks required column {column.name}: migrate the database")
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {kind}"))
