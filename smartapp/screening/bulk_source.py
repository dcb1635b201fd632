"""`secondlook screen --ehr ISS --group ID`: export a Group through SMART Backend Services and Bulk
Data (launch/), download it into a work folder, and hand the files to the same screening pipeline.

With a `_since` (explicit, or `auto` = the transactionTime of the last finished run for that EHR
and group) an export holds only the resources changed since then, not whole charts. The screen
therefore runs in two exports: the delta names the patients that changed, and a second export of
the group restricted to those patients (`patient` parameter, POST) brings their full records.
Report texts behind attachment URLs are fetched for the patients with cancer while the screen runs,
bucket by bucket (hydrate.py)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from sqlalchemy import Engine, select

from launch.backend_services import BackendServicesClient
from launch.bulk_download import download_manifest
from launch.bulk_export import BulkExportClient, ExportProgress, ExportRequest
from launch.bulk_manifest import Manifest, iter_ndjson
from launch.discovery import Discovery
from launch.errors import FatalFhirError, FhirError, LaunchError, TemporaryFhirError
from launch.http import create_http_client
from launch.registry import Registration
from smartapp.screening.errors import ErrorLog
from smartapp.screening.export_job import JOB_FILE, ExportJob
from smartapp.screening.hydrate import BucketHydrator, patients_with_cancer
from smartapp.screening.inputs import InputError, ScreenInput, failure_text
from smartapp.screening.patients import owner_id
from smartapp.worklist.tables import screening_runs

DOWNLOAD_ERROR = "download-failed"


def last_transaction_time(engine: Engine, source: str, group_id: str) -> str | None:
    """`--since auto`: the transactionTime of the newest finished run of this EHR and group."""
    query = (
        select(screening_runs.c.transaction_time)
        .where(
            screening_runs.c.source == source,
            screening_runs.c.group_id == group_id,
            screening_runs.c.status == "finished",
            screening_runs.c.transaction_time.is_not(None),
        )
        .order_by(screening_runs.c.started_at.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        value = conn.execute(query).scalar()
    return str(value) if value else None


def export_group(
    registration: Registration, group_id: str, since: str | None, dest: Path, errors: ErrorLog
) -> ScreenInput:
    try:
        return asyncio.run(_export_group(registration, group_id, since, dest, errors))
    except (FhirError, LaunchError) as exc:
        kept = any((dest / part / JOB_FILE).exists() for part in ("full", "delta"))
        resume = (
            " The export is kept: run the same command again to resume it."
            if isinstance(exc, TemporaryFhirError) and kept
            else ""
        )
        raise InputError(f"bulk export from {registration.iss} failed: {failure_text(exc)}{resume}") from exc


async def _export_group(
    registration: Registration, group_id: str, since: str | None, dest: Path, errors: ErrorLog
) -> ScreenInput:
    async with create_http_client() as http:
        tokens = BackendServicesClient(http, registration, Discovery(http))
        client = BulkExportClient(registration.iss, http, tokens)
        first = dest / ("delta" if since else "full")
        manifest = await _export(client, ExportRequest(level="group", group_id=group_id, since=since), first)
        files, error_files = await _download(client, manifest, first, errors)
        if since:
            changed = sorted(_patients(files))
            if not changed:
                return ScreenInput(
                    source=registration.iss,
                    files=(),
                    error_files=error_files,
                    transaction_time=manifest.transaction_time,
                )
            full = await _export(
                client,
                ExportRequest(
                    level="group", group_id=group_id, patients=[f"Patient/{pid}" for pid in changed]
                ),
                dest / "full",
            )
            files, more_errors = await _download(client, full, dest / "full", errors)
            error_files += more_errors
    # Report texts left behind URLs are fetched for the patients with cancer while the screen runs.
    needs = frozenset(patients_with_cancer(files))
    return ScreenInput(
        source=registration.iss,
        files=files,
        error_files=error_files,
        transaction_time=manifest.transaction_time,
        hydrator=BucketHydrator(registration, needs) if needs else None,
    )


async def _export(client: BulkExportClient, request: ExportRequest, dest: Path) -> Manifest:
    """The export's manifest. An export this folder started earlier (the run was interrupted while
    it ran on the EHR, or while its files were downloading) is picked up by its status URL instead
    of being started again; one the EHR no longer knows is started anew."""
    job = ExportJob(dest)
    status_url = job.status_url(request)
    if status_url is not None:
        try:
            return await client.wait_for_manifest(status_url, _progress)
        except FatalFhirError as gone:
            sys.stderr.write(
                f"secondlook screen: the earlier export is no longer available ({gone}); starting anew\n"
            )
            job.forget()
    status_url = await client.kick_off(request)
    job.remember(request, status_url)
    return await client.wait_for_manifest(status_url, _progress)


async def _download(
    client: BulkExportClient, manifest: Manifest, dest: Path, errors: ErrorLog
) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    report = await download_manifest(client, manifest, dest)
    for failed in report.failed:
        errors.add(DOWNLOAD_ERROR, f"{failed.kind} file of type {failed.type}")
    return tuple(report.paths("output")), tuple(report.paths("error"))


def _patients(files: tuple[Path, ...]) -> set[str]:
    found: set[str] = set()
    for path in files:
        try:
            for resource in iter_ndjson(path):
                patient_id = owner_id(resource)
                if patient_id:
                    found.add(patient_id)
        except ValueError:
            continue  # the screen itself counts malformed lines; here only the patients matter
    return found


def _progress(progress: ExportProgress) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(
            f"\rsecondlook screen: export running, {progress.elapsed:.0f} s"
            f"{', ' + progress.text if progress.text else ''}   "
        )
        sys.stderr.flush()
