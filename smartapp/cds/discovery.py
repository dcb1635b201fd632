"""The CDS Hooks discovery document: one `patient-view` service and its prefetch templates.

The templates are the read plan's searches for the types it marks for prefetch
(`smartapp.read_plan`), so a card and the launched app see the same data. They stay inside the
spec's portable subset (read by id, type search, reference parameter, `_count`).
DiagnosticReport and Observation are not narrowed by category: pathology (LP7839-6) and imaging
(LP29684-5) reports are what the rules read, but vendors file pathology under other categories
(Oracle Health: v2-0074 SP/PAT, code 18782-3), and tumour markers and biomarkers (laboratory)
sit next to mCODE stage and disease status (no category), so a category filter would hide data.
"""

from __future__ import annotations

from typing import Any

from smartapp.read_plan import PATIENT_ID, READ_PLAN, PlannedRead

SERVICE_ID = "secondlook-patient-view"
HOOK = "patient-view"
TITLE = "SecondLook: reasons for a second opinion"
DESCRIPTION = (
    "When a cancer patient's chart opens, flags evidence-based reasons for a second opinion "
    "(rare cancer, uncertain or discordant pathology, incomplete biomarker work-up, irreversible "
    "treatment planned, disease not responding, ...) and links to the SecondLook app."
)
PATIENT = "{{context.patientId}}"


def prefetch_template(read: PlannedRead) -> str:
    """`Patient/{{context.patientId}}` for a read by id, `Type?patient={{context.patientId}}&...`
    for a search."""
    if dict(read.search) == {"_id": PATIENT_ID}:
        return f"{read.resource_type}/{PATIENT}"
    query = "&".join(f"{key}={value.replace(PATIENT_ID, PATIENT)}" for key, value in read.search.items())
    return f"{read.resource_type}?{query}"


# prefetch key -> (resource type, template), in plan order.
PREFETCH: dict[str, tuple[str, str]] = {
    read.prefetch: (read.resource_type, prefetch_template(read)) for read in READ_PLAN if read.prefetch
}

# Without these no card can be trusted: answer 412 if they can be neither prefetched nor fetched.
# The others, when missing, become data issues in the card detail.
REQUIRED_KEYS = ("patient", "conditions", "diagnosticReports", "observations")


def service_description() -> dict[str, Any]:
    return {
        "hook": HOOK,
        "id": SERVICE_ID,
        "title": TITLE,
        "description": DESCRIPTION,
        "prefetch": {key: template for key, (_, template) in PREFETCH.items()},
        "usageRequirements": (
            "Send prefetch (or fhirAuthorization with patient/*.read scopes for the prefetch resource "
            "types and Binary) and a JWT signed with RS384 or ES384 by a registered issuer."
        ),
    }


def discovery_document() -> dict[str, Any]:
    return {"services": [service_description()]}
