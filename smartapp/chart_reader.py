"""Reads the launch patient's record from the EHR — in parallel, within the granted scopes — and
turns what could not be read into explicit gaps. What to read is the read plan
(smartapp/read_plan.py); the mechanics (paging, retries, scopes) live in `launch`."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from fhirmaps.elements import reference
from fhirmaps.r4b import remember
from fhirmaps.read import PATIENT_TYPES, attachments_to_fetch
from fhirmaps.reports import classify
from fhirmaps.validation_scope import check_read_batch
from launch.fetch import (
    AttachmentRef,
    FetchedAttachment,
    FetchResult,
    Gap,
    SearchSpec,
    fetch_attachments,
    fetch_searches,
)
from launch.fhir_client import FhirClient, PageHook, SearchParams
from launch.scopes import GrantedScopes
from smartapp.read_plan import READ_PLAN, fill, planned
from smartapp.workers import VALIDATION_POOL

# The read plan's per-patient searches, in plan order (smartapp/read_plan.py).
PATIENT_SEARCHES = tuple(read for read in READ_PLAN if read.per_patient)


def date_partitions(
    resource_type: str, label: str, params: SearchParams, windows: tuple[int, ...], today: date
) -> list[SearchSpec]:
    edges = [(today - timedelta(days=d)).isoformat() for d in windows]
    base = dict(params)
    specs = [SearchSpec(resource_type, base | {"date": f"ge{edges[1]}"}, f"{label} (last {windows[1]} days)")]
    for newer, older in zip(edges[1:-1], edges[2:], strict=True):
        specs.append(SearchSpec(resource_type, base | {"date": [f"ge{older}", f"lt{newer}"]}, label))
    specs.append(SearchSpec(resource_type, base | {"date": f"lt{edges[-1]}"}, f"{label} (older)"))
    specs.append(SearchSpec(resource_type, base | {"date:missing": "true"}, undated_label(label)))
    return specs


def undated_label(label: str) -> str:
    return f"{label} without a date"


# The engine's own report classification (category, then code, then title: vendors mislabel
# codes), named for people; other reports are named by their category's display.
KIND_NAMES = {"pathology": "Pathology", "imaging": "Radiology"}


def build_searches(
    patient_id: str, today: date | None = None, required_categories: Mapping[str, list[str]] | None = None
) -> list[SearchSpec]:
    """The searches for one patient. With `today`, types with date windows in the plan are read as
    date partitions; a type whose server requires `category` (registration) is searched once per
    category."""
    required = required_categories or {}
    specs: list[SearchSpec] = []
    for read in PATIENT_SEARCHES:
        rtype, label = read.resource_type, read.label
        params = fill(read.search, patient_id=patient_id)
        if required.get(rtype):
            specs += [SearchSpec(rtype, params | {"category": c}, f"{label} ({c})") for c in required[rtype]]
        elif today and read.date_windows:
            parts = tuple(date_partitions(rtype, label, params, read.date_windows, today))
            specs.append(SearchSpec(rtype, params, label, parts=parts))
        else:
            specs.append(SearchSpec(rtype, params, label))
    return specs


@dataclass
class ChartSnapshot:
    patient_id: str
    resources: list[dict[str, Any]]
    gaps: list[Gap]
    attachments: dict[str, tuple[bytes, str]] = field(default_factory=dict)

    def count(self, resource_type: str) -> int:
        return sum(1 for r in self.resources if r.get("resourceType") == resource_type)

    def reports_by_category(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for resource in self.resources:
            if resource.get("resourceType") == "DiagnosticReport":
                counts[report_category_name(resource)] += 1
        return dict(sorted(counts.items()))

    def patient(self) -> dict[str, Any] | None:
        for resource in self.resources:
            if resource.get("resourceType") == "Patient" and resource.get("id") == self.patient_id:
                return resource
        return None


def report_category_name(report: dict[str, Any]) -> str:
    kind = KIND_NAMES.get(classify(report))
    if kind:
        return kind
    for category in report.get("category") or []:
        for coding in category.get("coding") or []:
            if coding.get("display"):
                return str(coding["display"])
        if category.get("text"):
            return str(category["text"])
        for coding in category.get("coding") or []:
            if coding.get("code"):
                return str(coding["code"])
    return "Uncategorised"


# Reports carry the narrative behind attachment URLs (see ReportTexts).
REPORT_TYPES = frozenset({"DiagnosticReport", "DocumentReference"})


async def read_chart(
    client: FhirClient,
    patient_id: str,
    granted: GrantedScopes,
    today: date | None = None,
    required_categories: Mapping[str, list[str]] | None = None,
    user: str | None = None,
) -> ChartSnapshot:
    """`user` is the launch's fhirUser ("Practitioner/<id>"): the referral packet's sender."""
    searches = build_searches(patient_id, today or date.today(), required_categories)
    checks: list[asyncio.Task[None]] = []

    def prevalidate(resources: list[dict[str, Any]]) -> None:
        # R4B validation is most of the engine's CPU time; done page by page in a worker process
        # while the next pages are on the network, the engine later finds the answers remembered.
        checks.append(asyncio.ensure_future(_prevalidate(list(resources))))

    reports = [s for s in searches if s.resource_type in REPORT_TYPES]
    others = [s for s in searches if s.resource_type not in REPORT_TYPES]
    texts = ReportTexts(client, granted)
    # Who the referral names beyond the patient's compartment is read while the searches run:
    # the launch user at once, the payers as soon as the Coverage page names them.
    referenced = [asyncio.ensure_future(fetch_user(client, granted, user))]
    payers_asked: set[str] = set()

    def report_page(resources: list[dict[str, Any]]) -> None:
        prevalidate(resources)
        texts.on_page(resources)

    def other_page(resources: list[dict[str, Any]]) -> None:
        prevalidate(resources)
        payers = _reads(
            [
                reference(p)
                for r in resources
                if r.get("resourceType") == "Coverage"
                for p in _items(r.get("payor"))
            ],
            payers_asked,
        )
        payers_asked.update(f"{spec.resource_type}/{spec.params['_id']}" for spec in payers)
        if payers:
            referenced.append(asyncio.ensure_future(fetch_searches(client, payers, granted)))

    report_result, other_result = await asyncio.gather(
        _fetch_with_undated_fallback(client, reports, granted, patient_id, report_page),
        _fetch_with_undated_fallback(client, others, granted, patient_id, other_page),
    )
    extra = _merge(await asyncio.gather(*referenced), [*other_result.resources, *report_result.resources])
    fetched_texts = await texts.results()
    await asyncio.gather(*checks)
    snapshot = ChartSnapshot(
        patient_id,
        [*other_result.resources, *report_result.resources, *extra.resources],
        [*other_result.gaps, *report_result.gaps, *extra.gaps],
    )
    for item in fetched_texts:
        if isinstance(item, FetchedAttachment):
            snapshot.attachments[item.url] = (item.content, item.content_type)
        else:
            snapshot.gaps.append(item)
    return snapshot


async def fetch_user(client: FhirClient, granted: GrantedScopes, user: str | None) -> FetchResult:
    """The launch user (Practitioner or PractitionerRole) the referral names as its sender, their
    roles and those roles' practitioner and organization."""
    if not user or user.split("/", 1)[0] not in ("Practitioner", "PractitionerRole"):
        return FetchResult()
    specs = []
    if user.startswith("Practitioner/"):
        by_practitioner = planned("PractitionerRole")
        specs.append(
            SearchSpec(
                "PractitionerRole", fill(by_practitioner.search, user=user), "referring clinician's roles"
            )
        )
    first = await fetch_searches(client, [*specs, *_reads([user], set())], granted)
    have = {f"{r.get('resourceType')}/{r.get('id')}" for r in first.resources}
    roles = [r for r in first.resources if r.get("resourceType") == "PractitionerRole"]
    more = [reference(r.get(k)) for r in roles for k in ("practitioner", "organization")]
    second = await fetch_searches(client, _reads(more, have), granted) if roles else FetchResult()
    return FetchResult(resources=[*first.resources, *second.resources], gaps=[*first.gaps, *second.gaps])


