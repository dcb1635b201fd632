"""What not-responding cannot decide: metastatic disease on a current line of treatment for long
enough that a response assessment is due, with no imaging, tumor marker, disease status or new
secondary cancer in the record since the line began."""

from __future__ import annotations

from datetime import date

from fhirmaps.record import CareActivity, PatientRecord
from smartapp.triggers import rules
from smartapp.triggers.common import Evaluation, antineoplastic_given, texts
from smartapp.triggers.extent import distant_disease
from smartapp.triggers.lines import current_line, regimen_name
from smartapp.wording import sentence, us_date

TRIGGER = "not-responding"
_ONGOING = frozenset({"active", "in-progress", "on-hold"})
_ASSESSING = frozenset({"tumor-marker", "disease-status", "deauville", "tumor-size"})


def still_given(line: list[CareActivity], evaluation: Evaluation) -> bool:
    """An order of the line is still active, or a dose was given or ordered recently."""
    recent = rules.value(TRIGGER, "still_given_days")
    for a in line:
        if a.status in _ONGOING and (a.end is None or a.end >= evaluation.as_of):
            return True
        latest = a.end or a.start
        if latest is not None and 0 <= (evaluation.as_of - latest).days <= recent:
            return True
    return False


def assessed_since(record: PatientRecord, evaluation: Evaluation, began: date) -> bool:
    """The record holds something dated after `began` that tells response: an imaging report, a
    tumor marker, a disease status, a measured tumor size, a Deauville score or a new secondary."""
    if any(r.when and began < r.when <= evaluation.as_of for r in texts(record, evaluation, "imaging")):
        return True
    if any(
        m.kind in _ASSESSING
        and m.when
        and began < m.when <= evaluation.as_of
        and m.status != "entered-in-error"
        for m in record.measurements
    ):
        return True
    return any(d.secondary and d.when and began < d.when <= evaluation.as_of for d in record.diagnoses)


def undecided(record: PatientRecord, evaluation: Evaluation) -> str | None:
    if not distant_disease(record, evaluation):
        return None  # adjuvant or local treatment: no measurable disease to restage
    line = current_line(antineoplastic_given(record, evaluation), evaluation)
    if line is None:
        return None
    began, actions = line
    if (evaluation.as_of - began).days < rules.value(TRIGGER, "response_due_days"):
        return None
    if not still_given(actions, evaluation) or assessed_since(record, evaluation, began):
        return None
    drugs = regimen_name([a.name for a in actions])
    return sentence(
        f"Response to {drugs} could not be assessed: no imaging report, tumor marker or disease status "
        f"is in the record since the treatment began on {us_date(began)}"
    )
