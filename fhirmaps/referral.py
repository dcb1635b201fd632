"""The people and organizations of a referral, and its status as a BSeR-style Task.

Built from the packet's JSON when the record did not supply them (a sender typed in by hand, a
receiving center from the directory). See docs/referral-fhir.md for where this departs from BSeR.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
TASK_CODE = {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill", "display": "Fulfill the focal request"}
# BSeR's business status for a referral package the recipient has not acted on yet.
CREATED = {"system": "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS", "code": "2.0", "display": "Created"}


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


def organization(name: str, *, alias: str = "", city: str = "", state: str = "", contact: Json | None = None) -> Json:
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
    resource: Json = {"resourceType": "PractitionerRole", "active": True, "practitioner": {"reference": practitioner_url}}
    if organization_url:
        resource["organization"] = {"reference": organization_url}
    points = _telecom(sender)
    if points:
        resource["telecom"] = points
    return resource


def task(packet: Json, *, focus: str, patient: str, requester: str, owner: str | None) -> Json:
    """The referral's state: draft until the packet is final, then requested (BSeR 2.0 "Created")."""
    final = packet["status"] == "final"
    resource: Json = {
        "resourceType": "Task",
        "identifier": [{"system": packet["identifier_system"], "value": packet["id"] + "-task"}],
        "status": "requested" if final else "draft",
        "intent": "order",
        "priority": "asap" if packet.get("time_critical") else "urgent" if packet.get("urgency") == "expedite" else "routine",
        "code": {"coding": [TASK_CODE]},
        "focus": {"reference": focus},
        "for": {"reference": patient},
        "authoredOn": packet["created"],
        "requester": {"reference": requester},
        "description": "Second-opinion referral: please accept or decline, then return the opinion.",
    }
    if final:
        resource["businessStatus"] = {"coding": [CREATED], "text": "Referral created, not yet received"}
    if owner:
        resource["owner"] = {"reference": owner}
    return resource


def _telecom(contact: Json) -> list[Json]:
    points = []
    if contact.get("phone"):
        points.append({"system": "phone", "value": contact["phone"], "use": "work"})
    if contact.get("fax"):
        points.append({"system": "fax", "value": contact["fax"], "use": "work"})
    return points
