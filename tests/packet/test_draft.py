"""Pure drafting rules: review type, questions and timing from findings; insurance availability;
form edits."""

from __future__ import annotations

import html
import json
from datetime import date
from pathlib import Path

from fhirmaps.record import PatientRecord
from smartapp.findings import Fact, Finding, PatientResult
from smartapp.packet.directory import load_directory
from smartapp.packet.draft import draft_for_patient, draft_packet, questions_for, review_type
from smartapp.packet.edits import apply_form
from smartapp.packet.pdf import render_html

FIXTURES = Path(__file__).resolve().parents[2] / "demo" / "demo_ehr" / "fixtures" / "patients"

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [{"given": ["Ann"], "family": "Lee"}],
    "birthDate": "1970-01-02",
    "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "MRN-1"}],
}


def finding(
    trigger: str, summary: str = "", urgency: str = "routine", facts: tuple[Fact, ...] = ()
) -> Finding:
    return Finding.model_validate(
        {
            "trigger": trigger,
            "urgency": urgency,
            "summary": summary,
            "rationale": "why",
            "action": "clinical-second-opinion",
            "facts": list(facts),
            "evidence": [
                {"reference": "DiagnosticReport/r1", "path": "DiagnosticReport.conclusion", "text": "quoted"}
            ],
        }
    )


