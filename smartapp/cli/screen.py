"""`secondlook screen PATH`: screen every patient of an NDJSON folder or Bulk Data manifest on Dask
distributed and write the coordinator's worklist (smartapp/screening/)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from smartapp.cli.evaluate import _text
from smartapp.config import get_settings
from smartapp.screening.inputs import InputError, resolve_input
from smartapp.screening.pipeline import ScreenOptions, run_screen
from smartapp.screening.progress import Progress


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("screen", help="screen a population (NDJSON folder or Bulk Data manifest) into the worklist")
    parser.add_argument("path", type=Path, help="folder of NDJSON files (.ndjson, .ndjson.gz) or a Bulk Data manifest JSON")
    parser.add_argument("--as-of", dest="as_of", type=date.fromisoformat, default=None, help="evaluation date YYYY-MM-DD (default: today)")
    parser.add_argument("--format", choices=("json", "text"), default="json")
    parser.add_argument("--scheduler", default=None,
                        help="Dask scheduler address tcp://HOST:PORT (default: SECONDLOOK_DASK_SCHEDULER, else an embedded local cluster)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes of the embedded cluster (default: every core)")
    parser.add_argument("--database-url", dest="database_url", default=None, help="default: SECONDLOOK_DATABASE_URL")
    parser.add_argument("--work-dir", dest="work_dir", type=Path, default=None,
                        help="where bucket files go (default: the system temp folder); shared storage for a remote cluster")
    parser.add_argument("--group", dest="group_id", default=None, help="label the screened patients with this group id")
    parser.add_argument("--rare-definition", choices=("rarecare", "nci"), default="rarecare")


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    as_of = args.as_of or date.today()  # the clock is read only here, in the CLI layer
    if args.workers is not None and args.workers < 1:
        return _fail("--workers must be at least 1")
    options = ScreenOptions(
        as_of=as_of, database_url=args.database_url or settings.database_url, rare_definition=args.rare_definition,
        scheduler=args.scheduler or settings.dask_scheduler, workers=args.workers, work_dir=args.work_dir,
        group_id=args.group_id,
    )
    try:
        screen_input = resolve_input(args.path)
        outcome = run_screen(screen_input, options, progress=Progress())
    except InputError as exc:
        return _fail(str(exc))
    except (OSError, TimeoutError) as exc:
        where = f"the Dask scheduler {options.scheduler}" if options.scheduler else "the input or work folder"
        return _fail(f"cannot use {where} ({exc.__class__.__name__})")
    document: dict[str, Any] = {"patients": outcome.flagged, "run": outcome.run_json()}
    if args.format == "text":
        run_info = outcome.run_json()
        errors = ", ".join(f"{cause}: {count}" for cause, count in sorted(run_info["errors"].items())) or "none"
        sys.stdout.write(_text(document) if outcome.flagged else "")
        sys.stdout.write(f"run {run_info['id']}: {run_info['patients']} patients, {run_info['resources']} resources, "
                         f"{run_info['seconds']:.1f} s; errors: {errors}\n")
    else:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    return 0


def _fail(message: str) -> int:
    sys.stderr.write(f"secondlook screen: {message}\n")
    return 2
