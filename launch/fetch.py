"""Reading a patient's record in parallel: many searches and attachments, partial failure kept as gaps.

Nothing here knows which resources matter clinically; callers pass `SearchSpec`s. A missing scope
or a failed search becomes a `Gap`, so "no results" is never confused with "could not look".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Literal

from launch.errors import FatalFhirError, FhirError
from launch.fhir_client import FhirClient, PageHook, SearchParams, SearchResult
from launch.scopes import GrantedScopes

GapReason = Literal["scope_not_granted", "fetch_failed", "truncated"]


@dataclass(frozen=True)
class SearchSpec:
    resource_type: str
    params: SearchParams
    label: str
    # Disjoint searches that together find what this one finds (date windows, say). With parts, the
    # search itself is sent for one page: when that page is the whole answer (most records), nothing
    # more is sent; when it has a next page, the parts are read in parallel instead, so a long record
    # is read as several short page chains rather than one long one.
    parts: tuple[SearchSpec, ...] = ()


@dataclass(frozen=True)
class Gap:
    label: str
    resource_type: str
    reason: GapReason
    message: str


@dataclass
class FetchResult:
    resources: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r.get("resourceType") == resource_type]


@dataclass(frozen=True)
class AttachmentRef:
    url: str
    content_type: str
    label: str = ""  # e.g. the reference of the resource that holds the attachment


@dataclass(frozen=True)
class FetchedAttachment:
    url: str  # as given in the AttachmentRef (may be relative)
    content_type: str  # as returned by the server
    content: bytes = field(repr=False)
    label: str = ""


async def fetch_searches(
    client: FhirClient, searches: list[SearchSpec], granted: GrantedScopes, on_page: PageHook | None = None
) -> FetchResult:
    """Run every search the granted scopes allow, concurrently (the client's semaphore bounds it)."""
    result = FetchResult()
    allowed: list[SearchSpec] = []
    for spec in searches:
        if granted.can_search(spec.resource_type) or _as_read(spec, granted) is not None:
            allowed.append(spec)
        else:
            result.gaps.append(
                Gap(
                    spec.label,
                    spec.resource_type,
                    "scope_not_granted",
                    f"SecondLook was not given permission to search {spec.resource_type} records, "
                    "so this part of the record was not checked.",
                )
            )
    answered = await asyncio.gather(*(_run_or_split(client, spec, granted, on_page) for spec in allowed))
    seen: set[tuple[str, str]] = set()
    for spec, outcome in (pair for pairs in answered for pair in pairs):
        if isinstance(outcome, FhirError):
            result.gaps.append(Gap(spec.label, spec.resource_type, "fetch_failed", outcome.message))
            continue
        if isinstance(outcome, BaseException):
            raise outcome  # not a FHIR failure (e.g. the launch session ended): let the caller handle it
        if outcome.truncated:
            result.gaps.append(
                Gap(
                    spec.label,
                    spec.resource_type,
                    "truncated",
                    f"Only the first {outcome.pages} pages of {spec.resource_type} results were read.",
                )
            )
        result.outcomes.extend(outcome.outcomes)
        for resource in outcome.resources:
            key = (str(resource.get("resourceType")), str(resource.get("id")))
            if resource.get("id") is not None and key in seen:
                continue
            seen.add(key)
            result.resources.append(resource)
    return result


def _as_read(spec: SearchSpec, granted: GrantedScopes) -> str | None:
    """The id to read when a search is only `_id=X` and read, but not search, was granted.

    `patient/Patient.r` (no `s`) is the usual grant for the patient in context; reading it is
    what the `_id` search means.
    """
    if (
        set(spec.params) == {"_id"}
        and granted.can_read(spec.resource_type)
        and not granted.can_search(spec.resource_type)
    ):
        value = spec.params["_id"]
        return value if isinstance(value, str) else None
    return None


Answered = list[tuple[SearchSpec, SearchResult | BaseException]]


async def _run_or_split(
    client: FhirClient, spec: SearchSpec, granted: GrantedScopes, on_page: PageHook | None
) -> Answered:
    """One search's answer; for a search with parts, the first page alone when it is the whole
    answer, else each part's answer (each part failing on its own, as its own gap)."""
    try:
        if not spec.parts:
            return [(spec, await _run(client, spec, granted, on_page))]
        first = await client.search(spec.resource_type, spec.params, max_pages=1, on_page=on_page)
    except Exception as exc:  # reported per search by the caller; CancelledError is not caught
        return [(spec, exc)]
    if not first.truncated:
        return [(spec, first)]
    # The first page's resources come again from the parts; duplicates are dropped by id.
    parts = await asyncio.gather(
        *(_run(client, part, granted, on_page) for part in spec.parts), return_exceptions=True
    )
    return list(zip(spec.parts, parts, strict=True))


async def _run(
    client: FhirClient, spec: SearchSpec, granted: GrantedScopes, on_page: PageHook | None
) -> SearchResult:
    resource_id = _as_read(spec, granted)
    if resource_id is None:
        return await client.search(spec.resource_type, spec.params, on_page=on_page)
    try:
        resource = await client.read(spec.resource_type, resource_id)
    except FhirError as exc:
        if exc.status in (404, 410):
            return SearchResult(pages=1)  # a search for a missing id finds nothing; so does this read
        raise
    if on_page is not None:
        on_page([resource])
    return SearchResult(resources=[resource], pages=1)


async def fetch_attachments(
    client: FhirClient, attachments: list[AttachmentRef], *, batch_entries: int = 0
) -> list[FetchedAttachment | Gap]:
    """Fetch attachments concurrently; each failure becomes a Gap in the same position.

    With `batch_entries`, and a server whose CapabilityStatement offers `batch`, the attachments
    that are Binary reads on the FHIR server go `batch_entries` to a batch Bundle: one request
    instead of dozens, for the client and the EHR alike (a population's report texts are
    thousands). An attachment its batch did not deliver (the entry failed, the Binary came without
    `data`, the batch itself failed) is fetched on its own, so a batch never changes what is
    fetched or how a failure reads; a server that refuses batches gets single requests from then on.
    """

    async def fetch_one(ref: AttachmentRef) -> FetchedAttachment | Gap:
        try:
            data, content_type = await client.fetch_attachment(ref.url, ref.content_type)
        except FhirError as exc:
            return Gap(ref.label or "attachment", "Binary", "fetch_failed", exc.message)
        return FetchedAttachment(ref.url, content_type, data, ref.label)

    batched: list[tuple[int, str]] = []  # (position, Binary id)
    if batch_entries > 0 and len(attachments) > 1 and await client.supports_batch():
        batched = [
            (position, binary_id)
            for position, ref in enumerate(attachments)
            if (binary_id := client.binary_id(ref.url)) is not None
        ]
    delivered: dict[int, FetchedAttachment] = {}
    size = max(batch_entries, 1)
    chunks = [batched[start : start + size] for start in range(0, len(batched), size)]
    answers = await asyncio.gather(*(_read_binaries(client, [rid for _, rid in chunk]) for chunk in chunks))
    for chunk, contents in zip(chunks, answers, strict=True):
        for (position, _), content in zip(chunk, contents, strict=True):
            if content is not None:
                ref = attachments[position]
                delivered[position] = FetchedAttachment(ref.url, content[1], content[0], ref.label)
    singles = await asyncio.gather(
        *(fetch_one(ref) for position, ref in enumerate(attachments) if position not in delivered)
    )
    rest = iter(singles)
    return [delivered.get(position) or next(rest) for position in range(len(attachments))]


async def _read_binaries(client: FhirClient, ids: list[str]) -> list[tuple[bytes, str] | None]:
    """(content, content type) of each Binary read in one batch, None where the batch did not
    deliver it (the caller fetches those on their own)."""
    if len(ids) < 2:
        return [None] * len(ids)
    entries = [{"request": {"method": "GET", "url": f"Binary/{rid}"}} for rid in ids]
    try:
        answered = await client.batch(entries)
    except FatalFhirError as exc:
        if exc.status is not None:  # 404, 405, 403 or an unusable answer: no batches after all
            client.stop_batching()
        return [None] * len(ids)
    except FhirError:
        return [None] * len(ids)
    if len(answered) != len(ids):  # the response's entries answer the request's in order
        return [None] * len(ids)
    return [_binary_content(entry, rid) for entry, rid in zip(answered, ids, strict=True)]


def _binary_content(entry: dict[str, Any], resource_id: str) -> tuple[bytes, str] | None:
    response = entry.get("response")
    status = response.get("status") if isinstance(response, dict) else None
    resource = entry.get("resource")
    if not (isinstance(status, str) and status.startswith("2") and isinstance(resource, dict)):
        return None
    data, content_type = resource.get("data"), resource.get("contentType")
    if resource.get("resourceType") != "Binary" or resource.get("id", resource_id) != resource_id:
        return None
    if not isinstance(data, str) or not isinstance(content_type, str):
        return None
    try:
        return base64.b64decode(data, validate=True), content_type
    except binascii.Error:
        return None
