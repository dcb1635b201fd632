"""A group export organized by patient (Bulk Data 3.0 `organizeOutputBy=Patient`), screened while it
runs: with `allowPartialManifests` the EHR lists each file as soon as it is written, so files are
downloaded, their report texts fetched (hydrate.py) and their patients screened (blocks.py) while
the EHR still writes the rest. Nothing is partitioned: each file (or `continuesInFile` chain) is
one task.

Only the types the engine reads are asked for (`_type`). An EHR that refuses that, or either 3.0
parameter, is asked again without (export_job.py); one that ignores them sends files by type,
which are screened after the export as any other (the partition pass). The export's status URL is
kept in the download folder, so an interrupted run resumes it, and files already downloaded are
not fetched again."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from launch.backend_services import BackendServicesClient
from launch.bulk_download import DownloadReport, download_manifest
from launch.bulk_export import BulkExportClient, ExportProgress, ExportRequest
from launch.bulk_manifest import Manifest
from launch.discovery import Discovery
from launch.errors import FhirError, LaunchError
from launch.fhir_client import FhirClient
from launch.http import create_http_client
from launch.registry import Registration
from smartapp.screening.background import produced, until_stopped
from smartapp.screening.blocks import Chain, Task, complete_chains, tasks_at
from smartapp.screening.errors import DOWNLOAD_FAILED, ErrorLog
from smartapp.screening.export_job import JOB_FILE, resume_or_start, types_first
from smartapp.screening.hydrate import BucketHydrator, hydrate_blocks, patients_with_cancer, warm
from smartapp.screening.inputs import InputError, ScreenInput, export_failed, failure_text

ORGANIZE_BY = "Patient"


@dataclass
class BlockExport:
    """The export of `group_id` into `dest`. `stream` gives the files to screen; once it has ended,
    `transaction_time` and `error_files` are set, and `by_type` gives what the EHR sent by type."""

    registration: Registration
    group_id: str
    dest: Path
    transaction_time: str | None = None
    error_files: tuple[Path, ...] = ()
    expected_patients: int | None = None  # the Group's size, once read (None: not known)
    _by_type: tuple[Path, ...] = ()

    def by_type(self) -> ScreenInput | None:
        """The files of an export the EHR organized by type after all, with their report texts to
        fetch bucket by bucket, for the partition pass; None when it organized them by patient."""
        if not self._by_type:
            return None
        needs = frozenset(patients_with_cancer(self._by_type))
        return ScreenInput(
            source=self.registration.iss,
            files=self._by_type,
            transaction_time=self.transaction_time,
            hydrator=BucketHydrator(self.registration, needs),
        )

    def stream(self, errors: ErrorLog) -> Iterator[Task]:
        """The tasks of each file (or chain of files) of patient blocks once it is downloaded and
        hydrated, in the export's order. `errors` is written by the exporting thread until the
        stream ends; a failure there (the EHR refused the export, say) is raised here."""

        def failed(exc: FhirError | LaunchError) -> InputError:
            return export_failed(self.registration.iss, exc, (self.dest / JOB_FILE).exists())

        async def export(put: Callable[[Task], None], stop: threading.Event) -> None:
            await until_stopped(stop, self._export(put, errors))

        return produced(export, failed, "secondlook-export")

    async def _export(self, put: Callable[[Task], None], errors: ErrorLog) -> None:
        async with create_http_client() as http:
            tokens = BackendServicesClient(http, self.registration, Discovery(http))
            bulk = BulkExportClient(self.registration.iss, http, tokens)
            fhir = FhirClient(self.registration.iss, http, tokens)
            # The Group's size (for the progress shown) is read while the kick-off is answered.
            sizing = asyncio.create_task(group_size(fhir, self.group_id))
            sizing.add_done_callback(self._sized)
            arrivals: asyncio.Queue[Chain | None] = asyncio.Queue()
            hydrating = asyncio.create_task(self._hydrate(fhir, arrivals, put, errors))
            emitted: set[str] = set()

            async def download(manifest: Manifest, final: bool) -> DownloadReport:
                """A manifest's files not yet on disk downloaded; chains of patient blocks that are
                complete handed to hydration. A file that failed is tried again with each later
                manifest, so failures are counted from the complete one only."""
                report = await download_manifest(bulk, manifest, self.dest)
                if final:
                    for failed in report.failed:
                        errors.add(DOWNLOAD_FAILED, f"{failed.kind} file of type {failed.type}")
                if manifest.organized_by == ORGANIZE_BY:
                    paths = {file.url: file.path for file in report.files if file.kind == "output"}
                    for chain in complete_chains(manifest.output, paths, emitted, final):
                        await arrivals.put(chain)
                return report

            async def partial(manifest: Manifest) -> None:
                if manifest.organized_by == ORGANIZE_BY:  # files by type wait for the partition pass
                    await download(manifest, final=False)

            try:
                manifest = await self._manifest(bulk, partial)
                report = await download(manifest, final=True)
                if manifest.organized_by != ORGANIZE_BY:
                    self._by_type = tuple(report.paths("output"))
                self.error_files = tuple(report.paths("error"))
                self.transaction_time = manifest.transaction_time
                await arrivals.put(None)
                await hydrating
            finally:
                for task in (hydrating, sizing):
                    task.cancel()
                await asyncio.gather(hydrating, sizing, return_exceptions=True)

    def _sized(self, sizing: asyncio.Task[int | None]) -> None:
        if not sizing.cancelled() and sizing.exception() is None:
            self.expected_patients = sizing.result()

    async def _manifest(
        self, bulk: BulkExportClient, partial: Callable[[Manifest], Awaitable[None]]
    ) -> Manifest:
        plain = ExportRequest(level="group", group_id=self.group_id)
        blocks = replace(plain, organize_output_by=ORGANIZE_BY, allow_partial_manifests=True)
        # An EHR that refuses `_type` or the Bulk Data 3.0 parameters is asked again without.
        requests = types_first(blocks, plain)
        return await resume_or_start(bulk, requests, self.dest, _progress_then_warm, partial)

    async def _hydrate(
        self,
        client: FhirClient,
        arrivals: asyncio.Queue[Chain | None],
        put: Callable[[Task], None],
        errors: ErrorLog,
    ) -> None:
        while (chain := await arrivals.get()) is not None:
            headers: list[tuple[int, str]] = []
            for path in chain:
                try:
                    headers = await hydrate_blocks(client, path, errors)
                except (FhirError, LaunchError) as exc:
                    iss = self.registration.iss
                    raise InputError(
                        f"report texts from {iss} could not be fetched: {failure_text(exc)}"
                    ) from exc
            # The block headers of a one-file chain's file were found in the same read.
            for task in tasks_at(chain, headers):
                put(task)


async def group_size(client: FhirClient, group_id: str) -> int | None:
    """How many patients the Group has (`quantity`, else its members), for the progress shown
    while the export runs; None when the Group cannot be read (the export may still be allowed)."""
    try:
        group = await client.read("Group", group_id)
    except (FhirError, LaunchError):
        return None
    quantity = group.get("quantity")
    if isinstance(quantity, int) and not isinstance(quantity, bool) and quantity >= 0:
        return quantity
    members = group.get("member")
    return len(members) if isinstance(members, list) else None


def _progress_then_warm(progress: ExportProgress) -> None:
    """The progress line, and at the first answer of a running export the hydration's warm-up
    (once): the client then waits for the EHR (its Retry-After), and nothing else is to be done."""
    export_progress(progress)
    warm()


def export_progress(progress: ExportProgress) -> None:
    """The export's progress line on stderr (only on a terminal)."""
    if sys.stderr.isatty():
        sys.stderr.write(
            f"\rsecondlook screen: export running, {progress.elapsed:.0f} s"
            f"{', ' + progress.text if progress.text else ''}   "
        )
        sys.stderr.flush()
