"""`secondlook demo`: the app plus the embedded demo EHR, on loopback, with no configuration.
The demo EHR is its own distribution (demo/, installed by scripts/setup), never in the product's
wheel; this command says so when it is missing."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from launch.crypto import TokenCipher
from smartapp.keyring import token_keys
from smartapp.logs import configure_logging
from smartapp.servers import serve_all

DEFAULT_PATIENTS = 200


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("demo", help="run SecondLook on the embedded demo EHR")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8000, help="demo EHR port; its launch page is at / (default 8000)"
    )
    parser.add_argument("--app-port", type=int, default=None, help="SecondLook's port (default: --port + 1)")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay added to every demo EHR response")
    parser.add_argument(
        "--data-dir", type=Path, default=Path("var/demo"), help="where the demo keeps its database"
    )
    parser.add_argument(
        "--no-screen",
        dest="screen",
        action="store_false",
        help="do not screen the demo EHR's oncology clinic into the coordinator's worklist at start",
    )
    parser.add_argument(
        "--patients",
        type=int,
        default=DEFAULT_PATIENTS,
        help=(
            f"synthetic population added to the demo EHR for population screening (default "
            f"{DEFAULT_PATIENTS}; 0: none)"
        ),
    )


def run(args: argparse.Namespace) -> int:
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("secondlook demo binds to loopback only (127.0.0.1, localhost or ::1).", file=sys.stderr)  # noqa: T201
        return 2
    app_port = args.app_port or args.port + 1
    configure_logging("WARNING")
    if args.patients < 0:
        print("--patients must be 0 or more.", file=sys.stderr)  # noqa: T201
        return 2
    try:
        from demo_ehr import screening as demo_screen
        from demo_ehr.stack import build_demo
    except ImportError:
        sys.stderr.write(
            "secondlook demo needs the demo EHR, which production installs leave out: run ./scripts/demo "
            "from a checkout (or pip install -e ./demo).\n"
        )
        return 2
    stack = build_demo(args.host, args.port, app_port, args.latency_ms, args.data_dir, args.patients)
    try:
        cipher = TokenCipher(token_keys(stack.settings))
    except ValueError as exc:  # SECONDLOOK_SECRET_KEY malformed, or the key file unusable
        sys.stderr.write(f"secondlook demo: {exc}\n")
        return 2
    print(  # noqa: T201 - the one line a newcomer needs
        f"SecondLook demo: open http://{args.host}:{args.port}/ (demo EHR launch page); "
        f"the app runs at http://{args.host}:{app_port}/. Press Ctrl+C to stop.",
        flush=True,
    )
    if args.screen:
        demo_screen.start(
            stack.registration, stack.settings.database_url, cipher, args.data_dir / "screening"
        )
    try:
        asyncio.run(serve_all([stack.ehr, stack.app]))
    except KeyboardInterrupt:
        pass
    return 0
