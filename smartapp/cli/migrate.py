"""`secondlook migrate`: bring the database to the newest schema (the server also does this at
start-up), and print the revision it is at."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from sqlalchemy.exc import SQLAlchemyError

from smartapp.config import get_settings
from smartapp.db import create_engine
from smartapp.schema import migrate


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("migrate", help="apply database migrations")
    parser.add_argument("--database-url", default=None, help="default: SECONDLOOK_DATABASE_URL")


async def _migrate(url: str) -> str | None:
    engine = create_engine(url)
    try:
        return await migrate(engine)
    finally:
        await engine.dispose()


def run(args: argparse.Namespace) -> int:
    url = args.database_url or get_settings().database_url
    try:
        revision = asyncio.run(_migrate(url))
    except (SQLAlchemyError, OSError) as exc:
        sys.stderr.write(
            f"secondlook migrate: the database could not be migrated ({type(exc).__name__}); is it reachable?\n"
        )
        return 2
    sys.stdout.write(json.dumps({"revision": revision}) + "\n")
    return 0
