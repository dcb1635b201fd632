"""Async FHIR REST client: read, search with paging, batch, attachments; retries and token handling.

The bearer token is only ever sent to URLs under the FHIR base (origin + path): `next` links and
attachment URLs pointing elsewhere are refused rather than followed (SAL app-launch: do not send
tokens to other servers). Every request goes through `launch.urls.url_under_base`, and the URL
requested is the normalised one that check approved (dot segments resolved).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urljoin, urlsplit
from weakref import WeakKeyDictionary

import httpx2

from fhirmaps import json_codec
from launch.errors import FatalFhirError, FhirAuthError, FhirError, TemporaryFhirError
from launch.retry import TEMPORARY_STATUSES, RetryPolicy
from launch.tokens import TokenSource
from launch.urls import normalize_url, url_under_base

FHIR_JSON = "application/fhir+json"
# Requests in flight to one EHR when neither the registry nor the caller says otherwise; the app
# passes its own setting (SECONDLOOK_FHIR_MAX_CONCURRENCY) or the EHR's registry value.
DEFAULT_MAX_CONCURRENCY = 48
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_RESOURCE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
Sleep = Callable[[float], Awaitable[None]]

# A parameter may repeat (`date=ge…&date=lt…`): give its values as a list.
SearchParams = dict[str, str | list[str]]
PageHook = Callable[[list[dict[str, Any]]], None]

# Statuses by which an EHR says "too much": the per-EHR limit backs off on them.
THROTTLE_STATUSES = frozenset({429, 503})
# Priorities of waiting requests: searches and their next pages form the record read's sequential
# chains, so they go before attachment downloads, which can run in any order.
URGENT = 0
BULK = 1
# How long a halved limit stays halved at least (longer when the EHR's Retry-After says so).
COOLDOWN_SECONDS = 30.0


class EhrLimit:
    """The in-flight limit to one EHR, shared by every client for it in one event loop.

    At most `ceiling` requests are in flight. When the EHR answers 429 or 503 the limit halves
    (minimum 1) and stays there for a cool-down (`COOLDOWN_SECONDS`, or the EHR's Retry-After if
    longer); afterwards it grows back by one per `limit` successful answers (about one per round
    trip) up to the ceiling. Answers to requests sent before the last halving do not halve it
    again, so one burst of 429s halves it once, not once per request. Searches go before waiting
    attachment downloads, and downloads never take the last quarter of the slots (`_free_for`).
    """

    def __init__(
        self, ceiling: int, *, cooldown: float = COOLDOWN_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = self.ceiling
        self.in_flight = 0
        self.peak = 0
        self.cooldown = cooldown
        self._clock = clock
        self._cool_until = 0.0
        self._epoch = 0
        self._successes = 0
        self._waiters: list[tuple[int, int, asyncio.Future[int]]] = []  # sorted: priority, arrival
        self._arrivals = itertools.count()

    def configure(self, ceiling: int) -> None:
        """The latest configured ceiling wins (a registry reload may change it)."""
        ceiling = max(1, ceiling)
        if ceiling != self.ceiling:
            self.ceiling = ceiling
            self.limit = min(self.limit, ceiling) if self._clock() < self._cool_until else ceiling
            self._wake()

    def _free_for(self, priority: int) -> bool:
        """Whether a request of this priority may take a slot now. Attachment downloads leave a
        quarter of the slots to searches: a report page can name dozens of texts at once, and the
        searches that arrive next (date windows, next pages) are the read's sequential chain."""
        reserve = self.limit // 4 if priority > URGENT else 0
        return self.in_flight < self.limit - reserve

    async def acquire(self, priority: int = URGENT) -> int:
        """Wait for a slot; returns the epoch to hand back to `release`. Waiting requests get
        free slots in order of `priority` (lower first), then of arrival."""
        if self._free_for(priority) and not (self._waiters and self._waiters[0][0] <= priority):
            self._take()
            return self._epoch
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        entry = (priority, next(self._arrivals), waiter)
        bisect.insort(self._waiters, entry, key=lambda e: (e[0], e[1]))
        try:
            return await waiter
        except asyncio.CancelledError:
            if entry in self._waiters:
                self._waiters.remove(entry)
            elif waiter.done() and not waiter.cancelled():
                self.in_flight -= 1  # the slot was handed over just before the cancel: pass it on
                self._wake()
            raise

    def _take(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    def release(self, epoch: int, status: int | None) -> None:
        """`status` is the HTTP status of the answer (None: no answer). Synchronous, so a
        cancelled request still gives its slot back."""
        self.in_flight -= 1
        if status in THROTTLE_STATUSES:
            self._throttled(epoch)
        elif status is not None and status < 400:
            self._succeeded()
        self._wake()

    def _wake(self) -> None:
        """Hand free slots to the most urgent waiters."""
        while self._waiters and self._free_for(self._waiters[0][0]):
            _priority, _arrival, waiter = self._waiters.pop(0)
            if waiter.done():
                continue
            self._take()
            waiter.set_result(self._epoch)

    def throttle_for(self, seconds: float) -> None:
        """Keep the limit down at least this long (the EHR's Retry-After)."""
        self._cool_until = max(self._cool_until, self._clock() + seconds)

    def _throttled(self, epoch: int) -> None:
        self._cool_until = max(self._cool_until, self._clock() + self.cooldown)
        self._successes = 0
        if epoch == self._epoch:
            self.limit = max(1, self.limit // 2)
            self._epoch += 1

    def _succeeded(self) -> None:
        if self.limit >= self.ceiling or self._clock() < self._cool_until:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit += 1


# One limit per (event loop, FHIR base): every client for the same EHR shares it.
_LIMITS: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, EhrLimit]] = WeakKeyDictionary()


