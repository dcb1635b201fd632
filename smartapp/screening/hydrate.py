"""Hydration: report texts that a Bulk export leaves behind attachment URLs (DiagnosticReport
presentedForm, DocumentReference content) are fetched where the rules need them — every report of
a patient with a cancer diagnosis in the export, and every pathology report, whoever it belongs to
(a new cancer often reaches the chart as a pathology report before anyone codes it) — and kept
beside each bucket (smartapp/screening/texts.py) for the bucket task to inline.

It is done bucket by bucket, after the partition pass (smartapp/screening/partition.py), in a thread
of its own while the cluster screens the buckets already done: fetching texts waits on the EHR and
screening uses the CPU, so the two overlap instead of adding up. A bucket is read in blocks and only
its report lines of those patients are parsed (memory stays bounded); a text that cannot be fetched
is counted and its report still read.
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence, Set
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

from fhirmaps import json_codec
from fhirmaps.diagnoses import read_condition
from fhirmaps.reports import attachment_urls, classify
from launch.backend_services import BackendServicesClient
from launch.bulk_manifest import iter_ndjson
from launch.discovery import Discovery
from launch.errors import FhirError, LaunchError
from launch.fetch import AttachmentRef, FetchedAttachment, fetch_attachments
from launch.fhir_client import FhirClient
from launch.http import create_http_client
from launch.registry import Registration
from smartapp.screening.background import produced, until_stopped
from smartapp.screening.blocks import HEADER_NEEDLE, header_at, header_offsets
from smartapp.screening.errors import ATTACHMENT_FAILED, ErrorLog
from smartapp.screening.inputs import InputError, failure_text
from smartapp.screening.patients import owner_id
from smartapp.screening.search import lines_containing, open_ndjson
from smartapp.screening.texts import HOLDERS, text_line, texts_path
from smartapp.warmup import warmup_chart

# Resources whose texts are fetched together: one batch request where the EHR offers batches
# (launch/fetch.py), else as many requests at once.
BATCH = 64
# Batches whose fetches run at once while earlier ones are written out, in file order: the EHR's
# request limit stays busy across batches instead of draining at the end of each one, and at most
# WINDOW × BATCH resources (with their texts) are held in memory. A batch counts only resources with
# texts to fetch, so 4 batches keep more than 32 requests waiting.
WINDOW = 4

Batch = list[tuple[str, dict[str, Any]]]  # (patient id, report) in file order
Texts = dict[str, FetchedAttachment]


@cache
def warm() -> None:
    """Once per process: what deciding the first file's texts would otherwise pay for, done ahead
    (about 0.1 s: the code maps and compiled patterns behind `read_condition` and `classify`), on a
    synthetic chart. The export calls it while it waits for its first file."""
    resources, _ = warmup_chart()
    for resource in resources:
        if resource.get("resourceType") == "Condition":
            read_condition(resource)
        elif resource.get("resourceType") in HOLDERS:
            classify(resource)


def patients_with_cancer(files: tuple[Path, ...]) -> set[str]:
    found: set[str] = set()
    for path in files:
        if not path.name.startswith("Condition"):
            continue
        for resource in _resources(path):
            diagnosis, _ = read_condition(resource)
            if diagnosis is not None and (patient := owner_id(resource)):
                found.add(patient)
    return found


def _resources(path: Path) -> Iterator[dict[str, Any]]:
    try:
        yield from (r for r in iter_ndjson(path) if isinstance(r, dict))
    except ValueError:
        return  # the screen counts malformed lines itself


@dataclass(frozen=True)
class BucketHydrator:
    """Fetches the texts of `needs`' reports from the EHR of `registration` (its backend services
    client), bucket by bucket, in a thread with its own event loop."""

    registration: Registration
    needs: frozenset[str]

    def stream(self, buckets: Sequence[Path], errors: ErrorLog) -> Iterator[Path]:
        """Each bucket once its texts are in, in order. `errors` is written by the hydrating thread
        until the stream ends; a failure there (the EHR refused the token, say) is raised here."""
        iss = self.registration.iss

        def failed(exc: FhirError | LaunchError) -> InputError:
            return InputError(f"report texts from {iss} could not be fetched: {failure_text(exc)}")

        return produced(
            lambda put, stop: self._hydrate_all(buckets, put, stop, errors), failed, "secondlook-hydrate"
        )

    async def _hydrate_all(
        self,
        buckets: Sequence[Path],
        put: Callable[[Path], None],
        stop: threading.Event,
        errors: ErrorLog,
    ) -> None:
        async with create_http_client() as http:
            tokens = BackendServicesClient(http, self.registration, Discovery(http))
            client = FhirClient(self.registration.iss, http, tokens)
            for bucket in buckets:
                # The screen ended (an error, Ctrl-C): stop mid-bucket.
                if not await until_stopped(stop, hydrate_bucket(client, bucket, self.needs, errors)):
                    return
                put(bucket)


async def hydrate_bucket(client: FhirClient, bucket: Path, needs: frozenset[str], errors: ErrorLog) -> int:
    """Fetches the report texts of `needs` (and every pathology report's) in a bucket file ("<patient
    id>\\t<NDJSON line>" lines) into the texts file beside it (smartapp/screening/texts.py); returns
    how many were fetched. Nothing is written when there is nothing to fetch."""
    with bucket.open("rb") as source:
        return await _hydrate(client, bucket, _holders(source, needs), errors)


async def hydrate_blocks(client: FhirClient, path: Path, errors: ErrorLog) -> list[tuple[int, str]]:
    """The same for a file of patient resource blocks (smartapp/screening/blocks.py): the texts of
    the reports of the file's patients with a cancer diagnosis, decided from the file's own
    Conditions (a block holds the patient's whole chart), and of its pathology reports. Returns
    the file's block headers (byte offset, patient id), found in the same read, for cutting the
    file into tasks."""
    if texts_path(path).exists():  # fetched by an earlier run of the same export (a resume)
        with open_ndjson(path) as source:
            return header_offsets(source)
    with open_ndjson(path) as source:
        holders, headers = _block_holders(source)
    if holders:
        await _hydrate(client, path, iter(holders), errors)
    return headers


async def _hydrate(
    client: FhirClient, target: Path, holders: Iterator[tuple[str, dict[str, Any]]], errors: ErrorLog
) -> int:
    partial = target.with_name(target.name + ".texts-partial")
    with partial.open("wb") as out:
        fetched = await _collect(client, holders, out, errors)
    if partial.stat().st_size:
        os.replace(partial, texts_path(target))
    else:
        partial.unlink()
    return fetched


async def _collect(
    client: FhirClient, holders: Iterator[tuple[str, dict[str, Any]]], out: BinaryIO, errors: ErrorLog
) -> int:
    """The texts of every batch of `holders` to `out`, WINDOW batches fetched at a time."""
    fetched = 0
    pending: deque[tuple[Batch, asyncio.Task[Texts]]] = deque()
    try:
        for batch in _batches(holders):
            pending.append((batch, asyncio.create_task(_fetch(client, batch, errors))))
            if len(pending) >= WINDOW:
                done, task = pending.popleft()
                fetched += _write(done, await task, out)
        while pending:
            done, task = pending.popleft()
            fetched += _write(done, await task, out)
    finally:
        for _, task in pending:  # an error above: no fetch outlives the file it was for
            task.cancel()
    return fetched


def _batches(holders: Iterator[tuple[str, dict[str, Any]]]) -> Iterator[Batch]:
    """The reports that name a URL, BATCH at a time, in file order."""
    batch: Batch = []
    for patient_id, resource in holders:
        batch.append((patient_id, resource))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _holders(source: BinaryIO, needs: frozenset[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(patient id, report) of the bucket lines that name a "url" and hold a report whose text is
    needed: one of `needs`, or a pathology report."""
    for _, _, line in lines_containing(source, (b'"url"',)):
        key, tab, body = line.partition(b"\t")
        patient_id = key.decode("utf-8", "replace")
        if tab and (resource := _parsed(body, HOLDERS)) is not None and _needed(resource, patient_id, needs):
            yield patient_id, resource


def _needed(report: dict[str, Any], patient_id: str, with_cancer: Set[str]) -> bool:
    """Whether a report's text is fetched: its patient has a cancer diagnosis, or it is a pathology
    report (the text that names a cancer no Condition names yet)."""
    return patient_id in with_cancer or classify(report) == "pathology"


def _block_holders(
    source: BinaryIO,
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[int, str]]]:
    """(patient id, report) of a file of resource blocks, for the reports that name a URL of the
    patients with a cancer Condition in the file (a block holds the patient's whole chart) and the
    pathology reports, in file order; and the file's block headers. One read of the file: its
    Condition lines, its lines naming a "url" and its header lines."""
    with_cancer: set[str] = set()
    reports: list[tuple[str, dict[str, Any]]] = []
    headers: list[tuple[int, str]] = []
    for needle, offset, line in lines_containing(source, (b'"Condition"', b'"url"', HEADER_NEEDLE)):
        if needle == HEADER_NEEDLE:
            if (patient := header_at(line)) is not None:
                headers.append((offset, patient))
        elif needle == b'"url"':
            report = _parsed(line, HOLDERS)
            if report is not None and (patient_id := owner_id(report)):
                reports.append((patient_id, report))
        else:
            condition = _parsed(line, ("Condition",))
            if condition is not None and read_condition(condition)[0] is not None:
                with_cancer.add(owner_id(condition))
    headers.sort()
    return [
        (patient_id, report) for patient_id, report in reports if _needed(report, patient_id, with_cancer)
    ], headers


def _parsed(line: bytes, types: tuple[str, ...]) -> dict[str, Any] | None:
    """The resource of an NDJSON line when it is of one of `types` (a malformed line is the screen's
    to count)."""
    try:
        value = json_codec.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) and value.get("resourceType") in types else None


async def _fetch(client: FhirClient, batch: Batch, errors: ErrorLog) -> Texts:
    wanted = {url: ctype for _, resource in batch for url, ctype in attachment_urls(resource)}
    results = await fetch_attachments(
        client, [AttachmentRef(url, ctype) for url, ctype in sorted(wanted.items())], batch_entries=BATCH
    )
    texts = {r.url: r for r in results if isinstance(r, FetchedAttachment)}
    failed = len(results) - len(texts)
    if failed:
        errors.add(ATTACHMENT_FAILED, f"{failed} report text(s) in one batch", failed)
    return texts


def _write(batch: Batch, texts: Texts, out: BinaryIO) -> int:
    """One texts line per patient and URL of the batch that was fetched."""
    written: set[tuple[str, str]] = set()
    for patient_id, resource in batch:
        for url, _ in attachment_urls(resource):
            got = texts.get(url)
            if got is not None and (patient_id, url) not in written:
                written.add((patient_id, url))
                data = base64.b64encode(got.content).decode("ascii")
                out.write(text_line(patient_id, url, got.content_type, data))
    return len(texts)
