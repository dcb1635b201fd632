"""major-treatment: irreversible or high-intensity treatment proposed or scheduled and not yet done."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cache

from fhirmaps import codes
from fhirmaps.read import age_on
from fhirmaps.record import CareActivity, PatientRecord, Source
from smartapp.findings import Evidence, Fact, Finding
from smartapp.triggers import rules
from smartapp.triggers.common import Evaluation, current_diagnoses, reviews_in_record, text_has, texts
from smartapp.triggers.spec import TriggerSpec
from smartapp.wording import first_fitting, join, plain_name, sentence, us_date

RATIONALE = (
    "A multidisciplinary second review before major cancer surgery changed the surgical plan in 52% of "
    "breast-cancer patients (Newman et al., Cancer 2006); Medicare Part B covers a second opinion before "
    "non-emergency surgery. "
    "Irreversible or high-intensity treatment should rest on a confirmed diagnosis and plan."
)
_OPEN_ACTIVITY = {"not-started", "scheduled", "in-progress", "on-hold", "", "active", "draft"}


def _is_planned(a: CareActivity) -> bool:
    if a.resource_type == "ServiceRequest":
        return a.status in ("draft", "active", "on-hold") and a.intent in (
            "proposal",
            "plan",
            "order",
            "original-order",
            "directive",
            "",
        )
    if a.resource_type == "CarePlan":
        return a.status in _OPEN_ACTIVITY and a.source.path != "CarePlan.category"
    if a.resource_type == "Procedure":
        return a.status == "preparation"
    if a.resource_type == "MedicationRequest":
        return a.status in ("draft", "active") and a.intent in ("proposal", "plan", "order", "original-order")
    if a.resource_type == "Appointment":
        return a.status in ("proposed", "pending", "booked", "waitlist")
    return False


@cache
def _minor_regex() -> re.Pattern[str]:
    minors = [
        m for m in codes.load("treatments")["minor_keywords"] if m not in ("diagnostic", "consultation")
    ]
    alternatives = "|".join(re.escape(m) for m in sorted(minors, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w])", re.I)


def _major_term(a: CareActivity, age: int | None) -> str:
    cfg = codes.load("treatments")
    values = {c.code for c in a.codes}
    text = f"{a.name} {a.note}"
    if values & set(cfg["major_snomed"]) or values & set(cfg["major_cpt"]):
        return a.name or next(iter(sorted(values)))
    if rules.pattern(SPEC.id, "minor_variants").search(text):
        return ""
    cleaned = _minor_regex().sub(" ", text)
    if a.resource_type == "MedicationRequest":
        return text_has(text, cfg["high_intensity_drugs"])
    term = text_has(cleaned, cfg["major_keywords"])
    if term:
        return term
    if (
        age is not None
        and age < 45
        and text_has(cleaned, ["hysterectomy"])
        and text_has(cleaned, ["salpingo-oophorectomy", "oophorectomy", "bso"])
    ):
        return "hysterectomy with bilateral salpingo-oophorectomy"
    if rules.pattern(SPEC.id, "radiotherapy_words").search(cleaned) and rules.pattern(
        SPEC.id, "curative_intent_words"
    ).search(cleaned):
        return "definitive radiotherapy"
    return ""


def scheduled_soon(record: PatientRecord, evaluation: Evaluation) -> bool:
    """A major treatment is scheduled within `expedite_within_days`: every finding of the patient is
    then expedite."""
    days: int = rules.value(SPEC.id, "expedite_within_days")
    return any(
        a.scheduled and evaluation.as_of <= a.scheduled <= evaluation.as_of + timedelta(days=days)
        for a, _ in planned_major(record, evaluation)
    )


def planned_major(record: PatientRecord, evaluation: Evaluation) -> list[tuple[CareActivity, str]]:
    # A cancer in remission or recorded as inactive still gives the plan a cancer context
    # (e.g. transplant in CR1).
    has_cancer = bool(current_diagnoses(record, evaluation) or record.excluded_diagnoses)
    age = age_on(record, evaluation.as_of)
    done_terms = {
        term
        for a in record.activities
        if a.resource_type == "Procedure" and a.status == "completed"
        for term in [_major_term(a, age)]
        if term
    }
    out = []
    preparing = rules.pattern(SPEC.id, "not_treatment_patterns")
    for a in record.activities:
        if not _is_planned(a) or preparing.search(a.name):
            continue
        term = _major_term(a, age)
        if not term or term in done_terms:
            continue
        context_text = f"{a.note} {a.status_reason_text}"
        benign = rules.pattern(SPEC.id, "benign_reasons").search(a.reason_text)
        if rules.pattern(SPEC.id, "declined").search(context_text) or (benign and not has_cancer):
            continue
        if not has_cancer and not rules.pattern(SPEC.id, "cancer_reason_words").search(a.reason_text):
            continue
        if a.scheduled and a.scheduled < evaluation.as_of and a.resource_type == "Appointment":
            continue
        out.append((a, term))
    return sorted(out, key=lambda x: (x[0].source.reference, x[0].source.path))


def planned_in_notes(record: PatientRecord, evaluation: Evaluation) -> list[tuple[Evidence, str]]:
    """Clinic notes that schedule a major treatment ("Plan: proceed with Whipple on 3/14"), recent and
    not hedged."""
    if not (current_diagnoses(record, evaluation) or record.excluded_diagnoses):
        return []
    age = age_on(record, evaluation.as_of)
    structured = {term for a, term in planned_major(record, evaluation)}
    found = []
    for report in texts(record, evaluation, "note"):
        if (
            report.when is None
            or (evaluation.as_of - report.when).days > rules.value(SPEC.id, "note_window_days")
            or report.author_is_patient
        ):
            continue
        for line in re.split(r"\n|(?<=[.;])\s+", report.text):
            if not rules.pattern(SPEC.id, "planning_words").search(line) or rules.pattern(
                SPEC.id, "not_planned_words"
            ).search(line):
                continue
            probe = CareActivity(
                source=Source(report.reference, "", line),
                resource_type="ServiceRequest",
                name=line,
                codes=(),
                status="active",
                intent="plan",
                status_reason=(),
                status_reason_text="",
                start=None,
                end=None,
                scheduled=None,
            )
            term = _major_term(probe, age)
            if term and term not in structured:
                found.append((Evidence.in_report(report, line.strip()), term))
    return found


def _plan_fact(a: CareActivity, term: str, evaluation: Evaluation) -> Fact:
    when = a.scheduled or a.start
    return Fact(
        kind="plan",
        name=plain_name(a.name or term),
        when=when,
        status=a.status,
        reference=a.source.reference,
        days_from_evaluation=(when - evaluation.as_of).days if when else None,
    )


def _plan_phrase(fact: Fact) -> str:
    days = fact.days_from_evaluation
    if fact.when is None or days is None:
        return f"{fact.name} is planned"
    if days == 0:
        return f"{fact.name} is scheduled for today, {us_date(fact.when)}"
    if days > 0:
        return f"{fact.name} is scheduled for {us_date(fact.when)}, in {days} day{'s' if days != 1 else ''}"
    return f"{fact.name} was planned for {us_date(fact.when)} and is not recorded as done"


def evaluate(record: PatientRecord, evaluation: Evaluation) -> Finding | None:
    planned = planned_major(record, evaluation)
    noted = planned_in_notes(record, evaluation)
    reviews = reviews_in_record(record, evaluation)
    if not planned and noted:
        terms = list(dict.fromkeys(term for _, term in noted))
        summary = sentence(
            f"Clinic note plans {join(terms)}; "
            "confirm the diagnosis and plan before an irreversible treatment"
        )
        facts = [Fact(kind="plan", name=term, when=e.when, reference=e.reference) for e, term in noted]
        return SPEC.finding(summary, [e for e, _ in noted], facts=facts, reviews=reviews)
    if not planned:
        return None
    # The operation or procedure leads; a conditioning drug or an appointment slot is part of it.
    priority = {"ServiceRequest": 0, "Procedure": 0, "CarePlan": 1, "MedicationRequest": 2, "Appointment": 3}
    ordered = sorted(
        planned,
        key=lambda p: (priority.get(p[0].resource_type, 2), p[0].scheduled or p[0].start or evaluation.as_of),
    )
    facts = [_plan_fact(a, term, evaluation) for a, term in ordered]
    plan = _plan_phrase(facts[0])
    summary = first_fitting(f"{plan}; confirm the diagnosis and plan before an irreversible treatment", plan)
    return SPEC.finding(summary, [Evidence.of(a.source) for a, _ in planned], facts=facts, reviews=reviews)


SPEC = TriggerSpec(
    id="major-treatment",
    label="Major or irreversible treatment proposed",
    short_label="irreversible treatment planned",
    group="treatment-plan",
    urgency="routine",
    action="clinical-second-opinion",
    review="clinical",
    rationale=RATIONALE,
    sources=("Newman et al., Cancer 2006", "Medicare Part B second surgical opinion"),
    rule_source="irreversible-treatment list",
    question=(
        "Is the proposed treatment ({topic}) the best option, "
        "or are less radical approaches or clinical trials appropriate?"
    ),
    rule_data="fhirmaps/codes/treatments.json (major procedures, high-intensity drugs)",
    evaluate=evaluate,
)