def _merge(results: list[FetchResult], record: list[dict[str, Any]]) -> FetchResult:
    """The referenced reads together, without resources the record or another read already has."""
    have = {(r.get("resourceType"), r.get("id")) for r in record}
    merged = FetchResult()
    for result in results:
        merged.gaps.extend(result.gaps)
        for resource in result.resources:
            key = (resource.get("resourceType"), resource.get("id"))
            if key not in have:
                have.add(key)
                merged.resources.append(resource)
    return merged


def _reads(refs: list[str], have: set[str]) -> list[SearchSpec]:
    kinds = {t: planned(t).label for t in ("Practitioner", "PractitionerRole", "Organization")}
    unique = [r for r in dict.fromkeys(refs) if r and r not in have and r.split("/", 1)[0] in kinds]
    return [
        SearchSpec(r.split("/", 1)[0], {"_id": r.split("/", 1)[1]}, kinds[r.split("/", 1)[0]]) for r in unique
    ]


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class ReportTexts:
    """Downloads report texts (presentedForm / attachment URLs) as soon as each page of reports
    arrives, instead of after the last page of every report search."""

    def __init__(self, client: FhirClient, granted: GrantedScopes) -> None:
        self._client = client
        self._allowed = granted.can_read("Binary")
        self._seen: set[str] = set()
        self._denied = 0
        self._batches: list[asyncio.Future[list[FetchedAttachment | Gap]]] = []

    def on_page(self, resources: list[dict[str, Any]]) -> None:
        refs = [
            AttachmentRef(url=url, content_type=ctype)
            for url, ctype in attachments_to_fetch(resources)
            if url not in self._seen
        ]
        self._seen.update(ref.url for ref in refs)
        if not refs:
            return
        if not self._allowed:
            self._denied += len(refs)
            return
        self._batches.append(asyncio.ensure_future(fetch_attachments(self._client, refs)))

    async def results(self) -> list[FetchedAttachment | Gap]:
        items = [item for batch in await asyncio.gather(*self._batches) for item in batch]
        if self._denied:
            items.append(
                Gap(
                    label=planned("Binary").label,
                    resource_type="Binary",
                    reason="scope_not_granted",
                    message=(
                        f"{self._denied} report text(s) could not be read: access to Binary was not granted."
                    ),
                )
            )
        return items


