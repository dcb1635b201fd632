"""`secondlook screen --ehr ISS --group ID`: export a Group through SMART Backend Services and Bulk
Data (launch/), download it into a work folder, and hand the files to the same screening pipeline.

A whole group is exported organized by patient and screened while the EHR writes it
(block_export.py). With a `_since` (explicit, or `auto` = the transactionTime of the last finished
run for that EHR and group) an export holds only the resources changed since then, not whole charts.
The screen therefore runs in two exports: the delta names the patients that changed, and a second
export of the group restricted to those patients (`patient` parameter, POST) brings their full
records. Report texts behind attachment URLs are fetched while the screen runs, bucket by bucket:
those of the patients with cancer, and every pathology report (hydrate.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import Engine, select

from launch.backend_services import BackendServicesClient
from launch.bulk_download import download_manifest
from launch.bulk_export import BulkExportClient, ExportRequest
from launch.bulk_manifest import Manifest, iter_ndjson
from launch.discovery import Discovery
from launch.errors import FhirError, LaunchError
from launch.http import create_http_client
from launch.registry import Registration
from smartapp.screening.block_export import BlockExport, export_progress
from smartapp.screening.errors import DOWNLOAD_FAILED, ErrorLog
from smartapp.screening.export_job import JOB_FILE, resume_or_start, types_first
from smartapp.screening.hydrate import BucketHydrator, patients_with_cancer
from smartapp.screening.inputs import ScreenInput, export_failed
from smartapp.screening.patients import owner_id
from smartapp.worklist.tables import screening_runs


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
    registration: Registration,
    group_id: str,
    since: str | None,
    dest: Path,
    errors: ErrorLog,
    by_patient: bool = True,
) -> ScreenInput:
    """The group's export as a screen's input. A whole group (no `since`) is exported organized by
    patient and screened while the EHR still writes it (block_export.py): nothing is asked of the
    EHR until the screen starts, and its failures surface from the screen. `by_patient` False: the
    export by type, downloaded here, then partitioned (benchmarks compare the two)."""
    if since is None and by_patient:
        return ScreenInput(
            source=registration.iss, files=(), blocks=BlockExport(registration, group_id, dest / "full")
        )
    try:
        return asyncio.run(_export_group(registration, group_id, since, dest, errors))
    except (FhirError, LaunchError) as exc:
        kept = any((dest / part / JOB_FILE).exists() for part in ("full", "delta"))
        raise export_failed(registration.iss, exc, kept) from exc


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
    # Report texts left behind URLs are fetched while the screen runs: those of the patients with
    # cancer, and every pathology report.
    needs = frozenset(patients_with_cancer(files))
    return ScreenInput(
        source=registration.iss,
        files=files,
        error_files=error_files,
        transaction_time=manifest.transaction_time,
        hydrator=BucketHydrator(registration, needs),
    )


async def _export(client: BulkExportClient, request: ExportRequest, dest: Path) -> Manifest:
    """`request` for only the types the engine reads, or as given from an EHR that refuses that."""
    return await resume_or_start(client, types_first(request), dest, export_progress)


async def _download(
    client: BulkExportClient, manifest: Manifest, dest: Path, errors: ErrorLog
) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    report = await download_manifest(client, manifest, dest)
    for failed in report.failed:
        errors.add(DOWNLOAD_FAILED, f"{failed.kind} file of type {failed.type}")
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
