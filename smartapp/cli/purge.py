"""`secondlook purge`: delete expired pending launches, launch sessions and CDS replay rows now
(the server also does this on a schedule, SECONDLOOK_PURGE_INTERVAL_SECONDS)."""

from __future__ import annotations

import argparse

from smartapp.cli.database import add_database_option, run_step
from smartapp.housekeeping import purge


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("purge", help="delete expired launches, sessions and replay-cache rows")
    add_database_option(parser)


def run(args: argparse.Namespace) -> int:
    return run_step(
        args, "purge", purge, "deleted", "cannot purge the database; is it created and reachable?"
    )
