"""The CDS Hooks discovery document: one `patient-view` service and its prefetch templates.

The templates ask for the same searches as the app's own read plan
(`smartapp.record_loader.PATIENT_SEARCHES`), so a card and the launched app see the same data.
They stay inside the spec's portable subset (type search, reference parameter, `_count`).
DiagnosticReport and Observation are not narrowed by category: pathology (LP7839-6) and imaging
(LP29684-5) reports are what the rules read, but vendors file pathology under other categories
(Oracle Health: v2-0074 SP/PAT, code 18782-3), and tumour markers and biomarkers (laboratory)
sit next to mCODE stage and disease status (no category), so a category filter would hide data.
"""

from __future__ import annotations

from typing import Any

SERVICE_ID = "secondlook-patient-view"
HOOK = "patient-view"
TITLE = "SecondLook: reasons for a second opinion"
DESCRIPTION = (
    "When a cancer patient's chart opens, flags evidence-based reasons for a second opinion "
    "(rare cancer, uncertain or discordant pathology, incomplete biomarker work-up, irreversible "
    "treatment planned, disease not responding, ...) and links to the SecondLook app."
)
PATIENT = "{{context.patientId}}"

# prefetch key -> (resource type, template). Order follows the app's read plan.
PREFETCH: dict[str, tuple[str, str]] = {
    "patient": ("Patient", f"Patient/{PATIENT}"),
    "conditions": ("Condition", f"Condition?patient={PATIENT}&_count=100"),
    "diagnosticReports": ("DiagnosticReport", f"DiagnosticReport?patient={PATIENT}&_count=100"),
    "documents": ("DocumentReference", f"DocumentReference?patient={PATIENT}&_count=100"),
    "observations": ("Observation", f"Observation?patient={PATIENT}&_count=100"),
    "procedures": ("Procedure", f"Procedure?patient={PATIENT}&_count=100"),
    "medicationRequests": ("MedicationRequest", f"MedicationRequest?patient={PATIENT}&_count=100"),
    "medicationAdministrations": (
        "MedicationAdministration",
        f"MedicationAdministration?patient={PATIENT}&_count=100",
    ),
    "serviceRequests": ("ServiceRequest", f"ServiceRequest?patient={PATIENT}&_count=100"),
    "carePlans": ("CarePlan", f"CarePlan?patient={PATIENT}&_count=100"),
    "coverage": ("Coverage", f"Coverage?patient={PATIENT}"),
    "specimens": ("Specimen", f"Specimen?patient={PATIENT}&_count=100"),
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
