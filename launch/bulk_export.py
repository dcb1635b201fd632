"""Bulk Data `$export`: kick-off (GET or POST Parameters), status polling, cancel.

Kick-off answers 202 with the status URL in `Content-Location`; the status URL answers 202 while
the export runs (with an optional `X-Progress` text and `Retry-After`), 429 to a client that polls
too fast, and 200 with the manifest when done. The status URL and file downloads get our token, so
they must be on the FHIR server's own origin; a status URL elsewhere is refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urljoin, urlsplit

import httpx2

from launch.bulk_manifest import Manifest, parse_manifest
from launch.errors import FatalFhirError, FhirAuthError, TemporaryFhirError
from launch.fhir_client import FHIR_JSON, Sleep, outcome_messages_from
from launch.retry import TEMPORARY_STATUSES, RetryPolicy, parse_retry_after
from launch.tokens import TokenSource

NDJSON = "application/fhir+ndjson"


class ExportTimeout(TemporaryFhirError):
    """The export did not finish within the configured ceiling; it may still be running."""


@dataclass(frozen=True)
class ExportRequest:
    """What to export. `level` "group" needs `group_id`; `patients` needs POST (the spec's rule)."""

    level: Literal["system", "patient", "group"] = "group"
    group_id: str | None = None
    types: Sequence[str] = ()
    since: str | None = None  # an instant, typically the previous run's transactionTime
    type_filters: Sequence[str] = ()
    patients: Sequence[str] = ()  # "Patient/<id>" references
    output_format: str | None = None
    method: Literal["GET", "POST"] | None = None  # None: POST when `patients` is given, else GET
    # Bulk Data 3.0: files of resource blocks, one per instance of this type ("Patient"), instead
    # of one type per file; a server that cannot may refuse it (the caller asks again without).
    organize_output_by: str | None = None
    allow_partial_manifests: bool = False  # 3.0: files listed while the export still runs

    def __post_init__(self) -> None:
        if self.level == "group" and not self.group_id:
            raise ValueError("a group-level export needs group_id")
        if self.level != "group" and self.group_id:
            raise ValueError("group_id only applies to a group-level export")
        if self.patients and (self.level == "system" or self.method == "GET"):
            raise ValueError("the patient parameter needs a patient or group export by POST")

    @property
    def http_method(self) -> str:
        return self.method or ("POST" if self.patients else "GET")

    @property
    def path(self) -> str:
        if self.level == "group":
            return f"Group/{quote(str(self.group_id), safe='')}/$export"
        return "Patient/$export" if self.level == "patient" else "$export"

    def scope_key(self) -> str:
        """Names what this export covers, for storing its transactionTime (`_since` is not part)."""
        parts = [
            self.level,
            self.group_id or "",
            ",".join(sorted(self.types)),
            "|".join(sorted(self.type_filters)),
        ]
        return ":".join(parts)

    def query(self) -> list[tuple[str, str | int | float | bool | None]]:
        """GET parameters: `_type` as one comma list (Oracle Health refuses a repeated `_type`),
        `_typeFilter` repeated (its values contain commas of their own)."""
        params: list[tuple[str, str | int | float | bool | None]] = []
        if self.output_format:
            params.append(("_outputFormat", self.output_format))
        if self.since:
            params.append(("_since", self.since))
        if self.types:
            params.append(("_type", ",".join(self.types)))
        params += [("_typeFilter", value) for value in self.type_filters]
        if self.organize_output_by:
            params.append(("organizeOutputBy", self.organize_output_by))
        if self.allow_partial_manifests:
            params.append(("allowPartialManifests", "true"))
        return params

    def parameters(self) -> dict[str, Any]:
        """The POST body: a FHIR Parameters resource with one entry per value (as 4.0 requires)."""
        entries: list[dict[str, Any]] = []
        if self.output_format:
            entries.append({"name": "_outputFormat", "valueString": self.output_format})
        if self.since:
            entries.append({"name": "_since", "valueInstant": self.since})
        entries += [{"name": "_type", "valueString": value} for value in self.types]
        entries += [{"name": "_typeFilter", "valueString": value} for value in self.type_filters]
        entries += [{"name": "patient", "valueReference": {"reference": ref}} for ref in self.patients]
        if self.organize_output_by:
            entries.append({"name": "organizeOutputBy", "valueString": self.organize_output_by})
        if self.allow_partial_manifests:
            entries.append({"name": "allowPartialManifests", "valueBoolean": True})
        return {"resourceType": "Parameters", "parameter": entries}


@dataclass(frozen=True)
class PollingPolicy:
    """Waits between status polls grow from `first_delay` by `factor` up to `max_delay`; the
    server's Retry-After replaces the computed wait (never beyond `max_delay`). `max_wait` caps
    the whole export; `tries` caps consecutive failed polls (5xx, timeouts)."""

    first_delay: float = 2.0
    factor: float = 1.5
    max_delay: float = 300.0
    max_wait: float = 24 * 3600.0
    tries: int = 5


@dataclass(frozen=True)
class ExportProgress:
    polls: int
    elapsed: float  # seconds since polling started
    text: str | None  # the server's X-Progress, if any
    rate_limited: bool = False  # the server answered 429 to this poll


ProgressCallback = Callable[[ExportProgress], None]
# Called with the manifest so far (every page) when a poll answers 202 with a partial manifest
# (`allow_partial_manifests`); its files are final and may be downloaded while the export runs.
PartialCallback = Callable[[Manifest], Awaitable[None]]


@dataclass
class BulkExportClient:
    """Talks to one FHIR server's Bulk Data endpoints with a (backend services) token source."""

    base_url: str
    http: httpx2.AsyncClient
    tokens: TokenSource
    polling: PollingPolicy = field(default_factory=PollingPolicy)
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(tries=4, base_delay=2.0, max_delay=120.0))
    sleep: Sleep = asyncio.sleep
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    def same_origin(self, url: str) -> bool:
        target, base = urlsplit(url), urlsplit(self.base_url)
        return (target.scheme, target.netloc) == (base.scheme, base.netloc)

    async def kick_off(self, request: ExportRequest) -> str:
        """Start an export; returns its status URL. 429 (an export already running) and temporary
        errors are retried a few times; a refusal raises FatalFhirError with the server's text."""
        operation = "start the bulk export"
        url = f"{self.base_url}/{request.path}"
        headers = {"Accept": FHIR_JSON, "Prefer": "respond-async"}
        attempt = 0
        while True:
            attempt += 1
            if request.http_method == "POST":
                response = await self.send(
                    "POST", url, operation, headers={**headers, "Content-Type": FHIR_JSON},
                    json=request.parameters(),
                )  # fmt: skip
            else:
                response = await self.send("GET", url, operation, headers=headers, params=request.query())
            if response.status_code == 202:
                location = response.headers.get("Content-Location")
                if not location:
                    raise FatalFhirError(
                        "The EHR accepted the bulk export but sent no status address (Content-Location).",
                        status=202,
                        operation=operation,
                    )
                status_url = urljoin(url, location)
                if not self.same_origin(status_url):
                    raise FatalFhirError(
                        "The EHR's export status address is on another server; SecondLook does not "
                        "send its access token there.",
                        status=202,
                        operation=operation,
                    )
                return status_url
            if is_temporary(response) and attempt < self.retry.tries:
                await self.sleep(self._wait(response, self.retry.backoff(attempt), self.retry.max_delay))
                continue
            raise failure_from(response, operation, attempt, is_temporary(response))

    async def wait_for_manifest(
        self,
        status_url: str,
        on_progress: ProgressCallback | None = None,
        on_partial: PartialCallback | None = None,
    ) -> Manifest:
        """Poll until the export completes; returns its manifest (all pages of a partial one).
        With `on_partial`, each partial manifest a 202 carries is handed over as it grows."""
        operation = "check the bulk export status"
        started = self.clock()
        polls = failures = 0
        pages: dict[str, Manifest] = {}
        backoff = self.polling.first_delay
        while True:
            polls += 1
            try:
                response = await self.send(
                    "GET", status_url, operation, headers={"Accept": "application/json"}
                )
            except TemporaryFhirError:
                response = None
            status = response.status_code if response is not None else None
            if response is not None and status == 200:
                return await self._complete(response, status_url, pages)
            if response is not None and status in (202, 429):
                failures = 0
                if on_partial is not None and status == 202 and (partial := _partial(response, status_url)):
                    await on_partial(await self._all_pages(partial, pages))
                if on_progress is not None:
                    text = response.headers.get("X-Progress") if status == 202 else None
                    on_progress(
                        ExportProgress(polls, self.clock() - started, text, rate_limited=status == 429)
                    )
                wait = self._wait(response, backoff, self.polling.max_delay)
                backoff = min(backoff * self.polling.factor, self.polling.max_delay)
            elif response is None or is_temporary(response):
                failures += 1
                if failures >= self.polling.tries:
                    if response is None:
                        raise TemporaryFhirError(
                            f"The EHR did not answer when asked about the bulk export ({failures} tries). "
                            "The export may still be running; run again later to resume it.",
                            operation=operation,
                        )
                    raise failure_from(response, operation, failures, True)
                fallback = self.retry.backoff(failures)
                wait = self._wait(response, fallback, self.polling.max_delay) if response else fallback
            else:
                raise failure_from(response, operation, polls, False)
            elapsed = self.clock() - started
            if elapsed + wait > self.polling.max_wait:
                raise ExportTimeout(
                    f"The bulk export did not finish within {self.polling.max_wait / 60:.0f} minutes. It may "
                    "still be running on the EHR; run again later to resume it, or cancel it.",
                    operation=operation,
                )
            await self.sleep(wait)

    async def cancel(self, status_url: str) -> None:
        """DELETE the export: cancels a running one, or lets the server remove a finished one's files.
        404 counts as done (HAPI forgets finished jobs by itself)."""
        operation = "cancel the bulk export"
        if not self.same_origin(status_url):
            raise FatalFhirError("Refused to cancel an export on another server.", operation=operation)
        response = await self.send("DELETE", status_url, operation, headers={"Accept": FHIR_JSON})
        if response.status_code >= 300 and response.status_code != 404:
            raise failure_from(response, operation, 1, is_temporary(response))

    async def send(
        self,
        method: str,
        url: str,
        operation: str,
        *,
        headers: dict[str, str],
        params: list[tuple[str, str | int | float | bool | None]] | None = None,
        json: dict[str, Any] | None = None,
    ) -> httpx2.Response:
        """One request with our bearer token; a 401 gets one new token and one more try. Timeouts
        and network errors become TemporaryFhirError; statuses are left to the caller."""
        token = await self.tokens.token()
        for renewed in (False, True):
            try:
                response = await self.http.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers={**headers, "Authorization": f"Bearer {token}"},
                )
            except httpx2.TimeoutException as exc:
                raise TemporaryFhirError(
                    f"The EHR did not answer in time to {operation}.", operation=operation
                ) from exc
            except httpx2.TransportError as exc:
                raise TemporaryFhirError(
                    f"Could not reach the EHR to {operation} ({type(exc).__name__}).", operation=operation
                ) from exc
            if response.status_code != 401 or renewed:
                break
            token = await self.tokens.reauthenticate(token)
        if response.status_code == 401:
            raise FhirAuthError(
                _message(response, operation) + " even with a new access token. Check the backend_services "
                "registration and the scopes the EHR granted.",
                status=401,
                operation=operation,
            )
        return response

    async def _complete(
        self, response: httpx2.Response, status_url: str, pages: dict[str, Manifest] | None = None
    ) -> Manifest:
        try:
            manifest = parse_manifest(response.json(), status_url)
        except ValueError as exc:
            raise FatalFhirError(
                "The EHR's bulk export manifest is not valid JSON.", status=200, operation="read the manifest"
            ) from exc
        return await self._all_pages(manifest, {} if pages is None else pages)

    async def _all_pages(self, manifest: Manifest, pages: dict[str, Manifest]) -> Manifest:
        """`manifest` merged with the pages its `next` links lead to. A page, once served, does not
        change but may gain a `next` link (the spec's rule), so `pages` keeps those already read
        and only a last page is asked for again."""
        while manifest.next_url is not None:
            url = manifest.next_url
            if not self.same_origin(url):
                raise FatalFhirError("A manifest page is on another server; it was not fetched.")
            page = pages.get(url)
            if page is None or page.next_url is None:
                answer = await self.send(
                    "GET", url, "read the manifest", headers={"Accept": "application/json"}
                )
                if answer.status_code != 200:
                    raise failure_from(answer, "read the manifest", 1, is_temporary(answer))
                try:
                    page = parse_manifest(answer.json(), url)
                except ValueError as exc:
                    raise FatalFhirError(
                        "A page of the EHR's bulk export manifest is not valid JSON.",
                        operation="read the manifest",
                    ) from exc
                pages[url] = page
            manifest = manifest.merged(page)
        return manifest

    def _wait(self, response: httpx2.Response, fallback: float, ceiling: float) -> float:
        server = retry_after_seconds(response.headers.get("Retry-After"))
        return min(server if server is not None else fallback, ceiling)


