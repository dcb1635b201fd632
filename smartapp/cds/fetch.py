"""The record a hook call is evaluated on: prefetch first, then the EHR's FHIR API for the rest.

The `fhirAuthorization` token is transient (CDS Hooks 2.0): it is used only against the request's
`fhirServer`, only when that server is allowed for the authenticated CDS client, never refreshed,
never stored and never logged. When required data can be neither prefetched nor fetched, the
caller answers 412 with the OperationOutcome built here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx2
from pydantic import BaseModel, ConfigDict, Field

from fhirmaps.read import attachments_to_fetch
from launch.fetch import FetchedAttachment, Gap, fetch_searches
from launch.fhir_client import FhirClient, PageHook
from launch.registry import Registry, normalize_issuer
from launch.scopes import GrantedScopes
from smartapp.cds.discovery import PREFETCH, REQUIRED_KEYS
from smartapp.cds.jwt_auth import CdsCaller
from smartapp.chart_reader import ReportTexts, build_searches
from smartapp.engine import Unavailable
from smartapp.read_plan import planned

HOOK_FHIR_TIMEOUT_SECONDS = 8.0


class FhirAuthorization(BaseModel):
    model_config = ConfigDict(extra="allow")

    access_token: str = Field(min_length=1, repr=False)
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret
    scope: str = ""
    patient: str | None = None


class HookContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    patientId: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-.]+$")
    userId: str | None = None


class HookRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    hook: str
    hookInstance: str = Field(min_length=1, max_length=200)
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: HookContext
    prefetch: dict[str, Any] | None = None


class PreconditionFailed(Exception):
    """Required data could be neither prefetched nor fetched (HTTP 412)."""

    def __init__(self, missing: list[str], reason: str) -> None:
        super().__init__(reason)
        self.missing = missing
        self.reason = reason

    def operation_outcome(self) -> dict[str, Any]:
        text = f"Required data is missing: {', '.join(self.missing)}. {self.reason}"
        return {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "incomplete", "diagnostics": text}],
        }


class TokenRejected(Exception):
    """The EHR refused the hook's access token; it is never refreshed."""


class HookTokenSource:
    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    async def reauthenticate(self, stale: str | None = None) -> str:
        raise TokenRejected


@dataclass
class HookRecord:
    resources: list[dict[str, Any]] = field(default_factory=list)
    unavailable: list[Unavailable] = field(default_factory=list)
    attachments: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    fetched_keys: list[str] = field(default_factory=list)


def read_prefetch(prefetch: dict[str, Any] | None) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
    """Resources per satisfied key, and the keys whose Bundle has more pages (`next` link)."""
    found: dict[str, list[dict[str, Any]]] = {}
    partial: set[str] = set()
    for key in PREFETCH:
        if prefetch is None or key not in prefetch:
            continue  # the client did not satisfy this template
        value = prefetch[key]
        if value is None:
            found[key] = []  # satisfied, nothing there
        elif not isinstance(value, dict) or value.get("resourceType") == "OperationOutcome":
            continue  # an error instead of data: treat as not prefetched
        elif value.get("resourceType") == "Bundle":
            entries = [e.get("resource") for e in value.get("entry") or [] if isinstance(e, dict)]
            found[key] = [
                r for r in entries if isinstance(r, dict) and r.get("resourceType") != "OperationOutcome"
            ]
            if any(
                isinstance(link, dict) and link.get("relation") == "next" for link in value.get("link") or []
            ):
                partial.add(key)
        else:
            found[key] = [value]
    return found, partial


def usable_token(request: HookRequest, caller: CdsCaller, registry: Registry) -> str | None:
    auth, server = request.fhirAuthorization, request.fhirServer
    if auth is None or not server or auth.token_type.lower() != "bearer":
        return None
    if not caller.client.allows_fhir_server(server, registry):
        return None
    if auth.patient is not None and auth.patient != request.context.patientId:
        return None
    return auth.access_token


