"""Scheduled clean-up of rows that only matter until they expire: pending launches, launch sessions
(with their encrypted tokens) and CDS replay-cache entries. Nothing else is ever deleted here."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from launch.sessions import purge_expired
from smartapp.cds.replay import purge_replay_rows

log = logging.getLogger("secondlook.housekeeping")


async def purge(engine: AsyncEngine, now: datetime | None = None) -> dict[str, int]:
    """Rows deleted per table."""
    at = now or datetime.now(UTC)
    counts = await purge_expired(engine, at)
    counts["cds_jti"] = await purge_replay_rows(engine, at.timestamp())
    return counts


async def purge_every(engine: AsyncEngine, seconds: float) -> None:
    """Runs `purge` every `seconds` until cancelled; a failed round is logged and retried next time."""
    while True:
        try:
            counts = await purge(engine)
            if any(counts.values()):
                log.info("purged expired rows", extra={"counts": counts})
        except Exception as exc:  # the next round tries again; the app keeps serving
            log.warning("purge failed: %s", type(exc).__name__)
        await asyncio.sleep(seconds)
