"""The demo's clinician and organization: the practitioner every demo launch signs in as
(fhirUser Practitioner/demo-oncologist), with an NPI, a role and the cancer center it works for, so
the referral packet's sender and the coordinator's history carry a real name in the demo."""

from __future__ import annotations

from typing import Any

from .records import DEMO_PRACTITIONER_ID
from .resource_store import ResourceStore

ORGANIZATION_ID = "demo-cancer-center"
NPI = "http://hl7.org/fhir/sid/us-npi"


def staff_resources() -> list[dict[str, Any]]:
    organization = {
        "resourceType": "Organization",
        "id": ORGANIZATION_ID,
        "active": True,
        "name": "Lakeside Community Cancer Center",
        "identifier": [{"system": NPI, "value": "1245319599"}],
        "telecom": [
            {"system": "phone", "value": "555-0142", "use": "work"},
            {"system": "fax", "value": "555-0143"},
        ],
        "address": [
            {"line": ["200 Lakeside Drive"], "city": "Springfield", "state": "IL", "postalCode": "62701"}
        ],
    }
    practitioner = {
        "resourceType": "Practitioner",
        "id": DEMO_PRACTITIONER_ID,
        "active": True,
        "identifier": [{"system": NPI, "value": "1234567893"}],
        "name": [{"use": "official", "family": "Reyes", "given": ["Jordan"], "suffix": ["MD"]}],
        "telecom": [
            {"system": "phone", "value": "555-0144", "use": "work"},
            {"system": "email", "value": "jordan.reyes@lakeside.example.org", "use": "work"},
        ],
        "qualification": [{"code": {"text": "Medical oncology"}}],
    }
    role = {
        "resourceType": "PractitionerRole",
        "id": f"{DEMO_PRACTITIONER_ID}-role",
        "active": True,
        "practitioner": {"reference": f"Practitioner/{DEMO_PRACTITIONER_ID}", "display": "Jordan Reyes, MD"},
        "organization": {"reference": f"Organization/{ORGANIZATION_ID}", "display": organization["name"]},
        "code": [
            {
                "coding": [
                    {
                        "system": "http://nucc.org/provider-taxonomy",
                        "code": "207RX0202X",
                        "display": "Medical Oncology",
                    }
                ]
            }
        ],
        "specialty": [
            {
                "coding": [
                    {"system": "http://snomed.info/sct", "code": "394593009", "display": "Medical oncology"}
                ]
            }
        ],
        "telecom": practitioner["telecom"],
    }
    return [organization, practitioner, role]


def add_demo_staff(store: ResourceStore) -> None:
    for resource in staff_resources():
        store.add(resource, None)
