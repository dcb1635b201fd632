"""fhirmaps.write: pure packet JSON → FHIR R4B resources (pure unit tests)."""

from __future__ import annotations

import base64

import pytest

from fhirmaps import write
from smartapp.packet.model import ChecklistItem, Evidence, Insurance, PatientInfo, Reason, ReferralPacket


def packet(**changes: object) -> dict[str, object]:
    body = ReferralPacket(
        id="abc123",
        created="2026-11-25T09:00:00+00:00",
        patient=PatientInfo(reference="Patient/p1", name="Ann Lee"),
        insurance=Insurance(available=False),
        reasons=[
            Reason(
                trigger="uncertain-pathology",
                summary="Hedged <b>report</b> & more",
                evidence=[Evidence(reference="DiagnosticReport/r1"), Evidence(reference="Specimen/s1")],
            )
        ],
        checklist=[
            ChecklistItem(label="Slides", status="found", reference="Specimen/s1"),
            ChecklistItem(label="Op note", status="to-gather"),
        ],
    ).to_json()
    body.update(changes)
    return body


def test_service_request_reasons_keep_only_valid_reference_types() -> None:
    request = write.service_request(packet())
    assert request["reasonReference"] == [{"reference": "DiagnosticReport/r1"}]
    assert request["supportingInfo"] == [{"reference": "Specimen/s1"}]
    assert request["identifier"] == [{"system": "urn:secondlook:referral-packet", "value": "abc123"}]
    assert write.search_token(request["identifier"][0]) == "identifier=urn:secondlook:referral-packet|abc123"


def test_time_critical_and_expedited_priorities() -> None:
    assert write.service_request(packet(time_critical="AML"))["priority"] == "asap"
    assert write.service_request(packet(urgency="expedite"))["priority"] == "urgent"
    assert write.service_request(packet())["priority"] == "routine"


def test_composition_narrative_is_escaped_xhtml() -> None:
    section = write.composition(packet())["section"][0]
    assert "&lt;b&gt;report&lt;/b&gt; &amp; more" in section["text"]["div"]
    assert section["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
    assert section["entry"] == [{"reference": "DiagnosticReport/r1"}, {"reference": "Specimen/s1"}]


def test_document_reference_carries_the_pdf() -> None:
    document = write.document_reference(
        packet(status="final"), b"%PDF-1.7", date="2026-11-25T09:30:00+00:00", related=["ServiceRequest/sr1"]
    )
    assert base64.b64decode(document["content"][0]["attachment"]["data"]) == b"%PDF-1.7"
    assert document["docStatus"] == "final"
    assert document["context"]["related"] == [{"reference": "ServiceRequest/sr1"}]


def test_invalid_output_is_refused() -> None:
    with pytest.raises(write.InvalidResource):
        write.document_reference(packet(), b"x", date="not a date")
