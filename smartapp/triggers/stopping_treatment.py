"""stopping-treatment: anticancer treatment stopped (toxicity, refusal, cost, no next line) or a move
to hospice / best supportive care / no further lines."""

from __future__ import annotations

import re
from datetime import date

from fhirmaps import codes
from fhirmaps.record import CareActivity, Mention, PatientRecord
from smartapp.findings import Evidence, Fact, Finding
from smartapp.triggers import rules
from smartapp.triggers.common import (
    Evaluation,
    antineoplastic_given,
    current_diagnoses,
    mentions,
    reviews_in_record,
    text_has,
)
from smartapp.triggers.spec import TriggerSpec
from smartapp.wording import calm, clause_around, drug_name, join, plain_name, sentence, us_date

RATIONALE = (
    "Stopping anticancer treatment, or declining it, is a decision point where a second opinion can confirm "
    "that no reasonable line, trial or supportive option was missed (mCODE treatment-termination reasons: "
    "toxicity, patient refusal, financial problems, no response)."
)
_REASON_WORDS = {
    "not_tolerated": "toxicity",
    "refusal": "patient refusal",
    "financial": "financial reasons",
    "other_stop": "treatment stopped",
}


def _reason(a: CareActivity) -> str:
    cfg = codes.load("treatments")
    values = {c.code for c in a.status_reason} | {c.code for c in a.reasons}
    for key, label in _REASON_WORDS.items():
        if values & set(cfg["termination"][key]):
            return label
    if values & set(cfg["termination"]["no_response"]):
        return "no response"
    if values & set(cfg["termination"]["completion"]):
        return ""
    text = f"{a.status_reason_text} {a.note}"
    for key in ("completion", "not_tolerated", "refusal", "financial", "no_response"):
        if text_has(text, cfg["termination_words"][key]) or any(
            w in text.lower() for w in cfg["termination_words"][key] if len(w) <= 7
        ):
            return "" if key == "completion" else _REASON_WORDS.get(key, "no response")
    return ""


def _decisive_clause(record: PatientRecord, notes: list[Mention]) -> str:
    """What the note says about stopping: a stop or hospice mention rather than "goals of care" itself."""
    decisive = [m for m in notes if m.key not in ("goals of care", "goals-of-care")]
    if decisive:
        m = decisive[0]
        start = max(m.raw.sentence.lower().find(m.raw.text.lower()), 0)
        return clause_around(m.raw.sentence, start, start + len(m.raw.text))
    report = record.report(notes[0].source.reference)
    text = report.text if report else notes[0].raw.sentence
    for line in re.split(r"(?<=[.;])\s+|\n", text):
        found = rules.pattern(SPEC.id, "goals_of_care_stop").search(line)
        if found and not rules.pattern(SPEC.id, "goals_of_care_heading").search(line[: found.start()]):
            return clause_around(line, found.start(), found.end())
    return clause_around(notes[0].raw.sentence, 0, len(notes[0].raw.text))


def _next_line(a: CareActivity, given: list[CareActivity]) -> bool:
    """Another systemic treatment started on or after this one stopped."""
    stop = a.end or a.start
    if stop is None:
        return False
    for other in given:
        began = other.start or other.end
        if (
            other is a
            or other.resource_type == "Procedure"
            or other.name.lower() == a.name.lower()
            or began is None
        ):
            continue
        if began >= stop and other.status in ("active", "completed", "in-progress"):
            return True
    return False


def _alternative_planned(a: CareActivity, record: PatientRecord) -> bool:
    """Another anticancer treatment chosen instead: planned, or begun on or after the declined one (a
    completed operation before it is the treatment the declined one was to follow, not an alternative)."""
    declined_on = a.when
    for other in record.activities:
        if other is a or not other.antineoplastic or other.name.lower() == a.name.lower() or _reason(other):
            continue
        if other.status in ("active", "draft", "on-hold", "in-progress", "booked"):
            return True
        if other.status == "completed" and (
            declined_on is None or (other.when is not None and other.when >= declined_on)
        ):
            return True
    return False


