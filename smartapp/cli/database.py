"""Shared by the database maintenance commands (`secondlook migrate`, `purge`, `rotate-keys`): open
the configured database with the app's encryption keys, run one step, close it, and turn a
failure into one line and an exit code (2: configuration or database; a step's own code
otherwise)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from launch.crypto import TokenCipher
from smartapp.config import Settings
from smartapp.db import create_engine
from smartapp.keyring import token_keys


class StepFailed(Exception):
    """The step ran and found a problem; the message is the line to print."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=None, help="default: SECONDLOOK_DATABASE_URL")


async def _on_engine(url: str, cipher: TokenCipher, step: Callable[[AsyncEngine], Awaitable[Any]]) -> Any:
    engine = create_engine(url, cipher)
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
    # Unusable settings or keys raise to smartapp.cli.main, which says so in one line.
    settings = Settings()
    if args.database_url:
        settings = settings.model_copy(update={"database_url": args.database_url})
    cipher = TokenCipher(token_keys(settings))
    try:
        result = asyncio.run(_on_engine(settings.database_url, cipher, step))
    except StepFailed as exc:
        sys.stderr.write(f"secondlook {command}: {exc}\n")
        return exc.exit_code
    except (SQLAlchemyError, OSError) as exc:
        sys.stderr.write(f"secondlook {command}: {failure} ({type(exc).__name__})\n")
        return 2
    sys.stdout.write(json.dumps({key: result}) + "\n")
    return 0
