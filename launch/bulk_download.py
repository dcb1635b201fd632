"""Downloading a bulk export's files: bounded parallelism, streaming to disk, resumable.

Each manifest entry becomes `<dest>/<kind>/<Type>.<nnn>.ndjson` (or `.ndjson.gz` when the file
itself is gzip), where kind is output, error or deleted and nnn its position in the manifest. A
file is written to `.part` first and renamed when complete, so a re-run skips finished files and
continues a partial one with `Range` (asking for the identity encoding, so byte offsets are those
of the bytes already on disk); a server that ignores Range sends the whole file again.

The token goes only with `requiresAccessToken: true` and only to the FHIR server's own origin:
without it the URLs are capability URLs (Bulk Data 3.0), and Oracle Health redirects file
downloads to pre-signed storage URLs that must not see our token (fhir.cerner.com bulk-data.md).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal
from urllib.parse import urljoin

import httpx2

from launch.bulk_export import BulkExportClient, failure_from, is_temporary
from launch.bulk_manifest import GZIP_MAGIC, Manifest, ManifestFile
from launch.errors import FatalFhirError, FhirError, TemporaryFhirError

Kind = Literal["output", "error", "deleted"]
MAX_REDIRECTS = 3
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class DownloadedFile:
    kind: Kind
    type: str
    path: Path
    skipped: bool = False  # already complete from an earlier run
    url: str = ""  # the manifest entry's URL


@dataclass(frozen=True)
class FailedDownload:
    kind: Kind
    type: str
    message: str
    url: str = ""


@dataclass
class DownloadReport:
    files: list[DownloadedFile] = field(default_factory=list)
    failed: list[FailedDownload] = field(default_factory=list)

    def paths(self, kind: Kind) -> list[Path]:
        return [file.path for file in self.files if file.kind == kind]


async def download_manifest(
    client: BulkExportClient, manifest: Manifest, dest: Path, *, concurrency: int = 4
) -> DownloadReport:
    """Download every output, error and deleted file not yet on disk; failures are reported per
    file (after the client's bounded retries) and never stop the other files."""
    limit = asyncio.Semaphore(concurrency)
    report = DownloadReport()
    groups: tuple[tuple[Kind, tuple[ManifestFile, ...]], ...] = (
        ("output", manifest.output),
        ("error", manifest.errors),
        ("deleted", manifest.deleted),
    )
    jobs: list[tuple[Kind, int, ManifestFile]] = [
        (kind, index, file) for kind, files in groups for index, file in enumerate(files)
    ]

    async def one(kind: Kind, index: int, file: ManifestFile) -> None:
        async with limit:
            try:
                report.files.append(await _download(client, manifest, kind, index, file, dest))
            except FhirError as exc:
                report.failed.append(FailedDownload(kind, file.type, exc.message, file.url))

    await asyncio.gather(*(one(*job) for job in jobs))
    report.files.sort(key=lambda file: str(file.path))
    return report


async def _download(
    client: BulkExportClient, manifest: Manifest, kind: Kind, index: int, file: ManifestFile, dest: Path
) -> DownloadedFile:
    stem = dest / kind / f"{_UNSAFE.sub('_', file.type)}.{index:03d}"
    for done in (stem.with_name(stem.name + ".ndjson"), stem.with_name(stem.name + ".ndjson.gz")):
        if done.exists():
            return DownloadedFile(kind, file.type, done, skipped=True, url=file.url)
    part = stem.with_name(stem.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        attempt += 1
        try:
            await _fetch(client, manifest.requires_access_token, file.url, part)
            break
        except TemporaryFhirError:
            if attempt >= client.retry.tries:
                raise
            await client.sleep(client.retry.backoff(attempt))
    with part.open("rb") as probe:
        suffix = ".ndjson.gz" if probe.read(2) == GZIP_MAGIC else ".ndjson"
    final = stem.with_name(stem.name + suffix)
    part.replace(final)
    return DownloadedFile(kind, file.type, final, url=file.url)


async def _fetch(client: BulkExportClient, requires_token: bool, url: str, part: Path) -> None:
    """One attempt: stream the file (or its remainder) into `part`. Raises TemporaryFhirError for
    what a later attempt may fix, FatalFhirError otherwise."""
    operation = "download an export file"
    offset = _size(part)
    headers = {"Accept": "application/fhir+ndjson", "Accept-Encoding": "gzip"}
    if offset:
        headers.update({"Range": f"bytes={offset}-", "Accept-Encoding": "identity"})
    token = await client.tokens.token() if requires_token else None
    renewed = False
    hops = 0
    while True:
        sent = dict(headers)
        with_token = token is not None and client.same_origin(url)
        if with_token:
            sent["Authorization"] = f"Bearer {token}"
        try:
            async with client.http.stream("GET", url, headers=sent) as response:
                status = response.status_code
                if status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                    if hops >= MAX_REDIRECTS:
                        raise FatalFhirError("An export file redirected too many times.", operation=operation)
                    hops += 1
                    url = urljoin(url, response.headers["Location"])
                    continue
                if status == 401 and with_token and not renewed:
                    renewed = True
                    token = await client.tokens.reauthenticate(token)
                    continue
                if status == 416 and offset:
                    return  # the part already holds the whole file
                if status == 200 or (status == 206 and _continues_at(response, offset)):
                    await _write(response, part, append=status == 206)
                    return
                await response.aread()
                if status == 206:  # a range we did not ask for: start over
                    _discard(part)
                    raise TemporaryFhirError(
                        "The EHR sent the wrong part of an export file.", operation=operation
                    )
                failure = failure_from(response, operation, 1, is_temporary(response))
                if status in (401, 403) and not with_token and requires_token:
                    raise FatalFhirError(
                        "An export file on another server wants an access token; SecondLook does not send "
                        "its token to other servers.",
                        status=status,
                        operation=operation,
                    )
                raise failure
        except httpx2.TimeoutException as exc:
            raise TemporaryFhirError(
                f"The EHR did not answer in time to {operation}.", operation=operation
            ) from exc
        except httpx2.TransportError as exc:
            raise TemporaryFhirError(
                f"Could not reach the EHR to {operation} ({type(exc).__name__}).", operation=operation
            ) from exc


def _continues_at(response: httpx2.Response, offset: int) -> bool:
    return response.headers.get("Content-Range", "").replace(" ", "").startswith(f"bytes{offset}-")


async def _write(response: httpx2.Response, part: Path, *, append: bool) -> None:
    """Stream the (content-decoded) body to disk; bytes received before a failure stay in `part`."""
    handle = _open(part, append)
    try:
        async for chunk in response.aiter_bytes():
            handle.write(chunk)  # local disk: short blocking writes, as the event loop can afford
    finally:
        handle.close()


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _open(path: Path, append: bool) -> IO[bytes]:
    return path.open("ab" if append else "wb")
