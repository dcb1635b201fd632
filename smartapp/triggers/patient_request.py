"""patient-request: the patient asks for another opinion (coded order/encounter, patient message, questionnaire, note)."""

from __future__ import annotations

import re
from datetime import date

from fhirmaps.record import PatientRecord
from smartapp.findings import Evidence, Fact, Finding
from smartapp.triggers.common import Context, mentions, reviews_in_record
from smartapp.triggers.spec import TriggerSpec
from smartapp.wording import sentence as as_sentence
from smartapp.wording import us_date

RATIONALE = (
    "Patients may always ask for a second opinion; no clinical justification is needed. In a national second-opinion "
    "program the diagnosis changed in 14.8% and the treatment in 37.4% of cases (Meyer et al., Am J Med 2015)."
)
_ASKS = re.compile(r"\b(patient|pt|she|he|they|family|daughter|son|husband|wife|i)\b[^.]{0,40}\b(request|would like|wants?|wish|ask|seek|interested in|desire|"
                   r"prefer|plan(?:s|ning)? to (?:get|obtain|seek))", re.I)
_ASKED_BY = re.compile(r"\b(request(?:ed|s)?|ask(?:ed|s)?|want(?:ed|s)?|desired)\b[^.]{0,25}\bby (?:the )?(patient|pt|family)\b|"
                       r"\bat (?:the )?(patient|family)'?s? request\b|\bpatient[- ]initiated\b", re.I)
_NOT_PATIENT = re.compile(r"declin|offered|not interested|does not want|doesn't want|no need|intradepartmental|tumou?r board|second pathologist", re.I)
_NO_ANSWER = re.compile(r":\s*(false|no)\b", re.I)


def evaluate(record: PatientRecord, ctx: Context) -> Finding | None:
    evidence = [Evidence.of(s) for s in record.requests]
    for a in record.actions:
        if a.resource_type in ("ServiceRequest", "Appointment", "Encounter") and a.status not in ("revoked", "entered-in-error", "cancelled"):
            text = f"{a.name} {a.reason_text}"
            by_clinician = a.requester in ("Practitioner", "PractitionerRole", "Organization", "CareTeam")
            if by_clinician and not (_ASKS.search(f"{text} {a.note}") or _ASKED_BY.search(f"{text} {a.note}")):
                continue  # a clinician's referral is a review under way (listed on the findings), not a request
            if re.search(r"second (?:medical )?opinion", text, re.I) and not _NOT_PATIENT.search(f"{text} {a.note}"):
                evidence.append(Evidence.of(a.source, text.strip()))
    for m in mentions(record, ctx, "REQUEST", kinds=("note",), asserted=False):
        if m.raw.negated:
            continue
        report = record.report(m.source.reference)
        sentence = m.raw.sentence
        if report is not None and report.author_is_patient:
            if not _NO_ANSWER.search(sentence):
                evidence.append(Evidence.of(m.source))
            continue
        if (_ASKS.search(sentence) or _ASKED_BY.search(sentence)) and not _NOT_PATIENT.search(sentence):
            evidence.append(Evidence.of(m.source))
    if not evidence:
        return None
    first = max(evidence, key=lambda e: e.when or date.min)
    on = f" on {us_date(first.when)}" if first.when else ""
    said = {"Communication": f"in a patient message{on}", "QuestionnaireResponse": f"on a questionnaire{on}",
            "DocumentReference": f"as recorded in a clinic note{on}", "DiagnosticReport": f"as recorded in a report{on}",
            "ServiceRequest": f"and a referral was ordered{on}", "Appointment": f"and an appointment was made{on}",
            "Encounter": f"at a visit{on}"}.get(first.reference.partition("/")[0], on.strip())
    summary = as_sentence(f"The patient asked for a second opinion {said}")
    return SPEC.finding(summary, evidence, facts=[Fact(kind="request", name="second opinion", when=first.when,
                                                       reference=first.reference)],
                        reviews=reviews_in_record(record, ctx).items)


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
