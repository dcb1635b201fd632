"""patient-request: the patient asks for another opinion (coded order/encounter, patient message,
questionnaire, note)."""

from __future__ import annotations

from datetime import date

from fhirmaps.record import PatientRecord
from smartapp.findings import Evidence, Fact, Finding
from smartapp.triggers import rules
from smartapp.triggers.common import Evaluation, mentions, reviews_in_record
from smartapp.triggers.spec import TriggerSpec
from smartapp.wording import sentence as as_sentence
from smartapp.wording import us_date

RATIONALE = (
    "Patients may always ask for a second opinion; no clinical justification is needed. "
    "In a national second-opinion program the diagnosis changed in 14.8% and the treatment in 37.4% "
    "of cases (Meyer et al., Am J Med 2015)."
)


def evaluate(record: PatientRecord, evaluation: Evaluation) -> Finding | None:
    evidence = [Evidence.of(s) for s in record.requests]
    for a in record.activities:
        if a.resource_type in ("ServiceRequest", "Appointment", "Encounter") and a.status not in (
            "revoked",
            "entered-in-error",
            "cancelled",
        ):
            text = f"{a.name} {a.reason_text}"
            by_clinician = a.requester in ("Practitioner", "PractitionerRole", "Organization", "CareTeam")
            if by_clinician and not (
                rules.pattern(SPEC.id, "asks_patterns").search(f"{text} {a.note}")
                or rules.pattern(SPEC.id, "asked_by_patterns").search(f"{text} {a.note}")
            ):
                # a clinician's referral is a review under way (listed on the findings), not a request
                continue
            if rules.pattern(SPEC.id, "second_opinion_words").search(text) and not rules.pattern(
                SPEC.id, "not_patient_patterns"
            ).search(f"{text} {a.note}"):
                evidence.append(Evidence.of(a.source, text.strip()))
    for m in mentions(record, evaluation, "REQUEST", kinds=("note",), asserted=False):
        if m.raw.negated:
            continue
        report = record.report(m.source.reference)
        sentence = m.raw.sentence
        if report is not None and report.author_is_patient:
            if not rules.pattern(SPEC.id, "no_answer_patterns").search(sentence):
                evidence.append(Evidence.of(m.source))
            continue
        if (
            rules.pattern(SPEC.id, "asks_patterns").search(sentence)
            or rules.pattern(SPEC.id, "asked_by_patterns").search(sentence)
        ) and not rules.pattern(SPEC.id, "not_patient_patterns").search(sentence):
            evidence.append(Evidence.of(m.source))
    if not evidence:
        return None
    first = max(evidence, key=lambda e: e.when or date.min)
    on = f" on {us_date(first.when)}" if first.when else ""
    said = {
        "Communication": f"in a patient message{on}",
        "QuestionnaireResponse": f"on a questionnaire{on}",
        "DocumentReference": f"as recorded in a clinic note{on}",
        "DiagnosticReport": f"as recorded in a report{on}",
        "ServiceRequest": f"and a referral was ordered{on}",
        "Appointment": f"and an appointment was made{on}",
        "Encounter": f"at a visit{on}",
    }.get(first.reference.partition("/")[0], on.strip())
    summary = as_sentence(f"The patient asked for a second opinion {said}")
    return SPEC.finding(
        summary,
        evidence,
        facts=[Fact(kind="request", name="second opinion", when=first.when, reference=first.reference)],
        reviews=reviews_in_record(record, evaluation),
    )


SPEC = TriggerSpec(
    id="patient-request",
    label="Patient asks for a second opinion",
    short_label="patient asks for a second opinion",
    group="patient-request",
    urgency="routine",
    action="clinical-second-opinion",
    review="clinical",
    rationale=RATIONALE,
    sources=("Meyer et al., Am J Med 2015",),
    rule_source="patient request",
    question="The patient asked for a second opinion: please review the diagnosis and the treatment plan.",
    rule_data="fhirmaps/codes/requests.json (coded requests); smartapp/triggers/patient_request.py",
    evaluate=evaluate,
)
