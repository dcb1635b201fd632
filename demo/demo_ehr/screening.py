"""The demo's population screening: once the demo EHR answers, its oncology clinic is exported
through Backend Services and Bulk Data and screened on a local Dask cluster, so the coordinator's
worklist is populated with no configuration. Runs in a background thread of `secondlook demo`."""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import httpx2

from demo_ehr.groups import ONCOLOGY_CLINIC_ID
from launch.crypto import TokenCipher
from launch.registry import Registration
from smartapp.screening.bulk_source import export_group
from smartapp.screening.errors import ErrorLog
from smartapp.screening.inputs import InputError
from smartapp.screening.pipeline import ScreenOptions, run_screen


def _wait_until_up(url: str, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx2.get(url, timeout=2.0).status_code == 200:
                return True
        except httpx2.HTTPError:
            pass
        time.sleep(0.5)
    return False


def screen_demo_population(
    registration: Registration, database_url: str, cipher: TokenCipher, work_dir: Path
) -> None:
    if not _wait_until_up(f"{registration.iss}/metadata"):
        sys.stderr.write("Demo screening skipped: the demo EHR did not start.\n")
        return
    work_dir.mkdir(parents=True, exist_ok=True)
    download = Path(tempfile.mkdtemp(prefix="export-", dir=work_dir))
    try:
        errors = ErrorLog()
        screen_input = export_group(registration, ONCOLOGY_CLINIC_ID, None, download, errors)
        options = ScreenOptions(
            as_of=date.today(),
            database_url=database_url,
            cipher=cipher,
            work_dir=work_dir,
            group_id=ONCOLOGY_CLINIC_ID,
            keep_results=False,
        )
        outcome = run_screen(screen_input, options, errors=errors)
        sys.stdout.write(
            f"Demo worklist ready: {outcome.patients} oncology clinic patients screened in "
            f"{outcome.seconds:.0f} s (coordinator launch on the demo EHR's page).\n"
        )
    except (InputError, OSError, TimeoutError) as exc:
        sys.stderr.write(f"Demo screening failed: {exc}\n")
    finally:
        shutil.rmtree(download, ignore_errors=True)


def start(
    registration: Registration, database_url: str, cipher: TokenCipher, work_dir: Path
) -> threading.Thread:
    thread = threading.Thread(
        target=screen_demo_population,
        args=(registration, database_url, cipher, work_dir),
        name="demo-screening",
        daemon=True,
    )
    thread.start()
    return thread
