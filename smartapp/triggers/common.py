"""Shared helpers for trigger rules: current diagnoses, treatment dates, narrative search, evidence."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any, TypeVar

from fhirmaps import codes
from fhirmaps.folded import FoldedPattern
from fhirmaps.record import (
    CareActivity,
    ClinicalText,
    Diagnosis,
    Measurement,
    Mention,
    PatientRecord,
    TextKind,
)
from smartapp.findings import Evidence, Fact, Review
from smartapp.triggers import rules

T = TypeVar("T")

GIVEN_MED_STATUSES = {"active", "completed", "stopped", "in-progress", "on-hold", "intended"}
DEAD_STATUSES = {"entered-in-error", "cancelled", "revoked", "not-done", "rejected"}
PLANNED_ORDER_STATUSES = {"draft", "active", "on-hold", ""}
PLANNED_INTENTS = {
    "proposal",
    "plan",
    "order",
    "original-order",
    "directive",
    "instance-order",
    "filler-order",
    "",
}


@dataclass(frozen=True)
class Evaluation:
    as_of: date
    rare_definition: str = "rarecare"
    # Facts several triggers ask of one record in one evaluation (reviews under way), computed once.
    memo: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def once(self, fact: str, record: PatientRecord, compute: Callable[[PatientRecord, Evaluation], T]) -> T:
        """`compute(record, self)`, computed on the first ask for this record in this evaluation."""
        key = f"{fact}:{record.patient}"
        if key not in self.memo:
            self.memo[key] = compute(record, self)
        found: T = self.memo[key]
        return found


def not_future(when: date | None, evaluation: Evaluation) -> bool:
    return when is None or when <= evaluation.as_of


def current_diagnoses(record: PatientRecord, evaluation: Evaluation) -> list[Diagnosis]:
    """Current cancer diagnoses (already filtered for history/refuted/resolved) known by as_of, sorted."""
    found = [d for d in record.diagnoses if not_future(d.when, evaluation)]
    return sorted(found, key=lambda d: (d.source.reference, d.source.path, d.source.text))


UNCONFIRMED = frozenset({"provisional", "differential", "unconfirmed"})


def confident(diagnoses: Iterable[Diagnosis]) -> list[Diagnosis]:
    """Diagnoses stated without doubt: not hedged in the report, not a provisional or differential
    Condition."""
    return [d for d in diagnoses if not d.uncertain and d.verification_status not in UNCONFIRMED]


def has_entity(record: PatientRecord, evaluation: Evaluation, *ids: str, organ: str = "") -> list[Diagnosis]:
    out = []
    for d in current_diagnoses(record, evaluation):
        if d.entity and (d.entity.id in ids or (organ and d.entity.organ == organ)):
            out.append(d)
    return out


def icd10_of(d: Diagnosis) -> str:
    return next((c.code for c in d.codes if c.short_system == "icd10"), "")


def has_icd10(record: PatientRecord, evaluation: Evaluation, *prefixes: str) -> list[Diagnosis]:
    return [
        d
        for d in current_diagnoses(record, evaluation)
        if icd10_of(d) and codes.has_prefix(icd10_of(d), list(prefixes))
    ]


def antineoplastic_given(record: PatientRecord, evaluation: Evaluation) -> list[CareActivity]:
    """Antineoplastic treatment actually started by as_of (not merely proposed)."""
    out = []
    for a in record.activities:
        if not a.antineoplastic or a.status in DEAD_STATUSES:
            continue
        when = a.start or a.end
        if when is None or when > evaluation.as_of:
            continue
        if a.resource_type == "MedicationRequest" and (
            a.intent in ("proposal", "plan") or a.status == "draft"
        ):
            continue
        if a.resource_type == "Procedure" and a.status not in ("completed", "in-progress"):
            continue
        if a.resource_type in ("ServiceRequest", "CarePlan", "Appointment", "Encounter"):
            continue
        if a.resource_type == "MedicationStatement" and a.status in ("not-taken", "intended"):
            continue
        out.append(a)
    return sorted(out, key=lambda a: (a.start or a.end or evaluation.as_of, a.source.reference))


def first_treatment(record: PatientRecord, evaluation: Evaluation) -> CareActivity | None:
    given = antineoplastic_given(record, evaluation)
    return given[0] if given else None


def text_has(text: str, terms: Iterable[str]) -> str:
    """The first listed term found in text (word-bounded, case-insensitive), or ""."""
    ordered = tuple(terms)
    found = {m.group(1).lower() for m in _terms_regex(ordered).finditer(text)}
    if not found:
        return ""
    return next((t for t in ordered if t.lower().strip() in found), "")


@cache
def _terms_regex(terms: tuple[str, ...]) -> FoldedPattern:
    alternatives = "|".join(re.escape(t.lower().strip()) for t in sorted(terms, key=len, reverse=True))
    return FoldedPattern(rf"(?<![\w-])({alternatives})(?![\w])")


def texts(record: PatientRecord, evaluation: Evaluation, *kinds: TextKind) -> list[ClinicalText]:
    return [
        r
        for r in record.texts
        if (not kinds or r.kind in kinds)
        and not_future(r.when, evaluation)
        and r.status != "entered-in-error"
    ]


def mentions(
    record: PatientRecord,
    evaluation: Evaluation,
    *labels: str,
    kinds: tuple[TextKind, ...] = (),
    sections: Iterable[str] | None = None,
    asserted: bool = True,
) -> list[Mention]:
    allowed = set(sections) if sections is not None else None
    out = []
    for r in texts(record, evaluation, *kinds):
        for m in r.mentions:
            if m.section == "family":
                continue  # a family-history section is about relatives, whatever ConText makes of a sentence
            if (
                m.label in labels
                and (allowed is None or m.section in allowed)
                and (not asserted or m.raw.asserted)
            ):
                out.append(m)
    return out


def diagnostic_sections() -> frozenset[str]:
    return codes.strings("reports", "diagnostic_sections")


def evidence_for(items: Iterable[Diagnosis | Mention | CareActivity]) -> list[Evidence]:
    return [Evidence.of(i.source) for i in items]


def all_text(record: PatientRecord, evaluation: Evaluation, *kinds: TextKind) -> str:
    return "\n".join(r.text for r in texts(record, evaluation, *kinds))


@dataclass(frozen=True)
class Reviews:
    """Reviews, consults and tests already requested or done, and the notes that record them."""

    items: list[Review]
    notes: frozenset[str]  # references of tumor-board / consensus notes (never evidence for a referral)


_OPEN_OR_DONE = {
    "active",
    "completed",
    "on-hold",
    "draft",
    "in-progress",
    "booked",
    "arrived",
    "fulfilled",
    "finished",
}


def reviews_in_record(record: PatientRecord, evaluation: Evaluation) -> Reviews:
    return evaluation.once("reviews", record, _reviews)


def _reviews(record: PatientRecord, evaluation: Evaluation) -> Reviews:
    window = rules.value("common", "review_window_days")
    requests = rules.value("common", "review_request_terms")
    tests = rules.value("common", "ordered_test_terms")
    items: list[Review] = []
    for a in record.activities:
        when = a.when
        if (
            a.resource_type not in ("ServiceRequest", "Appointment", "Encounter")
            or a.status not in _OPEN_OR_DONE
        ):
            continue
        if when is not None and (evaluation.as_of - when).days > window:
            continue  # older than the window; planned ones (in the future) count
        if (
            a.source.reference.startswith("ServiceRequest/")
            and text_has(a.name, tests)
            and not text_has(a.name, requests)
        ):
            items.append(
                Review(what=f"{a.name} ordered", status=a.status, when=when, reference=a.source.reference)
            )
        elif text_has(f"{a.name} {a.reason_text}", requests):
            items.append(
                Review(
                    what=a.name or "Consultation", status=a.status, when=when, reference=a.source.reference
                )
            )
    notes: set[str] = set()
    for r in texts(record, evaluation, "note"):
        if r.author_is_patient or (r.when is not None and (evaluation.as_of - r.when).days > window):
            continue
        if text_has(r.title, rules.value("common", "review_note_terms")) or text_has(
            r.text[:200], rules.value("common", "review_note_terms")
        ):
            notes.add(r.reference)
            items.append(
                Review(
                    what=r.title or "Tumor board review", status="done", when=r.when, reference=r.reference
                )
            )
    items.sort(key=lambda i: (i.when or evaluation.as_of, i.reference))
    return Reviews(items, frozenset(notes))


def diagnosis_fact(d: Diagnosis, name: str = "") -> Fact:
    code = next((c for c in d.codes), None)
    label = name or (d.entity.label if d.entity else d.source.text)
    return Fact(
        kind="diagnosis",
        name=label[:1].upper() + label[1:],
        value=d.morphology or "",
        code=f"{code.system}|{code.code}" if code else "",
        when=d.when,
        status=d.verification_status or "",
        reference=d.source.reference,
    )


def measurement_fact(m: Measurement) -> Fact:
    code = next((c for c in m.codes), None)
    return Fact(
        kind="measurement",
        name=m.name,
        value=f"{m.value_text} {m.unit}".strip() if m.value_text else "",
        number=m.value_number,
        unit=m.unit,
        code=f"{code.system}|{code.code}" if code else "",
        when=m.when,
        status=m.status,
        reference=m.source.reference,
    )
