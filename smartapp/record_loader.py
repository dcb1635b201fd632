"""Reads the launch patient's record from the EHR — in parallel, within the granted scopes — and
turns what could not be read into explicit gaps. The list of searches is the oncology part;
the mechanics (paging, retries, scopes) live in `launch`."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fhirmaps.read import attachments_to_fetch
from launch.fhir_client import FhirClient
from launch.record import (
    AttachmentRef,
    FetchedAttachment,
    FetchResult,
    Gap,
    SearchSpec,
    fetch_attachments,
    fetch_searches,
)
from launch.scopes import GrantedScopes

# Resource types the engine reads, with the search that finds them for one patient.
# DiagnosticReport is read across all categories: vendors disagree on pathology categories
# (Oracle Health returns pathology with code 18782-3; see docs/vendors.md).
PATIENT_SEARCHES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("Patient", "patient demographics", {"_id": "{pid}"}),
    ("Condition", "conditions", {"patient": "{pid}", "_count": "100"}),
    ("DiagnosticReport", "diagnostic reports", {"patient": "{pid}", "_count": "100"}),
    ("DocumentReference", "clinical documents", {"patient": "{pid}", "_count": "100"}),
    ("Observation", "observations", {"patient": "{pid}", "_count": "100"}),
    ("Procedure", "procedures", {"patient": "{pid}", "_count": "100"}),
    ("MedicationRequest", "medication orders", {"patient": "{pid}", "_count": "100"}),
    ("MedicationAdministration", "medication administrations", {"patient": "{pid}", "_count": "100"}),
    ("ServiceRequest", "orders and referrals", {"patient": "{pid}", "_count": "100"}),
    ("CarePlan", "care plans", {"patient": "{pid}", "_count": "100"}),
    ("Coverage", "insurance coverage", {"patient": "{pid}"}),
    ("Specimen", "specimens", {"patient": "{pid}", "_count": "100"}),
)

PATHOLOGY_CATEGORY = "LP7839-6"
CATEGORY_NAMES = {
    "LP7839-6": "Pathology",
    "LP29684-5": "Radiology",
    "LP29708-2": "Cardiology",
    "SP": "Pathology",
    "PAT": "Pathology",
    "CP": "Pathology",
    "RAD": "Radiology",
    "LAB": "Laboratory",
}


def build_searches(patient_id: str) -> list[SearchSpec]:
    return [
        SearchSpec(
            resource_type=rtype,
            params={k: v.replace("{pid}", patient_id) for k, v in params.items()},
            label=label,
        )
        for rtype, label, params in PATIENT_SEARCHES
    ]


@dataclass
class PatientRecordSnapshot:
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
    for category in report.get("category") or []:
        for coding in category.get("coding") or []:
            name = CATEGORY_NAMES.get(str(coding.get("code", "")))
            if name:
                return name
        for coding in category.get("coding") or []:
            if coding.get("display"):
                return str(coding["display"])
        if category.get("text"):
            return str(category["text"])
    return "Uncategorised"


# Reports carry the narrative behind attachment URLs; their texts are downloaded as soon as the
# report searches finish, while the longer searches (Observation pages) are still running.
REPORT_TYPES = frozenset({"DiagnosticReport", "DocumentReference"})


async def load_patient_record(client: FhirClient, patient_id: str, granted: GrantedScopes) -> PatientRecordSnapshot:
    searches = build_searches(patient_id)
    reports = [s for s in searches if s.resource_type in REPORT_TYPES]
    others = [s for s in searches if s.resource_type not in REPORT_TYPES]

    async def reports_with_texts() -> tuple[FetchResult, list[FetchedAttachment | Gap]]:
        fetched = await fetch_searches(client, reports, granted)
        refs = [AttachmentRef(url=url, content_type=ctype) for url, ctype in attachments_to_fetch(fetched.resources)]
        if not refs:
            return fetched, []
        if not granted.can_read("Binary"):
            return fetched, [Gap(
                label="report text",
                resource_type="Binary",
                reason="scope_not_granted",
                message=f"{len(refs)} report text(s) could not be read: access to Binary was not granted.",
            )]
        return fetched, list(await fetch_attachments(client, refs))

    (report_result, texts), other_result = await asyncio.gather(
        reports_with_texts(), fetch_searches(client, others, granted)
    )
    snapshot = PatientRecordSnapshot(
        patient_id,
        [*other_result.resources, *report_result.resources],
        [*other_result.gaps, *report_result.gaps],
    )
    for item in texts:
        if isinstance(item, FetchedAttachment):
            snapshot.attachments[item.url] = (item.content, item.content_type)
        else:
            snapshot.gaps.append(item)
    return snapshot
