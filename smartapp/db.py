"""The app's SQL engine: SQLite file by default, PostgreSQL by URL. `launch` receives its engine
from the app and never opens one itself; the schema is migrated by smartapp.schema. Every engine
carries the cipher of the encrypted columns (smartapp.encryption)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, MetaData, event
from sqlalchemy import create_engine as create_sync_engine_
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from launch.crypto import TokenCipher
from smartapp.encryption import attach_cipher


def create_engine(database_url: str, cipher: TokenCipher) -> AsyncEngine:
    engine = _create_async_engine(database_url)
    attach_cipher(engine.dialect, cipher)
    return engine


def _create_async_engine(database_url: str) -> AsyncEngine:
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


def create_sync_engine(database_url: str, cipher: TokenCipher) -> Engine:
    engine = _create_sync_engine(database_url)
    attach_cipher(engine.dialect, cipher)
    return engine


def _create_sync_engine(database_url: str) -> Engine:
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


async def create_tables(engine: AsyncEngine, *metadatas: MetaData) -> None:
    """Creates missing tables straight from the models: for tests and throwaway databases only.
    The app itself moves its schema with Alembic migrations (smartapp.schema.migrate)."""
    async with engine.begin() as conn:
        for metadata in metadatas:
            await conn.run_sync(metadata.create_all)
