"""Hydration: report texts that a Bulk export leaves behind attachment URLs (DiagnosticReport
presentedForm, DocumentReference content) are fetched and written inline as `data`, for the
patients that need them — those with a cancer diagnosis in the export.

It is done bucket by bucket, after the partition pass (smartapp/screening/partition.py), in a thread
of its own while the cluster screens the buckets already done: fetching texts waits on the EHR and
screening uses the CPU, so the two overlap instead of adding up. Bucket files are rewritten line by
line (memory stays bounded); a text that cannot be fetched is counted and its report still read.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from fhirmaps import json_codec
from fhirmaps.diagnoses import read_condition
from fhirmaps.reports import attachment_slots, attachment_urls
from launch.backend_services import BackendServicesClient
from launch.bulk_manifest import iter_ndjson
from launch.discovery import Discovery
from launch.errors import FhirError, LaunchError
from launch.fetch import AttachmentRef, FetchedAttachment, fetch_attachments
from launch.fhir_client import FhirClient
from launch.http import create_http_client
from launch.registry import Registration
from smartapp.screening.errors import ATTACHMENT_FAILED, ErrorLog
from smartapp.screening.inputs import InputError, failure_text
from smartapp.screening.patients import owner_id

HOLDERS = ("DiagnosticReport", "DocumentReference")
BATCH = 64  # resources whose texts are fetched together
BATCH_LINES = 4096  # lines held in one batch at most (the lines between those resources)
# Batches whose fetches run at once while earlier ones are written out, in file order: the EHR's
# request limit stays busy across batches instead of draining at the end of each one, and at most
# WINDOW × BATCH resources (with their texts) are held in memory. A batch counts only resources with
# texts to fetch, so 4 batches keep more than 32 requests waiting.
WINDOW = 4
STOP_CHECK_SECONDS = 0.1  # how soon hydration notices that the screen it feeds has ended

# Each line as read, its "<patient id>\t" prefix, and its resource when it may hold a text to fetch
# (the line is written back unchanged when nothing is inlined into it: most lines are of that kind).
Batch = list[tuple[bytes, bytes, dict[str, Any] | None]]
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


@dataclass(frozen=True)
class BucketHydrator:
    """Fetches the texts of `needs`' reports from the EHR of `registration` (its backend services
    client), bucket by bucket, in a thread with its own event loop."""

    registration: Registration
    needs: frozenset[str]

    def stream(self, buckets: Sequence[Path], errors: ErrorLog) -> Iterator[Path]:
        """Each bucket once its texts are in, in order. `errors` is written by the hydrating thread
        until the stream ends; a failure there (the EHR refused the token, say) is raised here."""
        ready: queue.Queue[Path | BaseException | None] = queue.Queue()
        stop = threading.Event()

        def work() -> None:
            try:
                asyncio.run(self._hydrate_all(buckets, ready, stop, errors))
            except (FhirError, LaunchError) as exc:
                iss = self.registration.iss
                ready.put(InputError(f"report texts from {iss} could not be fetched: {failure_text(exc)}"))
            except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
                ready.put(exc)
            finally:
                ready.put(None)

        thread = threading.Thread(target=work, name="secondlook-hydrate", daemon=True)
        thread.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()

    async def _hydrate_all(
        self,
        buckets: Sequence[Path],
        ready: queue.Queue[Path | BaseException | None],
        stop: threading.Event,
        errors: ErrorLog,
    ) -> None:
        async with create_http_client() as http:
            tokens = BackendServicesClient(http, self.registration, Discovery(http))
            client = FhirClient(self.registration.iss, http, tokens)
            for bucket in buckets:
                task = asyncio.create_task(hydrate_bucket(client, bucket, self.needs, errors))
                while not task.done():
                    await asyncio.wait({task}, timeout=STOP_CHECK_SECONDS)
                    if stop.is_set():  # the screen ended (an error, Ctrl-C): stop mid-bucket
                        task.cancel()
                        await asyncio.gather(task, return_exceptions=True)
                        return
                task.result()
                ready.put(bucket)


async def hydrate_bucket(client: FhirClient, bucket: Path, needs: frozenset[str], errors: ErrorLog) -> int:
    """Inlines the report texts of `needs` in a bucket file ("<patient id>\\t<NDJSON line>" lines);
    returns how many were fetched. A bucket without such reports is left as it is."""
    if not needs:
        return 0
    hydrated = bucket.with_name(bucket.name + ".hydrating")
    with bucket.open("rb") as source, hydrated.open("wb") as out:
        fetched = await _rewrite(client, source, out, needs, errors)
    os.replace(hydrated, bucket)
    return fetched


async def _rewrite(
    client: FhirClient, source: BinaryIO, out: BinaryIO, needs: frozenset[str], errors: ErrorLog
) -> int:
    """Every line of `source` to `out`, in order, with the texts of the batches fetched WINDOW at a
    time."""
    fetched = 0
    pending: deque[tuple[Batch, asyncio.Task[Texts]]] = deque()
    try:
        for batch in _batches(source, needs):
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


def _batches(source: BinaryIO, needs: frozenset[str]) -> Iterator[Batch]:
    """Lines in batches of BATCH resources that may hold texts to fetch (lines of other patients,
    or without any URL, ride along unparsed)."""
    batch: Batch = []
    holders = 0
    for line in source:
        key, tab, body = line.partition(b"\t")
        resource = (
            _parsed(body) if tab and b'"url"' in body and key.decode("utf-8", "replace") in needs else None
        )
        batch.append((line, key + tab, resource))
        holders += resource is not None
        if holders >= BATCH or len(batch) >= BATCH_LINES:
            yield batch
            batch, holders = [], 0
    if batch:
        yield batch


def _parsed(line: bytes) -> dict[str, Any] | None:
    """The resource of an NDJSON line, or None when it is not one (the line is kept as it is)."""
    try:
        value = json_codec.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) and value.get("resourceType") in HOLDERS else None


async def _fetch(client: FhirClient, batch: Batch, errors: ErrorLog) -> Texts:
    resources = [r for _, _, r in batch if r is not None]
    wanted = {url: ctype for r in resources for url, ctype in attachment_urls(r)}
    results = await fetch_attachments(
        client, [AttachmentRef(url, ctype) for url, ctype in sorted(wanted.items())]
    )
    texts = {r.url: r for r in results if isinstance(r, FetchedAttachment)}
    failed = len(results) - len(texts)
    if failed:
        errors.add(ATTACHMENT_FAILED, f"{failed} report text(s) in one batch", failed)
    return texts


def _write(batch: Batch, texts: Texts, out: BinaryIO) -> int:
    for line, prefix, item in batch:
        inlined = False
        for _, attachment in attachment_slots(item) if item is not None and texts else ():
            got = texts.get(attachment.get("url") or "")
            if got is not None and not attachment.get("data"):
                attachment["data"] = base64.b64encode(got.content).decode("ascii")
                attachment.setdefault("contentType", got.content_type)
                inlined = True
        if inlined:
            out.write(prefix + json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
        else:
            out.write(line if line.endswith(b"\n") else line + b"\n")
    return len(texts)
