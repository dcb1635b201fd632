"""`secondlook purge`: delete expired pending launches, launch sessions and CDS replay rows now
(the server also does this on a schedule, SECONDLOOK_PURGE_INTERVAL_SECONDS)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from sqlalchemy.exc import SQLAlchemyError

from smartapp.config import get_settings
from smartapp.db import create_engine
from smartapp.housekeeping import purge


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("purge", help="delete expired launches, sessions and replay-cache rows")
    parser.add_argument("--database-url", default=None, help="default: SECONDLOOK_DATABASE_URL")


async def _purge(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        return await purge(engine)
    finally:
        await engine.dispose()


def run(args: argparse.Namespace) -> int:
    url = args.database_url or get_settings().database_url
    try:
        counts = asyncio.run(_purge(url))
    except (SQLAlchemyError, OSError) as exc:
        sys.stderr.write(
            f"secondlook purge: cannot purge the database ({type(exc).__name__}); is it created and reachable?\n"
        )
        return 2
    sys.stdout.write(json.dumps({"deleted": counts}) + "\n")
    return 0