def draft(findings: list[Finding], time_critical: dict[str, object] | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
    evaluation = PatientResult.model_validate(
        {"patient": "Patient/p1", "findings": findings, "time_critical": time_critical}
    )
    return draft_packet(
        [PATIENT], PatientRecord(patient="Patient/p1"), evaluation, created="2026-11-25T09:00:00Z", **kwargs
    )


def test_review_type_follows_the_findings() -> None:
    assert review_type([finding("uncertain-pathology")]) == "pathology"
    assert review_type([finding("major-treatment")]) == "clinical"
    assert review_type([finding("incomplete-biomarker"), finding("not-responding")]) == "both"
    assert review_type([finding("rare-cancer")]) == "both"
    assert review_type([]) == "clinical"


def test_gist_versus_leiomyosarcoma_asks_for_kit_and_dog1() -> None:
    readings = (
        Fact(kind="diagnosis", name="Gastrointestinal stromal tumor (GIST)"),
        Fact(kind="diagnosis", name="Leiomyosarcoma"),
    )
    questions = questions_for([finding("discordant-findings", "Readings disagree.", facts=readings)])
    assert (
        questions[0].text == "Please re-review H&E and IHC: GIST vs leiomyosarcoma; KIT (CD117)/DOG1 status?"
    )


def test_surveillance_question_names_the_missing_criteria() -> None:
    missing = (Fact(kind="statement", name="PSA density unknown (no prostate volume)"),)
    questions = questions_for(
        [finding("surveillance-check", "Active surveillance for prostate cancer.", facts=missing)]
    )
    assert "PSA density unknown" in questions[0].text


def test_timing_advice_by_urgency() -> None:
    assert "2-4 weeks" in draft([finding("uncertain-pathology")]).timing_advice
    expedited = draft([finding("not-responding", urgency="expedite")])
    assert expedited.urgency == "expedite" and "within days" in expedited.timing_advice
    urgent = draft(
        [finding("rare-cancer", urgency="expedite")],
        {"reason": "Acute myeloid leukemia", "advice": "", "evidence": []},
    )
    assert urgent.time_critical == "Acute myeloid leukemia"
    assert "do not delay treatment" in urgent.timing_advice.lower() and "in parallel" in urgent.timing_advice


def test_insurance_not_available_without_scope_or_data() -> None:
    denied = draft([], unavailable={"Coverage": "access to Coverage was not granted"})
    assert not denied.insurance.available and "not granted" in denied.insurance.note
    assert "prior authorization" in denied.insurance.prior_authorization
    none = draft([])
    assert not none.insurance.available and "no active insurance" in none.insurance.note


def test_missing_records_are_marked_to_gather() -> None:
    packet = draft([finding("uncertain-pathology")])
    assert packet.patient.name == "Ann Lee" and packet.patient.identifier == "MRN-1"
    statuses = {i.category: i.status for i in packet.checklist}
    assert statuses["slides"] == statuses["pathology-report"] == statuses["imaging"] == "to-gather"
    assert packet.medications == [] and packet.allergies == []
    unreadable = draft([], unavailable={"AllergyIntolerance": "denied", "MedicationRequest": "denied"})
    assert unreadable.medications is None and unreadable.allergies is None


def test_form_edits_every_field_adds_and_removes_items() -> None:
    packet = draft(
        [finding("uncertain-pathology", "Hedged report"), finding("patient-request", "Patient asked")]
    )
    first, second = packet.reasons
    question = packet.questions[0]
    item = packet.checklist[0]
    form = [
        ("cover_letter", "Dear Dr Smith"),
        ("timing_advice", "Soon please"),
        ("summary_note", "Summary"),
        ("sender_name", "Dr Jones"),
        ("sender_contact", "555-0100"),
        ("insurance_note", "Self-pay agreed"),
        (f"reason-{first.id}-summary", "Report hedged between two entities"),
        ("remove", f"reason:{second.id}"),
        ("new_reason", "Tumor board asked for outside review"),
        (f"question-{question.id}", "Which entity is it?"),
        ("new_question", "Further stains?"),
        ("remove", f"item:{item.id}"),
        ("new_item_label", "Outside slides from St Elsewhere"),
        ("destination", "msk/msk-more-health"),
        ("action", "final"),
    ]
    edited = apply_form(packet, form, load_directory())
    assert (edited.cover_letter, edited.timing_advice, edited.summary_note) == (
        "Dear Dr Smith",
        "Soon please",
        "Summary",
    )
    assert (edited.sender.name, edited.sender.contact, edited.insurance.note) == (
        "Dr Jones",
        "555-0100",
        "Self-pay agreed",
    )
    assert [r.summary for r in edited.reasons] == [
        "Report hedged between two entities",
        "Tumor board asked for outside review",
    ]
    assert [q.text for q in edited.questions][0] == "Which entity is it?" and edited.questions[
        -1
    ].text == "Further stains?"
    assert item.id not in {i.id for i in edited.checklist}
    assert (
        edited.checklist[-1].label == "Outside slides from St Elsewhere"
        and edited.checklist[-1].status == "to-gather"
    )
    assert edited.destination is not None and edited.destination.center_id == "msk/msk-more-health"
    assert edited.status == "final"
    assert packet.status == "draft" and len(packet.reasons) == 2  # the original is untouched


def test_form_adds_every_new_entry_it_carries() -> None:
    """After a version conflict the editor gives back each entry not saved yet as one more "add" field."""
    packet = draft([finding("uncertain-pathology", "Hedged report")])
    form = [
        ("new_reason", "Tumor board asked for outside review"),
        ("new_reason", "  "),
        ("new_reason", "Patient asked for a second opinion"),
        ("new_question", "Further stains?"),
        ("new_question", "Is molecular testing needed?"),
        ("new_item_label", "Outside slides from St Elsewhere"),
        ("new_item_detail", "Accession S26-1"),
        ("new_item_label", ""),
        ("new_item_detail", "details without a record"),
        ("new_item_label", "Operative note 11/02"),
        ("new_item_detail", ""),
    ]
    form.append(("cover_letter", "Dear colleague,\r\nplease review.\r\n"))
    edited = apply_form(packet, form, load_directory())
    assert edited.cover_letter == "Dear colleague,\nplease review."  # a browser's CRLF stored as LF
    assert [r.summary for r in edited.reasons[1:]] == [
        "Tumor board asked for outside review",
        "Patient asked for a second opinion",
    ]
    assert [q.text for q in edited.questions[-2:]] == ["Further stains?", "Is molecular testing needed?"]
    added = edited.checklist[len(packet.checklist) :]
    assert [(i.label, i.detail) for i in added] == [
        ("Outside slides from St Elsewhere", "Accession S26-1"),
        ("Operative note 11/02", ""),
    ]


def test_finalize_lists_exactly_what_is_missing() -> None:
    packet = draft([finding("uncertain-pathology")])
    problems = packet.finalize_problems()
    assert "Choose the receiving center." in problems and "Enter the referring clinician's name." in problems
    assert any("Records checklist" in p for p in problems)
    form = [("destination", "msk/msk-more-health"), ("sender_name", "Dr Jones")]
    form += [(f"item-{i.id}-status", "not-applicable") for i in packet.checklist]
    assert apply_form(packet, form, load_directory()).finalize_problems() == []
    requested = [(f"item-{i.id}-status", "to-request") for i in packet.checklist]
    left = apply_form(packet, form[:2] + requested, load_directory()).finalize_problems()
    assert len(left) == len(packet.checklist) and all("say who to request" in p for p in left)
    # Every reason removed (e.g. all findings dismissed): a referral needs a reason.
    emptied = apply_form(packet, form, load_directory()).model_copy(update={"reasons": []})
    assert emptied.finalize_problems() == ["Give at least one reason for the referral."]


def test_interpreter_language_and_contact_come_from_the_patient() -> None:
    patient = dict(
        PATIENT,
        telecom=[{"system": "phone", "value": "555-0101", "use": "home"}],
        address=[{"line": ["1 Main St"], "city": "Dover", "state": "DE", "postalCode": "19901"}],
        communication=[{"language": {"text": "Spanish"}, "preferred": True}],
        extension=[
            {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-interpreter-needed",
                "valueCoding": {"code": "Y"},
            }
        ],
    )
    evaluation = PatientResult.model_validate({"patient": "Patient/p1", "findings": []})
    info = draft_packet(
        [patient], PatientRecord(patient="Patient/p1"), evaluation, created="2026-11-25T09:00:00Z"
    ).patient
    assert (info.phone, info.address, info.language, info.interpreter) == (
        "555-0101",
        "1 Main St, Dover, DE 19901",
        "Spanish",
        "needed",
    )


def test_a_time_critical_only_patient_gets_an_expedited_parallel_review_with_a_reason() -> None:
    """The cord-compression demo chart has no finding besides the emergency itself."""
    bundle = json.loads((FIXTURES / "11-lung-cord-compression.json").read_text())
    packet = draft_for_patient(
        [bundle], "Patient/demo-lung-mscc", as_of=date(2026, 11, 25), created="2026-11-25T09:00:00+00:00"
    )
    assert [r.trigger for r in packet.reasons] == ["time-critical"]
    assert packet.reasons[0].summary and packet.reasons[0].evidence
    assert packet.urgency == "expedite" and packet.time_critical
    assert "in parallel" in packet.timing_advice and "do not delay treatment" in packet.timing_advice.lower()
    # The materials a parallel review works from: the pathology report and the imaging.
    assert {"pathology-report", "imaging"} <= {i.category for i in packet.checklist}
    letter = html.unescape(render_html(packet))
    assert "No reason recorded" not in letter and packet.reasons[0].summary in letter