def _partial(response: httpx2.Response, status_url: str) -> Manifest | None:
    """The partial manifest a 202 may carry (`allowPartialManifests`); None when it carries none
    (or one that cannot be read: the export goes on, and its final manifest is read in full)."""
    if not response.content or "json" not in response.headers.get("Content-Type", ""):
        return None
    try:
        return parse_manifest(response.json(), status_url)
    except (ValueError, FatalFhirError):
        return None


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds to wait: delta-seconds or an HTTP date. bulk-data-server's 429 sends
    an absolute Unix time (milliseconds, then seconds) instead; such values are read as times."""
    now = now or datetime.now(UTC)
    if value and value.strip().isdigit():
        number = int(value.strip())
        if number > 10**12:
            return max(0.0, number / 1000 - now.timestamp())
        if number > 10**9:
            return max(0.0, number - now.timestamp())
    return parse_retry_after(value, now)


def is_temporary(response: httpx2.Response) -> bool:
    """A temporary status, or an OperationOutcome whose issue code is `transient` (the spec's
    signal for a polling failure that is not the export's)."""
    if response.status_code in TEMPORARY_STATUSES:
        return True
    try:
        document = response.json()
    except ValueError:
        return False
    issues = document.get("issue") if isinstance(document, dict) else None
    return isinstance(issues, list) and any(
        isinstance(issue, dict) and issue.get("code") == "transient" for issue in issues
    )


def _message(response: httpx2.Response, operation: str) -> str:
    message = f"The EHR answered HTTP {response.status_code} when asked to {operation}"
    details = outcome_messages_from(response)
    return message + (": " + "; ".join(details) if details else "")


def failure_from(
    response: httpx2.Response, operation: str, tries: int, temporary: bool
) -> TemporaryFhirError | FatalFhirError:
    message = _message(response, operation)
    if temporary:
        return TemporaryFhirError(
            f"{message} (gave up after {tries} tries). Try again later.",
            status=response.status_code,
            operation=operation,
        )
    if response.status_code in (404, 410):
        message += " (the export was cancelled, has expired, or is unknown to the EHR)"
    return FatalFhirError(message + ".", status=response.status_code, operation=operation)
