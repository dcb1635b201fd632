"""The people and organizations of a referral, and its status as a BSeR-style Task.

Built from the packet's JSON when the record did not supply them (a sender typed in by hand, a
receiving center from the directory). See docs/referral-fhir.md for where this departs from BSeR.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
TASK_CODE = {
    "system": "http://hl7.org/fhir/CodeSystem/task-code",
    "code": "fulfill",
    "display": "Fulfill the focal request",
}
BSER_STATUS = "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS"
# BSeR's business status for a referral package the recipient has not acted on yet.
CREATED = {"system": BSER_STATUS, "code": "2.0", "display": "Created"}
# A final referral's tracked status -> (Task.status, BSeR TaskBusinessStatusCS code and display,
# businessStatus text). BSeR has no "sent" state: the package exists (2.0 Created) and is on its
# way; "received" is the same business state with the Task acknowledged by the recipient.
TRACKED_STATES: dict[str, tuple[str, str, str, str]] = {
    "final": ("requested", "2.0", "Created", "Referral created, not yet sent"),
    "sent": ("requested", "2.0", "Created", "Sent to the receiving center, not yet received"),
    "received": ("received", "2.0", "Created", "Received by the receiving center"),
    "accepted": ("accepted", "3.0", "Accepted", "Accepted by the receiving center"),
    "declined": ("rejected", "4.0", "Declined", "Declined by the receiving center"),
    "scheduled": ("in-progress", "5.1.1", "Event Scheduled", "Second-opinion visit or review scheduled"),
    "cancelled": ("cancelled", "6.0", "Fulfillment Cancelled", "Referral cancelled by the sender"),
    "completed": ("completed", "7.0", "Fulfillment Completed", "Outside opinion returned"),
}
AGREEMENT_TEXT = {
    "agrees": "agrees with the local diagnosis and plan",
    "changes-diagnosis": "changes the diagnosis",
    "changes-plan": "changes the plan",
}


def practitioner(sender: Json) -> Json | None:
    if not sender.get("name"):
        return None
    resource: Json = {"resourceType": "Practitioner", "name": [{"text": sender["name"]}]}
    if sender.get("npi"):
        resource["identifier"] = [{"system": NPI_SYSTEM, "value": sender["npi"]}]
    points = _telecom(sender)
    if points:
        resource["telecom"] = points
    return resource


def organization(
    name: str, *, alias: str = "", city: str = "", state: str = "", contact: Json | None = None
) -> Json:
    resource: Json = {"resourceType": "Organization", "name": name}
    if alias:
        resource["alias"] = [alias]
    if city or state:
        resource["address"] = [{k: v for k, v in (("city", city), ("state", state), ("country", "US")) if v}]
    points = _telecom(contact or {})
    if points:
        resource["telecom"] = points
    return resource


def practitioner_role(practitioner_url: str, organization_url: str | None, sender: Json) -> Json:
    resource: Json = {
        "resourceType": "PractitionerRole",
        "active": True,
        "practitioner": {"reference": practitioner_url},
    }
    if organization_url:
        resource["organization"] = {"reference": organization_url}
    points = _telecom(sender)
    if points:
        resource["telecom"] = points
    return resource


def task(
    packet: Json, *, focus: str, patient: str, requester: str, owner: str | None, tracking: Json | None = None
) -> Json:
    """The referral's state: draft until the packet is final, then its tracked status (`tracking`:
    `status`, `at`, `note`, `opinion`), "final" (BSeR 2.0 Created) when nothing was tracked yet."""
    final = packet["status"] == "final"
    state = (tracking or {}).get("status") or "final"
    task_status, code, display, text = TRACKED_STATES.get(state, TRACKED_STATES["final"])
    resource: Json = {
        "resourceType": "Task",
        "identifier": [{"system": packet["identifier_system"], "value": packet["id"] + "-task"}],
        "status": task_status if final else "draft",
        "intent": "order",
        "priority": "asap"
        if packet.get("time_critical")
        else "urgent"
        if packet.get("urgency") == "expedite"
        else "routine",
        "code": {"coding": [TASK_CODE]},
        "focus": {"reference": focus},
        "for": {"reference": patient},
        "authoredOn": packet["created"],
        "requester": {"reference": requester},
        "description": "Second-opinion referral: please accept or decline, then return the opinion.",
    }
    if final:
        resource["businessStatus"] = {
            "coding": [{"system": BSER_STATUS, "code": code, "display": display}],
            "text": text,
        }
        if tracking and tracking.get("at"):
            resource["lastModified"] = tracking["at"]
        if tracking and tracking.get("note"):
            resource["statusReason"] = {"text": tracking["note"]}
        opinion = (tracking or {}).get("opinion")
        if opinion:
            resource["output"] = [
                {"type": {"text": "Outside second opinion"}, "valueString": opinion_text(opinion)}
            ]
    if owner:
        resource["owner"] = {"reference": owner}
    return resource


def opinion_text(opinion: Json) -> str:
    """The outside opinion in one paragraph: who, when, whether it agrees, and its summary."""
    agreement = AGREEMENT_TEXT.get(opinion.get("agreement", ""), "")
    head = (
        f"Opinion from {opinion.get('center') or 'the receiving center'} dated {opinion.get('received', '')}"
    )
    return (
        f"{head}: {agreement}. {opinion.get('summary', '')}".strip()
        if agreement
        else f"{head}. {opinion.get('summary', '')}".strip()
    )


def _telecom(contact: Json) -> list[Json]:
    points = []
    if contact.get("phone"):
        points.append({"system": "phone", "value": contact["phone"], "use": "work"})
    if contact.get("fax"):
        points.append({"system": "fax", "value": contact["fax"], "use": "work"})
    return points
