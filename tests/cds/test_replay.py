"""The jti replay cache works across replicas: two caches on one database share what they saw."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

from launch.crypto import TokenCipher, generate_key
from smartapp.cds.replay import ReplayCache
from smartapp.db import create_engine, create_tables
from smartapp.storage import metadata

# A key of these tests alone (the engine needs one; these tests do not depend on its value).
CIPHER = TokenCipher([generate_key()])

POSTGRES_ENV = "SECONDLOOK_TEST_POSTGRES_URL"


def database_urls(tmp_path: Path) -> list[str]:
    urls = [f"sqlite+aiosqlite:///{tmp_path / 'replay.db'}"]
    if os.environ.get(POSTGRES_ENV):
        urls.append(os.environ[POSTGRES_ENV])
    return urls


async def test_replay_detected_across_two_replicas(tmp_path: Path) -> None:
    for url in database_urls(tmp_path):
        engine = create_engine(url, CIPHER)
        try:
            await create_tables(engine, metadata)
            first, second = ReplayCache(engine), ReplayCache(engine)
            jti, expires = str(uuid.uuid4()), time.time() + 300
            assert await first.remember("https://a.test", jti, expires)
            assert not await second.remember("https://a.test", jti, expires)
            assert await second.remember("https://b.test", jti, expires)  # the same jti from another issuer
        finally:
            await engine.dispose()


async def test_concurrent_replays_let_exactly_one_through(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'race.db'}", CIPHER)
    try:
        await create_tables(engine, metadata)
        caches = [ReplayCache(engine) for _ in range(5)]
        jti = str(uuid.uuid4())
        results = await asyncio.gather(
            *(c.remember("https://a.test", jti, time.time() + 300) for c in caches)
        )
        assert sorted(results) == [False, False, False, False, True]
    finally:
        await engine.dispose()


async def test_expired_entries_are_purged(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'purge.db'}", CIPHER)
    try:
        await create_tables(engine, metadata)
        cache = ReplayCache(engine)
        assert await cache.remember("https://a.test", "old", time.time() - 120)
        cache._last_purge = 0.0  # the next insert purges
        assert await cache.remember("https://a.test", "new", time.time() + 300)
        assert await cache.remember("https://a.test", "old", time.time() + 300)  # gone, so accepted again
    finally:
        await engine.dispose()
