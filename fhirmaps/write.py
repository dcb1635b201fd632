"""Referral packet → FHIR R4: ServiceRequest (the referral), Composition (the letter),
DocumentReference (the PDF), and the narrative lines the document sections share
(fhirmaps/document.py assembles the document Bundle). Pure functions over the packet's JSON; every
resource is validated against R4B before it is returned, so nothing invalid reaches an EHR."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable
from typing import Any

from fhirmaps.r4b import Bundle, Composition, DocumentReference, ServiceRequest, validation_problem

Json = dict[str, Any]
LOINC = "http://loinc.org"
REFERRAL_NOTE = {"system": LOINC, "code": "57133-1", "display": "Referral note"}
PATIENT_REFERRAL = {"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}
CLINICAL_NOTE = {
    "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
    "code": "clinical-note",
    "display": "Clinical Note",
}
# Worded without "second opinion": the engine reads ServiceRequests back on the next launch and
# takes that phrase in an order as the patient asking for one (trigger patient-request).
REVIEW_LABELS = {
    "pathology": "pathology slide review",
    "clinical": "clinical review",
    "both": "pathology slide review and clinical review",
}
# Reasons point at what the finding rests on; only these types are valid
# ServiceRequest.reasonReference targets.
REASON_TYPES = ("Condition", "Observation", "DiagnosticReport", "DocumentReference")
ATTACHED = ("attached", "found")  # "found": drafts made before the checklist had states
STATUS_WORDS = {
    "attached": "attached",
    "found": "attached",
    "to-request": "to request",
    "not-applicable": "not applicable",
    "to-gather": "to gather",
}
_MODELS: dict[str, Any] = {
    "ServiceRequest": ServiceRequest,
    "Composition": Composition,
    "Bundle": Bundle,
    "DocumentReference": DocumentReference,
}


class InvalidResource(ValueError):
    """A generated resource is not valid FHIR R4B (a bug, never the user's data)."""


def validate(resource: Json) -> Json:
    problem = validation_problem(resource)
    if problem:
        raise InvalidResource(f"{resource.get('resourceType')}: {problem}")
    model = _MODELS.get(str(resource.get("resourceType")))
    if model is not None:
        model.model_validate(resource)
    return resource


def identifier(packet: Json, suffix: str = "") -> Json:
    return {"system": packet["identifier_system"], "value": packet["id"] + suffix}


def search_token(ident: Json) -> str:
    """The `identifier` search value for a conditional create (If-None-Exist)."""
    return f"identifier={ident['system']}|{ident['value']}"


def service_request(packet: Json) -> Json:
    final = packet["status"] == "final"
    resource: Json = {
        "resourceType": "ServiceRequest",
        "identifier": [identifier(packet)],
        "status": "active" if final else "draft",
        "intent": "order" if final else "proposal",
        "category": [{"coding": [PATIENT_REFERRAL], "text": "Referral"}],
        "code": {
            "text": (
                "Referral for outside expert review: "
                f"{REVIEW_LABELS.get(packet['review_type'], packet['review_type'])}"
            )
        },
        "priority": _priority(packet),
        "subject": {"reference": packet["patient"]["reference"]},
        "authoredOn": packet["created"],
    }
    sender = packet.get("sender") or {}
    if sender.get("name"):
        resource["requester"] = {"display": sender["name"]}
    destination = packet.get("destination")
    if destination:
        resource["performer"] = [{"display": _join(destination.get("name"), destination.get("program"))}]
    diagnoses = [d["reference"] for d in packet.get("diagnoses") or [] if d.get("reference")]
    reasons = _unique(ref for ref in diagnoses + _reason_refs(packet) if ref.split("/", 1)[0] in REASON_TYPES)
    if reasons:
        resource["reasonReference"] = [{"reference": ref} for ref in reasons]
    # The reasons' wording lives in the Composition and the PDF, not in reasonCode: finding
    # summaries say "second opinion", which the engine would read back as the patient asking.
    # What travels with the referral, and what is to be requested (the specimens behind the slides).
    supporting = _unique(
        i["reference"]
        for i in packet.get("checklist") or []
        if i.get("status") in (*ATTACHED, "to-request") and i.get("reference")
    )
    if supporting:
        resource["supportingInfo"] = [{"reference": ref} for ref in supporting]
    questions = [q["text"] for q in packet.get("questions") or [] if q.get("text")]
    notes = [packet.get("timing_advice", "")] + [f"Question {n}: {q}" for n, q in enumerate(questions, 1)]
    resource["note"] = [{"text": text} for text in notes if text]
    return validate(resource)


def composition(packet: Json, *, subject: str | None = None, date: str | None = None) -> Json:
    """`subject` lets a document Bundle point at its own Patient entry (urn:uuid)."""
    sender = packet.get("sender") or {}
    resource: Json = {
        "resourceType": "Composition",
        "identifier": identifier(packet, "-composition"),
        "status": "final" if packet["status"] == "final" else "preliminary",
        "type": {"coding": [REFERRAL_NOTE], "text": "Second-opinion referral"},
        "subject": {"reference": subject or packet["patient"]["reference"]},
        "date": date or packet["created"],
        "author": [{"display": _join(sender.get("name"), sender.get("organization")) or "SecondLook"}],
        "title": "Referral for a second opinion",
        "section": [
            section(
                "Reasons for referral",
                [f"{r['summary']}" for r in packet.get("reasons") or []],
                _reason_refs(packet),
            ),
            section("Questions for the consultant", [q["text"] for q in packet.get("questions") or []], []),
            section(
                "Diagnosis and treatment summary",
                _summary_lines(packet),
                [d["reference"] for d in packet.get("diagnoses") or [] if d.get("reference")],
            ),
            section(
                "Records checklist",
                checklist_lines(packet),
                [
                    i["reference"]
                    for i in packet.get("checklist") or []
                    if i.get("status") in ATTACHED and i.get("reference")
                ],
            ),
        ],
    }
    return validate(resource)


def reason_lines(packet: Json) -> list[str]:
    lines = [f"Reason: {r['summary']}" for r in packet.get("reasons") or []]
    lines += [f"Question {n}: {q['text']}" for n, q in enumerate(packet.get("questions") or [], 1)]
    return [*lines, packet.get("timing_advice", "")]


def diagnosis_lines(packet: Json) -> list[str]:
    lines = []
    for d in packet.get("diagnoses") or []:
        extra = "; ".join(
            x for x in (", ".join(d.get("codes") or []), d.get("stage", ""), d.get("grade", "")) if x
        )
        lines.append(d["text"] + (f" ({extra})" if extra else ""))
    return lines


def result_lines(packet: Json) -> list[str]:
    lines = [f"Biomarker: {b['name']}: {b['value']}" for b in packet.get("biomarkers") or []]
    lines += [
        f"Report text attached: {a['title']}" + (f" ({a['date']})" if a.get("date") else "")
        for a in packet.get("attachments") or []
    ]
    return lines + checklist_lines(packet)


def checklist_lines(packet: Json) -> list[str]:
    lines = []
    for item in packet.get("checklist") or []:
        state = STATUS_WORDS.get(item["status"], item["status"])
        if item["status"] == "to-request" and item.get("holder"):
            state += f" from {item['holder']}"
        lines.append(f"[{state}] {item['label']} {item.get('detail', '')}".strip())
    return lines


def treatment_lines(lines: list[Json] | None) -> list[str]:
    return [
        f"{t['text']} ({t.get('status', '')}{', ' + t['date'] if t.get('date') else ''})" for t in lines or []
    ]


def item_lines(items: list[Json] | None) -> list[str]:
    if items is None:
        return ["Could not be read from the record; ask the referring office."]
    return [t["text"] + (f": {t['detail']}" if t.get("detail") else "") for t in items]


def insurance_lines(packet: Json) -> list[str]:
    cover = packet["insurance"]
    if not cover.get("available"):
        return [cover.get("note") or "Not in the record.", cover.get("prior_authorization", "")]
    return [
        f"Payer: {cover.get('payer') or 'not in the record'}",
        f"Plan: {cover.get('plan') or 'not in the record'}",
        f"Member id: {cover.get('member_id') or 'not in the record'}",
        cover.get("note", ""),
        cover.get("prior_authorization", ""),
    ]


def document_reference(packet: Json, pdf: bytes, *, date: str, related: Iterable[str] = ()) -> Json:
    """The PDF as a DocumentReference; `date` is an instant with its time zone."""
    resource: Json = {
        "resourceType": "DocumentReference",
        "masterIdentifier": identifier(packet, "-pdf"),
        "identifier": [identifier(packet, "-pdf")],
        "status": "current",
        "docStatus": "final" if packet["status"] == "final" else "preliminary",
        "type": {"coding": [REFERRAL_NOTE], "text": "Second-opinion referral packet"},
        "category": [{"coding": [CLINICAL_NOTE]}],
        "subject": {"reference": packet["patient"]["reference"]},
        "date": date,
        "description": "Second-opinion referral packet (PDF)",
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "data": base64.b64encode(pdf).decode("ascii"),
                    "title": "Second-opinion referral packet",
                    "creation": packet["created"],
                }
            }
        ],
    }
    refs = list(related)
    if refs:
        resource["context"] = {"related": [{"reference": ref} for ref in refs]}
    return validate(resource)


