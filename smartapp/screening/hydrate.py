"""Hydration: report texts that a Bulk export leaves behind attachment URLs (DiagnosticReport
presentedForm, DocumentReference content) are fetched and written inline as `data`, for the
patients that need them — those with a cancer diagnosis in the export. Files are rewritten line by
line, so memory stays bounded; a text that cannot be fetched is counted and its report still read."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from fhirmaps import json_codec
from fhirmaps.diagnoses import read_condition
from fhirmaps.reports import attachment_slots, attachment_urls
from launch.bulk_manifest import iter_ndjson
from launch.fetch import AttachmentRef, FetchedAttachment, fetch_attachments
from launch.fhir_client import FhirClient
from smartapp.screening.errors import ATTACHMENT_FAILED, ErrorLog
from smartapp.screening.patients import owner_id

HOLDERS = ("DiagnosticReport", "DocumentReference")
BATCH = 64  # resources whose texts are fetched together
# Batches whose fetches run at once while earlier ones are written out, in file order: the EHR's
# request limit stays busy across batches instead of draining at the end of each one, and at most
# WINDOW × BATCH resources (with their texts) are held in memory. Most resources of a file belong to
# patients without cancer and need no fetch, so it takes 16 batches to keep 32 requests in flight
# (4: hydration of 1,000 demo patients 4.6 s, 16: 3.1 s, 32: 3.1 s).
WINDOW = 16

# Each line as read, with its resource when it parses as one (the line is kept to be written back
# unchanged when nothing is inlined into it: most lines belong to patients without cancer).
Batch = list[tuple[bytes, dict[str, Any] | None]]
Texts = dict[str, FetchedAttachment]


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


async def hydrate(client: FhirClient, files: tuple[Path, ...], errors: ErrorLog) -> int:
    """Inlines the texts of the reports of patients with cancer; returns how many were fetched."""
    needs = patients_with_cancer(files)
    fetched = 0
    for path in files:
        if not path.name.startswith(HOLDERS) or not needs:
            continue
        hydrated = path.with_name(path.name + ".hydrating")
        with path.open("rb") as source, hydrated.open("wb") as out:
            fetched += await _rewrite(client, source, out, needs, errors)
        os.replace(hydrated, path)
    return fetched


async def _rewrite(
    client: FhirClient, source: BinaryIO, out: BinaryIO, needs: set[str], errors: ErrorLog
) -> int:
    """Every line of `source` to `out`, in order, with the texts of the batches fetched WINDOW at a
    time."""
    fetched = 0
    pending: deque[tuple[Batch, asyncio.Task[Texts]]] = deque()
    try:
        for batch in _batches(source):
            pending.append((batch, asyncio.create_task(_fetch(client, batch, needs, errors))))
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


def _batches(source: BinaryIO) -> Iterator[Batch]:
    batch: Batch = []
    for line in source:
        batch.append((line, _parsed(line)))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _parsed(line: bytes) -> dict[str, Any] | None:
    """The resource of an NDJSON line, or None when it is not one (the line is kept as it is: the
    screen counts malformed lines, and hydration must never drop one)."""
    try:
        value = json_codec.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


async def _fetch(client: FhirClient, batch: Batch, needs: set[str], errors: ErrorLog) -> Texts:
    resources = [r for _, r in batch if r is not None]
    wanted = {url: ctype for r in resources if owner_id(r) in needs for url, ctype in attachment_urls(r)}
    results = await fetch_attachments(
        client, [AttachmentRef(url, ctype) for url, ctype in sorted(wanted.items())]
    )
    texts = {r.url: r for r in results if isinstance(r, FetchedAttachment)}
    failed = len(results) - len(texts)
    if failed:
        errors.add(ATTACHMENT_FAILED, f"{failed} report text(s) in one batch", failed)
    return texts


def _write(batch: Batch, texts: Texts, out: BinaryIO) -> int:
    for line, item in batch:
        inlined = False
        for _, attachment in attachment_slots(item) if item is not None and texts else ():
            got = texts.get(attachment.get("url") or "")
            if got is not None and not attachment.get("data"):
                attachment["data"] = base64.b64encode(got.content).decode("ascii")
                attachment.setdefault("contentType", got.content_type)
                inlined = True
        if inlined:
            out.write(json.dumps(item, separators=(",", ":")).encode() + b"\n")
        else:
            out.write(line if line.endswith(b"\n") else line + b"\n")
    return len(texts)
