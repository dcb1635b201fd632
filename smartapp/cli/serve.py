"""`secondlook serve`: the app for real EHRs (registered in SECONDLOOK_EHR_CONFIG)."""

from __future__ import annotations

import argparse
import asyncio

from smartapp.config import get_settings
from smartapp.logs import configure_logging
from smartapp.servers import Served, serve_all
from smartapp.web.app import create_app


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("serve", help="run the SecondLook web app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(settings.log_level)
    asyncio.run(
        serve_all([Served(create_app(settings), args.host, args.port)], log_level=settings.log_level.lower())
    )
    return 0
