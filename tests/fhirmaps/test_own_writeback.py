"""SecondLook's own write-backs are not clinical evidence when read back on the next launch."""

from __future__ import annotations

from datetime import date

from smartapp.engine import evaluate_patient

PATIENT = {"resourceType": "Patient", "id": "p1"}


def referral(identifier_system: str | None) -> dict:
    resource = {
        "resourceType": "ServiceRequest",
        "id": "sr1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2026-11-20",
        "code": {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "77406008",
                    "display": "Confirmatory medical consultation",
                }
            ],
            "text": "Second opinion referral",
        },
    }
    if identifier_system:
        resource["identifier"] = [{"system": identifier_system, "value": "packet-1"}]
    return resource


def triggers(resources: list[dict]) -> set[str]:
    result = evaluate_patient(resources, as_of=date(2026, 11, 25))
    return {f["trigger"] for f in result.to_json()["findings"]}


def test_a_clinicians_second_opinion_referral_counts() -> None:
    assert "patient-request" in triggers([PATIENT, referral(None)])
    assert "patient-request" in triggers([PATIENT, referral("urn:oid:1.2.3.4")])


def test_our_own_referral_read_back_is_ignored() -> None:
    assert "patient-request" not in triggers([PATIENT, referral("urn:secondlook:referral-packet")])
