"""Referral packet → a FHIR `document` Bundle a receiving center can ingest.

The Composition comes first, its sections coded with LOINC; the Bundle then holds every resource
the document references: the patient, the referring clinician and organizations, the receiving
center, Coverage, the record's conditions, reports (with their texts inline), observations,
specimens, medications and allergies, the referral as ServiceRequest + Task, and the PDF as a
DocumentReference + Binary. Every entry has a `urn:uuid:` fullUrl and every reference points at
one; a reference to something the record did not supply keeps only its display text. Pure:
packet JSON (with its `sources`, copied from the record at drafting time) in, JSON out.
"""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Callable
from typing import Any

from fhirmaps import referral, write
from fhirmaps.elements import reference
from fhirmaps.r4b import validation_problem

Json = dict[str, Any]
LOINC = "http://loinc.org"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
SECTION_CODES = {
    "reason": ("42349-1", "Reason for referral"),
    "problems": ("11450-4", "Problem list - Reported"),
    "results": ("30954-2", "Relevant diagnostic tests/laboratory data Narrative"),
    "procedures": ("47519-4", "History of Procedures Document"),
    "plan": ("18776-5", "Plan of care note"),
    "medications": ("10160-0", "History of Medication use Narrative"),
    "allergies": ("48765-2", "Allergies and adverse reactions Document"),
    "payers": ("48768-6", "Payment sources Document"),
}
RESULT_TYPES = ("DiagnosticReport", "Observation", "Specimen", "ImagingStudy", "DocumentReference")
TREATMENT_TYPES = (
    "Procedure",
    "MedicationRequest",
    "MedicationAdministration",
    "MedicationStatement",
    "CarePlan",
    "ServiceRequest",
)


def document_bundle(
    packet: Json, *, timestamp: str, pdf: bytes | None = None, tracking: Json | None = None
) -> Json:
    """`timestamp` is the instant the document is assembled (its identity: one document per call);
    `tracking` the referral's tracked status after final (see `referral.task`)."""
    urn = _urns(packet)
    sources = {
        f"{r['resourceType']}/{r.get('id')}": r for r in packet.get("sources") or [] if r.get("resourceType")
    }
    entries: dict[str, Json] = {}  # fullUrl -> resource

    patient_ref = packet["patient"]["reference"]
    patient = copy.deepcopy(sources.get(patient_ref)) or write.patient_resource(packet)
    _give_identifier_systems(patient, packet.get("source") or "")
    entries[urn(patient_ref)] = patient
    author = _participants(packet, sources, urn, entries)
    destination = packet.get("destination")
    owner = None
    if destination:
        owner = urn("destination")
        entries[owner] = referral.organization(
            destination["name"],
            alias=destination.get("program", ""),
            city=destination.get("city", ""),
            state=destination.get("state", ""),
        )

    request = write.service_request(packet)
    request["subject"] = {"reference": urn(patient_ref)}
    request["requester"] = {"reference": author}
    if owner:
        request["performer"] = [{"reference": owner}]
    if packet["insurance"].get("reference") in sources:
        request["insurance"] = [{"reference": urn(packet["insurance"]["reference"])}]
    entries[urn("ServiceRequest")] = request
    if packet["status"] == "final":
        # The request ends with its Task: done when the opinion is back, revoked when the center
        # declined or the sender cancelled (a new referral is a new ServiceRequest).
        ended = {"completed": "completed", "declined": "revoked", "cancelled": "revoked"}
        request["status"] = ended.get((tracking or {}).get("status") or "", request["status"])
    if packet.get("amends"):
        # The corrected version replaces the earlier referral, which lives only at the sender:
        # an identifier reference, never a dangling literal one.
        request["replaces"] = [
            {
                "identifier": {"system": packet["identifier_system"], "value": packet["amends"]},
                "display": "Earlier version of this referral",
            }
        ]
    entries[urn("Task")] = referral.task(
        packet,
        focus=urn("ServiceRequest"),
        patient=urn(patient_ref),
        requester=author,
        owner=owner,
        tracking=tracking,
    )
    if pdf is not None:
        entries[urn("Binary")] = {
            "resourceType": "Binary",
            "contentType": "application/pdf",
            "data": base64.b64encode(pdf).decode("ascii"),
        }
        letter = write.document_reference(packet, pdf, date=timestamp)
        letter["content"][0]["attachment"] = {
            k: v for k, v in letter["content"][0]["attachment"].items() if k != "data"
        }
        letter["content"][0]["attachment"]["url"] = urn("Binary")
        letter["subject"] = {"reference": urn(patient_ref)}
        letter["author"] = [{"reference": author}]
        letter["context"] = {"related": [{"reference": urn("ServiceRequest")}]}
        entries[urn("DocumentReference")] = letter

    for ref, resource in sources.items():
        if ref != patient_ref:
            entries.setdefault(urn(ref), copy.deepcopy(resource))
    comp = _composition(
        packet,
        sources,
        urn,
        patient=urn(patient_ref),
        author=author,
        date=timestamp,
        letter=urn("DocumentReference") if pdf is not None else None,
    )
    present = {*sources, patient_ref}
    body = [{"fullUrl": urn("Composition"), "resource": comp}]
    for url, resource in entries.items():
        resource.pop("id", None)
        _rewrite(resource, lambda ref: urn(ref) if ref in present else ref if ref in entries else None)
        body.append({"fullUrl": url, "resource": write.validate(resource)})
    document_id = str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"{packet['identifier_system']}:{packet['id']}@{timestamp}")
    )
    bundle: Json = {
        "resourceType": "Bundle",
        "id": document_id,
        "meta": {"lastUpdated": timestamp},
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{document_id}"},
        "type": "document",
        "timestamp": timestamp,
        "entry": body,
    }
    problem = validation_problem(bundle)
    if problem:
        raise write.InvalidResource(f"Bundle: {problem}")
    return bundle


