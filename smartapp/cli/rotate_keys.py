"""`secondlook rotate-keys`: re-encrypt every encrypted value (patient data and launch tokens)
under the newest key of SECONDLOOK_SECRET_KEY, so the older keys can then be removed; prints
the counts. `--check` writes nothing: it counts the values still under an older key and names the
first value no configured key decrypts (exit 1). Procedure: docs/security.md, "Key rotation"."""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from smartapp.cli.database import StepFailed, add_database_option, run_step
from smartapp.encryption import dialect_cipher
from smartapp.schema import target_metadata
from smartapp.sealing import UnreadableRow, encrypted_columns, rotate


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "rotate-keys", help="re-encrypt patient data and tokens under the newest SECONDLOOK_SECRET_KEY key"
    )
    add_database_option(parser)
    parser.add_argument(
        "--check", action="store_true", help="only count values under older keys; change nothing"
    )


async def rotate_all(engine: AsyncEngine, *, check: bool = False) -> dict[str, Any]:
    columns = encrypted_columns(target_metadata())
    try:
        async with engine.connect() as conn:
            done = await conn.run_sync(
                lambda sync: rotate(sync, dialect_cipher(sync.dialect), columns, check=check)
            )
    except UnreadableRow as exc:
        stopped = "" if check else "; stopped there (values re-encrypted before it stay readable)"
        raise StepFailed(f"{exc}{stopped}") from exc
    return done.to_json()


def run(args: argparse.Namespace) -> int:
    return run_step(
        args,
        "rotate-keys",
        partial(rotate_all, check=args.check),
        "checked" if args.check else "rotated",
        "cannot re-encrypt the database; is it migrated (`secondlook migrate`) and reachable?",
    )