async def gather_record(
    request: HookRequest,
    caller: CdsCaller,
    registry: Registry,
    http: httpx2.AsyncClient,
    max_concurrency: int,
) -> HookRecord:
    patient_id = request.context.patientId
    found, partial = read_prefetch(request.prefetch)
    record = HookRecord()
    for resources in found.values():
        record.resources.extend(resources)
    # What the engine reads; the packet-only types (specimens) are used when prefetched, not read.
    wanted = [
        key for key in PREFETCH if (key not in found or key in partial) and planned(PREFETCH[key][0]).mapped
    ]
    token = usable_token(request, caller, registry)
    if token is None:
        missing = [key for key in wanted if key in REQUIRED_KEYS and key not in partial]
        if missing:
            raise PreconditionFailed(missing, _no_access_reason(request))
        for key in wanted:
            record.unavailable.append(
                Unavailable(PREFETCH[key][0], "not_prefetched", _not_prefetched(key, key in partial))
            )
        _note_unread_attachments(record)
        return record
    assert request.fhirServer is not None  # noqa: S101 - usable_token checked it
    registration = registry.get(request.fhirServer)
    client = FhirClient(
        normalize_issuer(request.fhirServer),
        http,
        HookTokenSource(token),
        max_concurrency=registration.concurrency(max_concurrency) if registration else max_concurrency,
        timeout=HOOK_FHIR_TIMEOUT_SECONDS,
    )
    granted = GrantedScopes.parse(request.fhirAuthorization.scope if request.fhirAuthorization else "")
    # Report texts are downloaded as soon as their report is known: the prefetched ones at once,
    # the others as each page of a search arrives (not after the last search).
    texts = ReportTexts(client, granted)
    texts.on_page(record.resources)
    try:
        categories = registration.required_categories if registration else {}
        await _fetch_missing(
            client, granted, patient_id, wanted, partial, found, record, categories, texts.on_page
        )
        _keep_texts(await texts.results(), record)
    except TokenRejected as exc:
        raise PreconditionFailed(
            wanted or ["report attachments"], "The EHR rejected the access token sent with the hook."
        ) from exc
    return record


async def _fetch_missing(
    client: FhirClient,
    granted: GrantedScopes,
    patient_id: str,
    wanted: list[str],
    partial: set[str],
    found: dict[str, list[dict[str, Any]]],
    record: HookRecord,
    required_categories: dict[str, list[str]],
    on_page: PageHook,
) -> None:
    if not wanted:
        return
    types = {PREFETCH[key][0]: key for key in wanted}
    specs = [
        spec for spec in build_searches(patient_id, None, required_categories) if spec.resource_type in types
    ]
    fetched = await fetch_searches(client, specs, granted, on_page=on_page)
    failed_required = [
        types[gap.resource_type]
        for gap in fetched.gaps
        if gap.reason != "truncated"
        and types[gap.resource_type] in REQUIRED_KEYS
        and types[gap.resource_type] not in partial
    ]
    if failed_required:
        raise PreconditionFailed(
            failed_required,
            "They were not prefetched and could not be read from the FHIR server with the access given.",
        )
    refetched = {types[spec.resource_type] for spec in specs} - {
        types[g.resource_type] for g in fetched.gaps if g.reason != "truncated"
    }
    # A partially prefetched key read again in full replaces its prefetched page.
    replaced = {id(r) for key in refetched & partial for r in found.get(key, [])}
    record.resources = [r for r in record.resources if id(r) not in replaced] + fetched.resources
    record.fetched_keys = sorted(refetched)
    for gap in fetched.gaps:
        record.unavailable.append(Unavailable(gap.resource_type, gap.reason, gap.message))


def _keep_texts(items: list[FetchedAttachment | Gap], record: HookRecord) -> None:
    """Report texts of resources the record no longer holds (a prefetched page read again in
    full) are kept too: they are keyed by URL and only looked up through a report."""
    for item in items:
        if isinstance(item, FetchedAttachment):
            record.attachments[item.url] = (item.content, item.content_type)
        else:
            record.unavailable.append(Unavailable(item.resource_type, item.reason, item.message))


def _note_unread_attachments(record: HookRecord) -> None:
    count = len(attachments_to_fetch(record.resources))
    if count:
        record.unavailable.append(
            Unavailable(
                "Binary",
                "not_fetched",
                f"{count} report attachment(s) are stored on the FHIR server "
                "and no usable access was sent with the hook.",
            )
        )


def _no_access_reason(request: HookRequest) -> str:
    if request.fhirAuthorization is None or not request.fhirServer:
        return "They were not prefetched and the request carried no fhirAuthorization to read them."
    return (
        "They were not prefetched and the fhirServer or its access token is not accepted for this CDS client."
    )


def _not_prefetched(key: str, partial: bool) -> str:
    if partial:
        return f"Only the first page of prefetch '{key}' was sent and the rest could not be read."
    return f"Prefetch '{key}' was not sent and could not be read from the FHIR server."
