"""Expired pending launches, sessions and CDS replay rows are purged (on a schedule and by
`secondlook purge`), on SQLite and PostgreSQL; live rows and every other table are untouched."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from launch.crypto import TokenCipher, generate_key
from launch.sessions import SessionStore
from launch.sessions import metadata as launch_metadata
from launch.tables import launch_sessions, pending_launches
from smartapp.cds.replay import ReplayCache, cds_jti
from smartapp.cli.main import main
from smartapp.db import create_engine, create_tables
from smartapp.housekeeping import purge, purge_every
from smartapp.storage import metadata as app_metadata
from smartapp.worklist.tables import worklist_audit
from tests.launch.test_sessions import new_session, pending
from tests.support import database_params

# A key of these tests alone (the engine needs one; these tests do not depend on its value).
CIPHER = TokenCipher([generate_key()])


@pytest.fixture(params=database_params())
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'purge.db'}" if request.param == "sqlite" else request.param
    created = create_engine(url, CIPHER)
    async with created.begin() as conn:
        await conn.run_sync(launch_metadata.drop_all)
        await conn.run_sync(app_metadata.drop_all)
    await create_tables(created, launch_metadata, app_metadata)
    yield created
    await created.dispose()


async def _count(engine: AsyncEngine, table) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def _seed(engine: AsyncEngine) -> None:
    store = SessionStore(engine, TokenCipher([generate_key()]))
    await store.add_pending(pending("old", minutes=-1), "n1")
    await store.add_pending(pending("live", minutes=10), "n2")
    await new_session(store)  # lives 12 h
    old_store = SessionStore(
        engine, TokenCipher([generate_key()]), clock=lambda: datetime.now(UTC) - timedelta(hours=13)
    )
    await new_session(old_store)  # expired an hour ago
    replay = ReplayCache(engine)
    assert await replay.remember("https://a.test", "old-jti", time.time() - 5)
    assert await replay.remember("https://a.test", "live-jti", time.time() + 300)
    async with engine.begin() as conn:
        await conn.execute(
            insert(worklist_audit).values(
                at=datetime.now(UTC) - timedelta(days=400),
                iss="https://a.test",
                actor="Practitioner/c1",
                action="view-worklist",
            )
        )


async def test_purge_deletes_only_expired_rows(engine: AsyncEngine) -> None:
    await _seed(engine)
    assert await purge(engine) == {"pending_launches": 1, "launch_sessions": 1, "cds_jti": 1}
    assert [
        await _count(engine, t) for t in (pending_launches, launch_sessions, cds_jti, worklist_audit)
    ] == [1, 1, 1, 1]
    assert await purge(engine) == {"pending_launches": 0, "launch_sessions": 0, "cds_jti": 0}


async def test_the_schedule_purges_while_running(engine: AsyncEngine) -> None:
    await _seed(engine)
    task = asyncio.create_task(purge_every(engine, 0.05))
    try:
        for _ in range(100):
            if await _count(engine, pending_launches) == 1:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert await _count(engine, pending_launches) == 1 and await _count(engine, cds_jti) == 1


def test_secondlook_purge_prints_what_it_deleted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"

    async def seed() -> None:
        engine = create_engine(url, CIPHER)
        await create_tables(engine, launch_metadata, app_metadata)
        await _seed(engine)
        await engine.dispose()

    asyncio.run(seed())
    assert main(["purge", "--database-url", url]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "deleted": {"pending_launches": 1, "launch_sessions": 1, "cds_jti": 1}
    }


def test_secondlook_purge_on_a_database_without_tables_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["purge", "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"]) == 2
    err = capsys.readouterr().err
    assert "cannot purge the database" in err and "Traceback" not in err
