"""The packet's FHIR document and PDF over demo charts, and over charts with one element corrupted."""

from __future__ import annotations

import copy
import io
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pypdf
import pytest

from fhirmaps import document
from fhirmaps.r4b import validation_problem
from smartapp.cli.main import main
from smartapp.packet.draft import draft_for_patient
from smartapp.packet.pdf import render_pdf
from tests.packet import golden

FIXTURES = Path(__file__).resolve().parents[2] / "demo" / "demo_ehr" / "fixtures" / "patients"
CASES = {
    "01-gist-vs-lms.json": ("demo-gist", "Practitioner/gist-surg"),
    "04-osteosarcoma-amputation.json": ("demo-osteosarcoma", ""),
    "05-crc-progression-folfox.json": ("demo-crc-metastatic", ""),
    "10-aml-new-diagnosis.json": ("demo-aml", ""),
    "13-follicular-vs-mantle-cell.json": ("demo-fl-mcl", ""),
}
AS_OF = date(2026, 11, 25)
CREATED = "2026-11-25T09:00:00+00:00"


def chart(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def patient_id(bundle: dict[str, Any]) -> str:
    return next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")


def references(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for item in value.values() for r in references(item)]
    if isinstance(value, list):
        return [r for item in value for r in references(item)]
    return []


def identifiers(value: Any) -> list[dict[str, Any]]:
    """Every Identifier (an `identifier` element, or a reference's) without a system."""
    if isinstance(value, list):
        return [i for item in value for i in identifiers(item)]
    if not isinstance(value, dict):
        return []
    found = []
    for key, item in value.items():
        if key == "identifier":
            found += [i for i in (item if isinstance(item, list) else [item]) if not i.get("system")]
        found += identifiers(item)
    return found


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_reference_resolves_inside_the_document(name: str) -> None:
    bundle = chart(name)
    packet = draft_for_patient(
        [bundle], f"Patient/{patient_id(bundle)}", as_of=AS_OF, created=CREATED, user=CASES[name][1]
    )
    doc = document.document_bundle(packet.to_json(), timestamp=CREATED, pdf=b"%PDF-1.7 test")
    urls = [e["fullUrl"] for e in doc["entry"]]
    assert len(urls) == len(set(urls)) and all(u.startswith("urn:uuid:") for u in urls)
    unresolved = [r for r in references(doc) if not r.startswith("#") and r not in urls]
    assert unresolved == []
    assert doc["entry"][0]["resource"]["resourceType"] == "Composition"
    assert doc["identifier"]["value"] and doc["timestamp"] == CREATED
    assert validation_problem(doc) is None
    types = {e["resource"]["resourceType"] for e in doc["entry"]}
    assert {
        "Patient",
        "Condition",
        "DiagnosticReport",
        "Coverage",
        "Organization",
        "ServiceRequest",
        "Task",
        "DocumentReference",
        "Binary",
    } <= types
    patient = doc["entry"][1]["resource"]
    assert all(i.get("system") for i in patient.get("identifier", []))
    # Every identifier of every resource names its system, not only the Patient's MRN.
    unnamed = [(e["resource"]["resourceType"], i) for e in doc["entry"] for i in identifiers(e["resource"])]
    assert unnamed == []
    composition = doc["entry"][0]["resource"]
    assert all("reference" in a for a in composition["author"])
    assert all(
        any(c.get("system") == "http://loinc.org" and c.get("code") for c in s["code"]["coding"])
        for s in composition["section"]
    )
    # Report texts travel inline: no attachment points back at the sending EHR's Binary endpoint.
    reports = [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"]
    assert any(f.get("data") for r in reports for f in r.get("presentedForm", []))


def corruptions() -> list[tuple[str, str, Any]]:
    return [
        ("Condition", "code", "C50.9"),
        ("Condition", "stage", "IIA"),
        ("Coverage", "payor", "Acme"),
        ("Coverage", "class", "gold"),
        ("Patient", "identifier", "MRN-1"),
        ("Patient", "name", "Ann Lee"),
        ("Patient", "telecom", "555"),
        ("Patient", "communication", "en"),
        ("AllergyIntolerance", "code", "pcn"),
        ("MedicationRequest", "medicationCodeableConcept", "aspirin"),
        ("Specimen", "container", "block"),
    ]


# What the letter says instead of the element each corruption breaks: said as missing or unreadable
# (never invented, never an empty list that reads as "none"). Elements the letter does not print on
# their own (a stage the diagnosis line takes from the structured stage, a plan class beside the
# plan type, a specimen's blocks beside its accession) are left to the packet still building.
SAID_INSTEAD = {
    ("Condition", "code"): "Diagnosis not readable in the record - request from the referring office",
    ("Coverage", "payor"): "Payer: not in the record - request from the patient",
    ("Patient", "identifier"): "Medical record number not in the record - request from the referring office",
    ("Patient", "name"): "Name not in the record - request from the referring office",
    ("Patient", "telecom"): "Phone not in the record - request from the patient",
    ("Patient", "communication"): "Preferred language not in the record - request from the patient",
    ("AllergyIntolerance", "code"): "Allergy recorded, substance not readable - Hives; criticality low; "
    "confirm with the patient",
    ("MedicationRequest", "medicationCodeableConcept"): "Medication not readable in the record - 325 mg by "
    "mouth once daily; since 09/22/2026; request the name from the referring office",
}
NOT_SAID = {
    ("AllergyIntolerance", "code"): "No allergy in the record",
    ("MedicationRequest", "medicationCodeableConcept"): "No active medication in the record",
}


@pytest.mark.parametrize(("rtype", "field", "value"), corruptions())
def test_a_malformed_element_is_said_missing_in_the_letter(rtype: str, field: str, value: Any) -> None:
    bundle = corrupted("01-gist-vs-lms.json", rtype, field, value)
    packet = draft_for_patient(
        [bundle], "Patient/demo-gist", as_of=AS_OF, created=CREATED, user="Practitioner/gist-surg"
    )
    text = golden.letter(packet)
    if (rtype, field) in SAID_INSTEAD:
        assert SAID_INSTEAD[rtype, field] in text
    if (rtype, field) in NOT_SAID:
        assert NOT_SAID[rtype, field] not in text
    if value in ("C50.9", "Acme", "gold", "MRN-1", "Ann Lee", "pcn", "aspirin"):  # words found nowhere else
        assert value not in text  # the broken value is never printed as if it were data


def corrupted(name: str, rtype: str, field: str, value: Any) -> dict[str, Any]:
    bundle = copy.deepcopy(chart(name))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == rtype:
            entry["resource"][field] = value
    return bundle


@pytest.mark.parametrize(("rtype", "field", "value"), corruptions())
def test_a_malformed_element_still_yields_a_packet(
    rtype: str, field: str, value: Any, tmp_path: Path
) -> None:
    bundle = corrupted("01-gist-vs-lms.json", rtype, field, value)
    packet = draft_for_patient(
        [bundle], "Patient/demo-gist", as_of=AS_OF, created=CREATED, user="Practitioner/gist-surg"
    )
    pdf = render_pdf(packet)
    doc = document.document_bundle(packet.to_json(), timestamp=CREATED, pdf=pdf)
    urls = {e["fullUrl"] for e in doc["entry"]}
    assert all(r in urls for r in references(doc) if not r.startswith("#"))
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    if (rtype, field) == ("Patient", "name"):
        assert "name not in the record" in text
    path = tmp_path / "chart.json"
    path.write_text(json.dumps(bundle))
    assert (
        main(
            [
                "packet",
                str(path),
                "--patient",
                "demo-gist",
                "--out",
                str(tmp_path / "out"),
                "--as-of",
                "2026-11-25",
            ]
        )
        == 0
    )


def test_pdf_is_tagged_with_title_language_and_draft_on_every_page() -> None:
    bundle = chart("05-crc-progression-folfox.json")
    packet = draft_for_patient([bundle], "Patient/demo-crc-metastatic", as_of=AS_OF, created=CREATED)
    reader = pypdf.PdfReader(io.BytesIO(render_pdf(packet)))
    root = reader.trailer["/Root"]
    assert bool(root["/MarkInfo"]["/Marked"]) and "/StructTreeRoot" in root
    assert root["/Lang"] == "en" and "Second-opinion referral" in str(reader.metadata.title)
    # WeasyPrint's PDF/UA-1 variant declares its conformance in the XMP metadata.
    xmp = root["/Metadata"].get_object().get_data().decode()
    assert "pdfuaid:part" in xmp and re.search(r"pdfuaid:part[^0-9]{0,3}1", xmp)
    pages = [page.extract_text() for page in reader.pages]
    assert len(pages) > 1 and all("DRAFT" in page for page in pages)
    everything = " ".join(pages)
    assert "In the record (" not in everything and "DiagnosticReport/" not in everything
    assert "Signature:" in everything and "Date: 11/25/2026" in everything
    final = pypdf.PdfReader(io.BytesIO(render_pdf(packet.model_copy(update={"status": "final"}))))
    assert not any("DRAFT" in page.extract_text() for page in final.pages)


TRACKED = [
    ("final", "requested", "2.0"),
    ("sent", "requested", "2.0"),
    ("received", "received", "2.0"),
    ("accepted", "accepted", "3.0"),
    ("declined", "rejected", "4.0"),
    ("scheduled", "in-progress", "5.1.1"),
    ("cancelled", "cancelled", "6.0"),
    ("completed", "completed", "7.0"),
]


@pytest.mark.parametrize(("status", "task_status", "business"), TRACKED)
def test_every_tracked_status_exports_a_valid_bser_task(status: str, task_status: str, business: str) -> None:
    bundle = chart("01-gist-vs-lms.json")
    packet = draft_for_patient([bundle], f"Patient/{patient_id(bundle)}", as_of=AS_OF, created=CREATED)
    final = packet.model_copy(update={"status": "final"}).successor(created=CREATED, amend=True)
    final.status = "final"
    opinion = (
        {
            "received": "2026-12-03",
            "center": "Mayo Clinic",
            "agreement": "changes-diagnosis",
            "summary": "Leiomyosarcoma, not GIST.",
        }
        if status == "completed"
        else None
    )
    tracking = {"status": status, "at": "2026-12-03T10:00:00+00:00", "note": "by phone", "opinion": opinion}
    doc = document.document_bundle(final.to_json(), timestamp=CREATED, tracking=tracking)
    assert validation_problem(doc) is None
    task = next(e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "Task")
    assert (task["status"], task["businessStatus"]["coding"][0]["code"]) == (task_status, business)
    assert task["lastModified"] == "2026-12-03T10:00:00+00:00" and task["statusReason"]["text"] == "by phone"
    assert [o["valueString"] for o in task.get("output", [])] == (
        ["Opinion from Mayo Clinic dated 2026-12-03: changes the diagnosis. Leiomyosarcoma, not GIST."]
        if opinion
        else []
    )
    request = next(
        e["resource"]
        for e in doc["entry"]
        if e["resource"]["resourceType"] == "ServiceRequest"
        and e["resource"]["identifier"][0]["system"] == final.identifier_system
    )
    assert request["status"] == {"completed": "completed", "declined": "revoked", "cancelled": "revoked"}.get(
        status, "active"
    )
    assert request["replaces"] == [
        {
            "identifier": {"system": final.identifier_system, "value": packet.id},
            "display": "Earlier version of this referral",
        }
    ]
    urls = {e["fullUrl"] for e in doc["entry"]}
    assert [r for r in references(doc) if r not in urls] == []