def _urns(packet: Json) -> Callable[[str], str]:
    base = f"{packet['identifier_system']}:{packet['id']}/"

    def urn(key: str) -> str:
        return (
            key if key.startswith("urn:uuid:") else f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, base + key)}"
        )

    return urn


def _participants(
    packet: Json, sources: dict[str, Json], urn: Callable[[str], str], entries: dict[str, Json]
) -> str:
    """The referring clinician's entries; returns the author reference (PractitionerRole when known)."""
    sender = packet.get("sender") or {}
    ref, org_ref = sender.get("reference") or "", sender.get("organization_reference") or ""
    if ref in sources and ref.startswith("PractitionerRole/"):
        return urn(ref)
    practitioner_url = urn(ref) if ref in sources else None
    if practitioner_url is None:
        built = referral.practitioner(sender)
        if built is not None:
            practitioner_url = urn("sender")
            entries[practitioner_url] = built
    org_url = urn(org_ref) if org_ref in sources else None
    if org_url is None and sender.get("organization"):
        org_url = urn("sender-organization")
        entries[org_url] = referral.organization(sender["organization"])
    role = next(
        (
            r
            for key, r in sources.items()
            if key.startswith("PractitionerRole/") and reference(r.get("practitioner")) == ref
        ),
        None,
    )
    if role is not None:
        return urn(f"PractitionerRole/{role.get('id')}")
    if practitioner_url:
        role_url = urn("sender-role")
        entries[role_url] = referral.practitioner_role(practitioner_url, org_url, sender)
        return role_url
    if org_url:
        return org_url
    # Nobody has signed yet: the draft is authored by the application that wrote it.
    device_url = urn("device")
    entries[device_url] = {
        "resourceType": "Device",
        "deviceName": [{"name": "SecondLook", "type": "manufacturer-name"}],
    }
    return device_url


def _composition(
    packet: Json,
    sources: dict[str, Json],
    urn: Callable[[str], str],
    *,
    patient: str,
    author: str,
    date: str,
    letter: str | None,
) -> Json:
    def refs(values: list[str | None]) -> list[str]:
        return [urn(v) for v in dict.fromkeys(values) if v and v in sources]

    of_type = [
        key
        for key in sources
        if key.split("/", 1)[0] in RESULT_TYPES and key != packet["patient"]["reference"]
    ]
    medications, allergies = packet.get("medications"), packet.get("allergies")
    comp = write.composition(packet, subject=patient, date=date)
    comp["author"] = [{"reference": author}]
    comp["section"] = [
        _section(
            "reason",
            "Reason for referral and questions",
            write.reason_lines(packet),
            [urn("ServiceRequest"), urn("Task"), *([letter] if letter else [])],
        ),
        _section(
            "problems",
            "Diagnoses",
            write.diagnosis_lines(packet),
            refs([d.get("reference") for d in packet.get("diagnoses") or []]),
        ),
        _section("results", "Reports, results and records", write.result_lines(packet), refs(list(of_type))),
        _section(
            "procedures",
            "Treatment so far",
            write.treatment_lines(packet.get("treatment_so_far")),
            refs([t.get("reference") for t in packet.get("treatment_so_far") or []]),
        ),
        _section(
            "plan",
            "Treatment proposed",
            write.treatment_lines(packet.get("treatment_proposed")),
            refs([t.get("reference") for t in packet.get("treatment_proposed") or []]),
        ),
        _section(
            "medications",
            "Current medications",
            write.item_lines(medications),
            refs([m.get("reference") for m in medications or []]),
            unavailable=medications is None,
        ),
        _section(
            "allergies",
            "Allergies",
            write.item_lines(allergies),
            refs([a.get("reference") for a in allergies or []]),
            unavailable=allergies is None,
        ),
        _section(
            "payers", "Insurance", write.insurance_lines(packet), refs([packet["insurance"].get("reference")])
        ),
    ]
    return comp


def _section(kind: str, title: str, lines: list[str], refs: list[str], *, unavailable: bool = False) -> Json:
    code, display = SECTION_CODES[kind]
    section = write.section(title, lines, refs)
    section["code"] = {"coding": [{"system": LOINC, "code": code, "display": display}]}
    if not refs and not lines:
        reason = ("unavailable", "Unavailable") if unavailable else ("nilknown", "Nil Known")
        section["emptyReason"] = {
            "coding": [{"system": EMPTY_REASON, "code": reason[0], "display": reason[1]}]
        }
    return section


def _give_identifier_systems(patient: Json, source: str) -> None:
    """An identifier without a system cannot be matched by the receiver: name it after the EHR it
    came from (the draft already lists it as a data issue)."""
    for item in patient.get("identifier") or []:
        if isinstance(item, dict) and item.get("value") and not item.get("system") and source:
            item["system"] = f"{source.rstrip('/')}/identifier"


def _rewrite(value: Any, target: Callable[[str], str | None]) -> None:
    """Point every Reference at its entry; one that leaves the document keeps only its display."""
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and not ref.startswith("#"):
            found = target(ref if ref.startswith("urn:uuid:") else reference(value))
            if found:
                value["reference"] = found
            else:
                value.pop("reference")
                value.setdefault(
                    "display", f"{ref.split('/')[-2] if '/' in ref else 'Record'} held by the sending EHR"
                )
        for item in value.values():
            _rewrite(item, target)
    elif isinstance(value, list):
        for item in value:
            _rewrite(item, target)
