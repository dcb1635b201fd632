"""Small hand-written hook requests for tests that are not about clinical content."""

from __future__ import annotations

import uuid
from typing import Any

from smartapp.cds.discovery import PREFETCH


def empty_bundle() -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": []}


def minimal_request(patient_id: str = "p-minimal", *, prefetch: bool = True) -> dict[str, Any]:
    """A patient with hypertension only: every prefetch key satisfied, no second-opinion trigger."""
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-a", "patientId": patient_id},
    }
    if prefetch:
        body["prefetch"] = {key: empty_bundle() for key in PREFETCH}
        body["prefetch"]["patient"] = {
            "resourceType": "Patient",
            "id": patient_id,
            "gender": "female",
            "birthDate": "1960-02-03",
        }
        body["prefetch"]["conditions"] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [
                {
                    "resource": {
                        "resourceType": "Condition",
                        "id": "htn",
                        "subject": {"reference": f"Patient/{patient_id}"},
                        "clinicalStatus": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                    "code": "active",
                                }
                            ]
                        },
                        "code": {
                            "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"}],
                            "text": "Essential hypertension",
                        },
                    }
                }
            ],
        }
    return body