def evaluate(record: PatientRecord, evaluation: Evaluation) -> Finding | None:
    phrases: list[tuple[date | None, str]] = []
    evidence: list[Evidence] = []
    facts: list[Fact] = []
    given = antineoplastic_given(record, evaluation)
    window = rules.value(SPEC.id, "currency_days")
    latest_start = max((d for a in given if (d := a.start or a.end) is not None), default=None)

    def current(when: date | None) -> bool:
        """Recent, and not followed by further anticancer treatment."""
        if when is None:
            return True
        return (evaluation.as_of - when).days <= window and (latest_start is None or latest_start <= when)

    hospice_codes = set(codes.load("treatments")["hospice_snomed"]) - {"103735009"}
    hospice = [
        a
        for a in record.activities
        if a.status not in ("revoked", "entered-in-error", "cancelled")
        and {c.code for c in a.codes + a.categories} & hospice_codes
        and current(a.when)
    ]
    narrative = []
    completion = rules.pattern(SPEC.id, "completion_patterns")
    for m in mentions(record, evaluation, "STOPPING", kinds=("note",)):
        if not current(m.source.when) or completion.search(m.raw.sentence):
            continue
        if m.key in ("goals of care", "goals-of-care"):
            report = record.report(m.source.reference)
            if report is None or not rules.pattern(SPEC.id, "goals_of_care_stop").search(
                report.text.replace(m.raw.text, "")
            ):
                continue
        narrative.append(m)
    stops: dict[tuple[str, date | None], list[str]] = {}  # (reason, date) -> drug names, one phrase per group
    for a in record.activities:
        if not a.antineoplastic or a.status not in rules.value(SPEC.id, "stopped_statuses"):
            continue
        why = _reason(a)
        if not why or not current(
            a.end
        ):  # the stop date; an order's start date says nothing about when it stopped
            continue
        if why == "no response":
            if _next_line(a, given) or not (hospice or narrative):
                continue
        if why == "toxicity" and _next_line(a, given):
            continue
        if why == "patient refusal" and _alternative_planned(a, record):
            continue  # declining one operation/regimen in favor of another is not stopping treatment
        when = a.end or a.when
        stops.setdefault((why, when), []).append(drug_name(a.name) if a.name else "treatment")
        facts.append(
            Fact(
                kind="treatment",
                name=drug_name(a.name) if a.name else "treatment",
                status=a.status,
                value=why,
                when=when,
                reference=a.source.reference,
            )
        )
        evidence.append(
            Evidence.of(
                a.source, f"{a.name}: {a.status}; reason: {a.status_reason_text or a.reason_text or why}"
            )
        )
    for (why, when), names in stops.items():
        on = f" on {us_date(when)}" if when else ""
        what = join(list(dict.fromkeys(names)))
        phrases.append(
            (
                when,
                f"patient declined {what}{on}"
                if why == "patient refusal"
                else f"{what} stopped{on} for {why}",
            )
        )
    for a in hospice:
        phrases.append((a.when, f"hospice referral{f' on {us_date(a.when)}' if a.when else ''}"))
        facts.append(
            Fact(
                kind="plan",
                name=plain_name(a.name) or "hospice",
                status=a.status,
                when=a.when,
                reference=a.source.reference,
            )
        )
        evidence.append(Evidence.of(a.source))
    by_note: dict[str, list[Mention]] = {}
    for m in narrative:
        by_note.setdefault(m.source.reference, []).append(m)
        evidence.append(Evidence.of(m.source))
    for notes in by_note.values():
        first = notes[0]
        title = calm(first.source.title) or "clinic note"
        phrases.append(
            (
                first.source.when,
                f"{title}{f' {us_date(first.source.when)}' if first.source.when else ''}: "
                f"\u201c{_decisive_clause(record, notes)}\u201d",
            )
        )
    if not phrases or not current_diagnoses(record, evaluation):
        return None
    ordered = list(
        dict.fromkeys(p for _, p in sorted(phrases, key=lambda x: x[0] or evaluation.as_of, reverse=True))
    )
    summary = sentence(
        f"{'; '.join(ordered[:2])}; review the remaining options before anticancer treatment ends"
    )
    if len(summary) > 200:
        summary = sentence(f"{ordered[0]}; review the remaining options before anticancer treatment ends")
    return SPEC.finding(summary, evidence, facts=facts, reviews=reviews_in_record(record, evaluation))


SPEC = TriggerSpec(
    id="stopping-treatment",
    label="Stopping treatment under consideration",
    short_label="treatment stopping",
    group="disease-course",
    urgency="routine",
    action="clinical-second-opinion",
    review="clinical",
    rationale=RATIONALE,
    sources=("mCODE treatment termination reasons",),
    rule_source="treatment-stopping rules",
    question=(
        "Are there further treatment options, including clinical trials, "
        "before stopping anticancer treatment ({topic}), "
        "or do you agree with the move to supportive care?"
    ),
    rule_data="fhirmaps/codes/treatments.json (termination reasons, hospice codes)",
    evaluate=evaluate,
)
