"""`secondlook migrate`: bring the database to the newest schema (the server also does this at
start-up), and print the revision it is at."""

from __future__ import annotations

import argparse

from smartapp.cli.database import add_database_option, run_step
from smartapp.schema import migrate


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("migrate", help="apply database migrations")
    add_database_option(parser)


def run(args: argparse.Namespace) -> int:
    return run_step(
        args, "migrate", migrate, "revision", "the database could not be migrated; is it reachable?"
    )
