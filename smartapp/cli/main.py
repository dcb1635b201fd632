"""`secondlook` command line: one module per subcommand, wired together here."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from smartapp.cli.errors import CONFIGURATION_ERRORS, describe

# Each module (the command's name with "_" for "-") exposes `add_parser(subparsers)` and `run(args) -> int`.
SUBCOMMANDS = ("serve", "demo", "evaluate", "screen", "packet", "migrate", "purge", "rotate-keys")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secondlook",
        description="SecondLook: flags evidence-based reasons for a cancer second opinion.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"smartapp.cli.{name.replace('-', '_')}")
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(f"smartapp.cli.{args.command.replace('-', '_')}")
    try:
        return int(module.run(args))
    except CONFIGURATION_ERRORS as exc:
        sys.stderr.write(f"secondlook {args.command}: cannot start: {describe(exc)}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