async def _fetch_with_undated_fallback(
    client: FhirClient, searches: list[SearchSpec], granted: GrantedScopes, patient_id: str, on_page: PageHook
) -> FetchResult:
    """A server that refuses `date:missing` gets the plain, unpartitioned search of that type
    instead, so undated resources are never silently lost (duplicates are removed by id)."""
    result = await fetch_searches(client, searches, granted, on_page=on_page)
    parts = [part for s in searches for part in s.parts]
    undated = {s.label: s for s in parts if "date:missing" in s.params}
    failed = [g for g in result.gaps if g.label in undated and g.reason == "fetch_failed"]
    if not failed:
        return result
    plain = []
    for gap in failed:
        read = planned(gap.resource_type)
        plain.append(SearchSpec(read.resource_type, fill(read.search, patient_id=patient_id), read.label))
    whole = await fetch_searches(client, plain, granted, on_page=on_page)
    seen = {(r.get("resourceType"), r.get("id")) for r in result.resources}
    result.resources.extend(r for r in whole.resources if (r.get("resourceType"), r.get("id")) not in seen)
    result.gaps = [g for g in result.gaps if g not in failed] + whole.gaps
    return result


async def _prevalidate(resources: list[dict[str, Any]]) -> None:
    remember(await VALIDATION_POOL.run(check_read_batch, resources, PATIENT_TYPES))
