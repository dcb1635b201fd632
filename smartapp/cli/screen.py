"""`secondlook screen PATH`: screen every patient of an NDJSON folder or Bulk Data manifest on Dask
distributed and write the coordinator's worklist (smartapp/screening/)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from launch.crypto import TokenCipher
from launch.registry import Registry, RegistryError
from smartapp.cli.evaluate import _text
from smartapp.config import get_settings
from smartapp.db import create_sync_engine
from smartapp.keyring import token_keys
from smartapp.schema import migrate_sync
from smartapp.screening.bulk_source import export_group, last_transaction_time
from smartapp.screening.errors import ErrorLog
from smartapp.screening.export_job import export_folder
from smartapp.screening.inputs import InputError, resolve_input
from smartapp.screening.pipeline import ScreenOptions, ScreenOutcome, run_screen
from smartapp.screening.progress import Progress


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "screen", help="screen a population (NDJSON folder or Bulk Data manifest) into the worklist"
    )
    parser.add_argument(
        "path",
        type=Path,
        nargs="?",
        help="folder of NDJSON files (.ndjson, .ndjson.gz) or a Bulk Data manifest JSON",
    )
    parser.add_argument(
        "--ehr", default=None, help="export from this registered EHR (issuer URL) through Backend Services"
    )
    parser.add_argument(
        "--since",
        default=None,
        help=(
            "with --ehr: only patients changed since this instant; 'auto' = the last finished run of "
            "this EHR and group"
        ),
    )
    parser.add_argument(
        "--as-of",
        dest="as_of",
        type=date.fromisoformat,
        default=None,
        help="evaluation date YYYY-MM-DD (default: today)",
    )
    parser.add_argument("--format", choices=("json", "text"), default="json")
    parser.add_argument(
        "--scheduler",
        default=None,
        help=(
            "Dask scheduler address tcp://HOST:PORT (default: SECONDLOOK_DASK_SCHEDULER, else an "
            "embedded local cluster)"
        ),
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes of the embedded cluster (default: every core)",
    )
    parser.add_argument(
        "--database-url", dest="database_url", default=None, help="default: SECONDLOOK_DATABASE_URL"
    )
    parser.add_argument(
        "--work-dir",
        dest="work_dir",
        type=Path,
        default=None,
        help="where bucket files go (default: the system temp folder); shared storage for a remote cluster",
    )
    parser.add_argument(
        "--group",
        dest="group_id",
        default=None,
        help="with --ehr: the Group to export; with PATH: a label for the screened patients",
    )
    parser.add_argument("--rare-definition", choices=("rarecare", "nci"), default="rarecare")


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    as_of = args.as_of or date.today()  # the clock is read only here, in the CLI layer
    if args.workers is not None and args.workers < 1:
        return _fail("--workers must be at least 1")
    database_url = args.database_url or settings.database_url
    try:
        cipher = TokenCipher(token_keys(settings.model_copy(update={"database_url": database_url})))
    except ValueError as exc:  # a malformed key, or a key file where it may not be
        return _fail(str(exc))
    options = ScreenOptions(
        as_of=as_of,
        database_url=database_url,
        cipher=cipher,
        rare_definition=args.rare_definition,
        scheduler=args.scheduler or settings.dask_scheduler,
        workers=args.workers,
        work_dir=args.work_dir,
        group_id=args.group_id,
    )
    if (args.path is None) == (args.ehr is None):
        return _fail("give either PATH or --ehr ISS --group ID")
    if args.ehr and not args.group_id:
        return _fail("--ehr needs --group ID")
    if args.since and not args.ehr:
        return _fail("--since applies to --ehr exports only")
    try:
        if args.ehr:
            outcome = _screen_ehr(args, options, settings.ehr_config)
        else:
            outcome = run_screen(resolve_input(args.path), options, progress=Progress())
    except (InputError, RegistryError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        sys.stderr.write(
            "\nsecondlook screen: interrupted; the run is recorded as failed, run it again to finish\n"
        )
        return 130
    except (OSError, TimeoutError) as exc:
        where = f"the Dask scheduler {options.scheduler}" if options.scheduler else "the input or work folder"
        return _fail(f"cannot use {where} ({exc.__class__.__name__})")
    document: dict[str, Any] = {"patients": outcome.flagged, "run": outcome.run_json()}
    if args.format == "text":
        run_info = outcome.run_json()
        errors = (
            ", ".join(f"{cause}: {count}" for cause, count in sorted(run_info["errors"].items())) or "none"
        )
        sys.stdout.write(_text(document) if outcome.flagged else "")
        sys.stdout.write(
            f"run {run_info['id']}: {run_info['patients']} patients, {run_info['resources']} resources, "
            f"{run_info['seconds']:.1f} s; errors: {errors}\n"
        )
    else:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    return 0


def _screen_ehr(
    args: argparse.Namespace, options: ScreenOptions, registry_file: Path | None
) -> ScreenOutcome:
    if registry_file is None:
        raise InputError("--ehr needs SECONDLOOK_EHR_CONFIG (the registered-EHR file)")
    registration = Registry.from_file(registry_file).get(args.ehr)
    if registration is None:
        raise InputError(f"{args.ehr} is not a registered EHR")
    if registration.backend_services is None:
        raise InputError(f"{registration.iss} has no backend_services block in the registry")
    since = args.since
    if since == "auto":
        engine = create_sync_engine(options.database_url, options.cipher)
        try:
            migrate_sync(engine)
            since = last_transaction_time(engine, registration.iss, args.group_id)
        finally:
            engine.dispose()
    errors = ErrorLog()
    if options.work_dir is not None:
        options.work_dir.mkdir(parents=True, exist_ok=True)
    # Kept when the run fails or is interrupted: the next run resumes the export and its downloads.
    root = options.work_dir or Path(tempfile.gettempdir())
    download = export_folder(root, registration.iss, args.group_id, since)
    screen_input = export_group(registration, args.group_id, since, download, errors)
    outcome = run_screen(screen_input, options, progress=Progress(), errors=errors)
    shutil.rmtree(download, ignore_errors=True)
    return outcome


def _fail(message: str) -> int:
    sys.stderr.write(f"secondlook screen: {message}\n")
    return 2