def ehr_limit(base_url: str, ceiling: int) -> EhrLimit:
    per_loop = _LIMITS.setdefault(asyncio.get_running_loop(), {})
    limit = per_loop.get(base_url)
    if limit is None:
        limit = per_loop[base_url] = EhrLimit(ceiling)
    else:
        limit.configure(ceiling)
    return limit


@dataclass
class SearchResult:
    resources: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    truncated: bool = False
    outcomes: list[str] = field(default_factory=list)  # OperationOutcome texts found in the Bundles


class FhirClient:
    def __init__(
        self,
        base_url: str,
        http: httpx2.AsyncClient,
        token_source: TokenSource,
        *,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        sleep: Sleep = asyncio.sleep,
        server_name: str = "the EHR",
    ) -> None:
        """`timeout` (seconds per request) overrides the HTTP client's own; `sleep` is injectable for
        tests; `server_name` is how error messages call the server ("the EHR", "the receiving center")."""
        self.base_url = base_url.rstrip("/")
        self._server = server_name
        self._server_title = server_name[:1].upper() + server_name[1:]
        self._http = http
        self._tokens = token_source
        self._max_concurrency = max_concurrency
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._timeout = httpx2.Timeout(timeout) if timeout is not None else None
        self._batch_support: bool | None = None
        self._batch_lock = asyncio.Lock()

    @property
    def limit(self) -> EhrLimit:
        """This EHR's shared in-flight limit (see `EhrLimit`)."""
        return ehr_limit(self.base_url, self._max_concurrency)

    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        operation = f"read {resource_type}"
        # Ids reach us from token responses and references: refuse anything that could change the path.
        if not _RESOURCE_TYPE.fullmatch(resource_type) or not _RESOURCE_ID.fullmatch(resource_id):
            raise FatalFhirError(
                f"Refused to {operation}: the resource id is not a valid FHIR id.", operation=operation
            )
        return await self._json("GET", f"{self.base_url}/{resource_type}/{resource_id}", operation)

    async def search(
        self, resource_type: str, params: SearchParams, max_pages: int = 50, on_page: PageHook | None = None
    ) -> SearchResult:
        """`on_page` sees each page's resources as it arrives (e.g. to start work on them while
        the next page is on its way)."""
        operation = f"search {resource_type}"
        result = SearchResult()
        url: str | None = f"{self.base_url}/{resource_type}"
        query: SearchParams | None = params
        while url is not None:
            if result.pages >= max_pages:
                result.truncated = True
                break
            bundle = await self._json("GET", url, operation, params=query)
            result.pages += 1
            page_start = len(result.resources)
            query = None  # next links are opaque and already carry the query
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if not isinstance(resource, dict):
                    continue
                mode = (entry.get("search") or {}).get("mode")
                if resource.get("resourceType") == "OperationOutcome" or mode == "outcome":
                    result.outcomes.extend(outcome_messages(resource))
                else:
                    result.resources.append(resource)
            if on_page is not None:
                on_page(result.resources[page_start:])
            url = self._next_link(bundle)
            if url is not None:
                url = url_under_base(url, self.base_url)
                if url is None:
                    # Following it would hand our token to another server; report rather than follow.
                    result.truncated = True
                    result.outcomes.append(
                        "A next-page link pointed outside the FHIR server and was not followed."
                    )
                    break
        return result

    async def batch(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": entries}
        response = await self._json("POST", self.base_url, "batch", body=bundle)
        return [entry for entry in response.get("entry") or [] if isinstance(entry, dict)]

    async def supports_batch(self) -> bool:
        """Whether the server's CapabilityStatement offers the `batch` interaction. Read once per
        client, in one try: a server that does not answer `metadata` is taken not to (the caller
        then sends single requests, as it would anyway)."""
        async with self._batch_lock:
            if self._batch_support is None:
                try:
                    statement = await self._json("GET", f"{self.base_url}/metadata", "read metadata", tries=1)
                except FhirError:
                    statement = {}
                self._batch_support = offers_batch(statement)
            return self._batch_support

    def stop_batching(self) -> None:
        """The server refused a batch although its CapabilityStatement offers it: send single
        requests from now on."""
        self._batch_support = False

    def binary_id(self, url: str) -> str | None:
        """The id when `url` (relative to the base, or absolute under it) is a plain read of a
        Binary, which a batch can carry; None for any other URL."""
        absolute = url_under_base(urljoin(self.base_url + "/", url), self.base_url)
        prefix = self._binary_prefix
        if absolute is None or prefix is None:
            return None
        parts = urlsplit(absolute)
        if parts.query or not parts.path.startswith(prefix):
            return None
        resource_id = parts.path[len(prefix) :]
        return resource_id if _RESOURCE_ID.fullmatch(resource_id) else None

    @cached_property
    def _binary_prefix(self) -> str | None:
        """The path of a Binary read under the base, as `url_under_base` normalizes it."""
        base = normalize_url(self.base_url)
        return None if base is None else urlsplit(base).path.rstrip("/") + "/Binary/"

    async def create(
        self, resource_type: str, resource: dict[str, Any], *, if_none_exist: str
    ) -> dict[str, Any]:
        """Conditional create: the server creates the resource only when no resource matches
        `if_none_exist` (e.g. "identifier=system|value"), so retrying after a lost answer or a 503
        cannot make a duplicate. Returns the HTTP status (201 created, 200 already there), the
        server id, the Location and the returned resource (empty when the server sends none)."""
        operation = f"create {resource_type}"
        if not _RESOURCE_TYPE.fullmatch(resource_type) or resource.get("resourceType") != resource_type:
            raise FatalFhirError(
                f"Refused to {operation}: the resource type does not match.", operation=operation
            )
        response = await self._send(
            "POST",
            f"{self.base_url}/{resource_type}",
            operation,
            body=resource,
            headers={"If-None-Exist": if_none_exist},
        )
        try:
            document = response.json() if response.content else {}
        except ValueError:
            document = {}
        body = document if isinstance(document, dict) else {}
        location = response.headers.get("Location") or response.headers.get("Content-Location") or ""
        return {
            "status": response.status_code,
            "id": str(body.get("id") or _id_from_location(location, resource_type)),
            "location": location,
            "resource": body,
        }

    async def fetch_attachment(self, url: str, content_type: str) -> tuple[bytes, str]:
        absolute = url_under_base(urljoin(self.base_url + "/", url), self.base_url)
        if absolute is None:
            raise FatalFhirError(
                "The attachment is stored on a different server than the EHR's FHIR server; "
                "SecondLook does not send your access to other servers.",
                operation="fetch attachment",
            )
        # Oracle Health returns raw bytes only when Accept is the attachment's own contentType.
        response = await self._send(
            "GET", absolute, "fetch attachment", accept=content_type or "*/*", priority=BULK
        )
        return response.content, response.headers.get("Content-Type", content_type)

    def is_under_base(self, url: str) -> bool:
        return url_under_base(url, self.base_url) is not None

    @staticmethod
    def _next_link(bundle: dict[str, Any]) -> str | None:
        for link in bundle.get("link") or []:
            if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
                return str(link["url"])
        return None

    async def _json(
        self,
        method: str,
        url: str,
        operation: str,
        *,
        params: SearchParams | None = None,
        body: dict[str, Any] | None = None,
        tries: int | None = None,
    ) -> dict[str, Any]:
        response = await self._send(method, url, operation, params=params, body=body, tries=tries)
        try:
            document = json_codec.loads(response.content)
        except (ValueError, RecursionError) as exc:
            raise FatalFhirError(
                f"{self._server_title} returned malformed JSON for {operation}.",
                status=response.status_code,
                operation=operation,
            ) from exc
        if not isinstance(document, dict):
            raise FatalFhirError(
                f"{self._server_title} returned malformed JSON for {operation} (not an object).",
                status=response.status_code,
                operation=operation,
            )
        return document

    async def _send(
        self,
        method: str,
        url: str,
        operation: str,
        *,
        params: SearchParams | None = None,
        body: dict[str, Any] | None = None,
        accept: str = FHIR_JSON,
        headers: dict[str, str] | None = None,
        priority: int = URGENT,
        tries: int | None = None,
    ) -> httpx2.Response:
        """`tries` (the retry policy's by default) counts the first attempt."""
        tries = self._retry.tries if tries is None else tries
        checked = url_under_base(url, self.base_url)
        if checked is None:
            # Every path here builds URLs under the base; this is the last line if one ever does not.
            raise FatalFhirError(
                f"Refused to {operation}: the address is outside {self._server}'s FHIR server.",
                operation=operation,
            )
        url = checked
        token = await self._tokens.token()
        reauthenticated = False
        attempt = 0
        while True:
            attempt += 1
            sent = {**(headers or {}), "Authorization": f"Bearer {token}", "Accept": accept}
            if body is not None:
                sent["Content-Type"] = FHIR_JSON
            try:
                response = await self._limited_request(method, url, params, body, sent, priority)
            except httpx2.TimeoutException as exc:
                failure: FhirError = TemporaryFhirError(
                    f"{self._server_title} did not answer {operation} in time.", operation=operation
                )
                if attempt >= tries:
                    raise failure from exc
                await self._sleep(self._retry.backoff(attempt))
                continue
            except httpx2.TransportError as exc:
                if attempt >= tries or not isinstance(exc, httpx2.NetworkError):
                    raise TemporaryFhirError(
                        f"Could not reach {self._server} for {operation} ({type(exc).__name__}).",
                        operation=operation,
                    ) from exc
                await self._sleep(self._retry.backoff(attempt))
                continue
            status = response.status_code
            if status < 300:
                return response
            if status == 401 and not reauthenticated:
                # The token was revoked or expired early: refresh once, without spending a retry.
                reauthenticated = True
                attempt -= 1
                token = await self._tokens.reauthenticate(token)
                continue
            message = f"{self._server_title} answered HTTP {status} to {operation}"
            details = outcome_messages_from(response)
            if details:
                message += ": " + "; ".join(details)
            said = tuple(details)
            if status == 401:
                advice = ". Please relaunch SecondLook from the EHR." if self._server == "the EHR" else "."
                raise FhirAuthError(message + advice, status=status, operation=operation, details=said)
            if status not in TEMPORARY_STATUSES:
                raise FatalFhirError(message + ".", status=status, operation=operation, details=said)
            if attempt >= tries:
                raise TemporaryFhirError(
                    message + f" (gave up after {attempt} tries). Try again in a few minutes.",
                    status=status,
                    operation=operation,
                    details=said,
                )
            wait = self._retry.delay(attempt, response.headers.get("Retry-After"))
            if status in THROTTLE_STATUSES:
                self.limit.throttle_for(wait)
            await self._sleep(wait)

    async def _limited_request(
        self,
        method: str,
        url: str,
        params: SearchParams | None,
        body: dict[str, Any] | None,
        headers: dict[str, str],
        priority: int,
    ) -> httpx2.Response:
        """One HTTP request inside this EHR's in-flight limit; its answer adjusts the limit."""
        limit = self.limit
        epoch = await limit.acquire(priority)
        status: int | None = None
        try:
            response = await self._http.request(
                method,
                url,
                params=params,
                json=body,
                headers=headers,
                timeout=self._timeout or httpx2.USE_CLIENT_DEFAULT,
            )
            status = response.status_code
            return response
        finally:
            limit.release(epoch, status)


def _id_from_location(location: str, resource_type: str) -> str:
    """The id in a Location such as ".../ServiceRequest/123/_history/1"."""
    parts = urlsplit(location).path.split("/")
    for index, part in enumerate(parts[:-1]):
        if part == resource_type:
            return parts[index + 1]
    return ""


def offers_batch(statement: dict[str, Any]) -> bool:
    """Whether a CapabilityStatement's server part lists the `batch` interaction."""
    if statement.get("resourceType") != "CapabilityStatement":
        return False
    for rest in _as_list(statement.get("rest")):
        if isinstance(rest, dict) and rest.get("mode", "server") == "server":
            if any(
                isinstance(interaction, dict) and interaction.get("code") == "batch"
                for interaction in _as_list(rest.get("interaction"))
            ):
                return True
    return False


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def outcome_messages(outcome: dict[str, Any]) -> list[str]:
    """The human-readable texts of an OperationOutcome's issues."""
    messages: list[str] = []
    for issue in outcome.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        details = issue.get("details")
        text = details.get("text") if isinstance(details, dict) else None
        for value in (issue.get("diagnostics"), text):
            if isinstance(value, str) and value and value not in messages:
                messages.append(value)
    return messages


def outcome_messages_from(response: httpx2.Response) -> list[str]:
    try:
        document = response.json()
    except ValueError:
        return []
    if isinstance(document, dict) and document.get("resourceType") == "OperationOutcome":
        return outcome_messages(document)
    return []