def _priority(packet: Json) -> str:
    if packet.get("time_critical"):
        return "asap"
    return "urgent" if packet.get("urgency") == "expedite" else "routine"


def _reason_refs(packet: Json) -> list[str]:
    refs = [
        e["reference"]
        for r in packet.get("reasons") or []
        for e in r.get("evidence") or []
        if e.get("reference")
    ]
    return _unique(refs)


def _summary_lines(packet: Json) -> list[str]:
    lines = []
    for d in packet.get("diagnoses") or []:
        extra = "; ".join(
            x for x in (", ".join(d.get("codes") or []), d.get("stage", ""), d.get("grade", "")) if x
        )
        lines.append(f"Diagnosis: {d['text']}" + (f" ({extra})" if extra else ""))
    lines += [f"Biomarker: {b['name']}: {b['value']}" for b in packet.get("biomarkers") or []]
    lines += [
        f"Treatment so far: {t['text']} ({t.get('status', '')})" for t in packet.get("treatment_so_far") or []
    ]
    lines += [
        f"Treatment proposed: {t['text']} ({t.get('status', '')})"
        for t in packet.get("treatment_proposed") or []
    ]
    if packet.get("summary_note"):
        lines.append(packet["summary_note"])
    return lines


def section(title: str, lines: list[str], refs: list[str]) -> Json:
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines if line)
    body = f"<ul>{items}</ul>" if items else "<p>None.</p>"
    found: Json = {
        "title": title,
        "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'},
    }
    unique = _unique(refs)
    if unique:
        found["entry"] = [{"reference": ref} for ref in unique]
    return found


def patient_resource(packet: Json) -> Json:
    """The Patient from the packet's own fields (when the record's copy is not available)."""
    info = packet["patient"]
    patient: Json = {"resourceType": "Patient", "id": info["reference"].split("/", 1)[-1]}
    if info.get("identifier"):
        patient["identifier"] = [
            {k: v for k, v in (("system", info.get("identifier_system")), ("value", info["identifier"])) if v}
        ]
    if info.get("name"):
        patient["name"] = [{"text": info["name"]}]
    if info.get("gender") in ("male", "female", "other", "unknown"):
        patient["gender"] = info["gender"]
    if info.get("birth_date"):
        patient["birthDate"] = info["birth_date"]
    return patient


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _join(*parts: Any) -> str:
    return " - ".join(str(p) for p in parts if p)
