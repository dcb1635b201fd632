"""Shared by the database maintenance commands (`secondlook migrate`, `secondlook purge`): open the
configured database, run one step, close it, and turn a database failure into one line and exit 2."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from smartapp.config import get_settings
from smartapp.db import create_engine


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=None, help="default: SECONDLOOK_DATABASE_URL")


async def _on_engine(url: str, step: Callable[[AsyncEngine], Awaitable[Any]]) -> Any:
    engine = create_engine(url)
    try:
        return await step(engine)
    finally:
        await engine.dispose()


def run_step(
    args: argparse.Namespace,
    command: str,
    step: Callable[[AsyncEngine], Awaitable[Any]],
    key: str,
    failure: str,
) -> int:
    """Runs `step` on the database and prints `{key: result}` as JSON; `failure` words the error."""
    url = args.database_url or get_settings().database_url
    try:
        result = asyncio.run(_on_engine(url, step))
    except (SQLAlchemyError, OSError) as exc:
        sys.stderr.write(f"secondlook {command}: {failure} ({type(exc).__name__})\n")
        return 2
    sys.stdout.write(json.dumps({key: result}) + "\n")
    return 0
