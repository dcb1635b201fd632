"""patient-request: the patient asks for another opinion (coded order/encounter, patient message, questionnaire, note)."""

from __future__ import annotations

import re

from fhirmaps.record import PatientRecord
from smartapp.findings import Evidence, Finding
from smartapp.triggers.common import Context, mentions

TRIGGER = "patient-request"
RATIONALE = (
    "Patients may always ask for a second opinion; no clinical justification is needed. In a national second-opinion "
    "programme the diagnosis changed in 14.8% and the treatment in 37.4% of cases (Meyer et al., Am J Med 2015)."
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
    return Finding(TRIGGER, "The patient has asked for a second opinion.", RATIONALE, evidence)
