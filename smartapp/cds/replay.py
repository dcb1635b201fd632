"""`jti` replay cache in the SQL database, so a JWT replayed to any replica is refused.

The primary key does the work: inserting a (iss, jti) pair that is already there fails, on
SQLite and PostgreSQL alike, without a read-then-write race. Rows live until the token expires.
"""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import Column, Float, String, Table, delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from smartapp.storage import metadata

cds_jti = Table(
    "cds_jti",
    metadata,
    # sha256 of iss + jti: fixed length whatever the client sends.
    Column("key", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False, index=True),
)

PURGE_EVERY_SECONDS = 60.0


class ReplayCache:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._last_purge = 0.0

    async def remember(self, iss: str, jti: str, expires_at: float) -> bool:
        """Record the token id; False if it was seen before (a replay)."""
        key = hashlib.sha256(f"{iss}\n{jti}".encode()).hexdigest()
        now = time.time()
        try:
            async with self._engine.begin() as conn:
                if now - self._last_purge > PURGE_EVERY_SECONDS:
                    self._last_purge = now
                    await conn.execute(delete(cds_jti).where(cds_jti.c.expires_at < now))
                await conn.execute(insert(cds_jti).values(key=key, expires_at=expires_at))
        except IntegrityError:
            return False
        return True


async def purge_replay_rows(engine: AsyncEngine, now: float | None = None) -> int:
    """Deletes replay-cache rows of tokens that have expired; returns how many went."""
    async with engine.begin() as conn:
        gone = await conn.execute(
            delete(cds_jti).where(cds_jti.c.expires_at < (time.time() if now is None else now))
        )
    return int(gone.rowcount)
