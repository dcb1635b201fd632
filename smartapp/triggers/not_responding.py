"""not-responding: progression after treatment started (disease status, imaging, new metastasis,
tumour markers, stop for no response, recurrence/relapse)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from fhirmaps import codes
from fhirmaps.record import PatientRecord
from smartapp.findings import Evidence, Fact, Finding
from smartapp.triggers import rules
from smartapp.triggers.common import (
    Evaluation,
    antineoplastic_given,
    current_diagnoses,
    diagnosis_fact,
    diagnostic_sections,
    measurement_fact,
    reviews_in_record,
    texts,
)
from smartapp.triggers.lines import line_before, regimen_name
from smartapp.triggers.markers import marker_progression
from smartapp.triggers.response_unassessed import undecided
from smartapp.triggers.sizes import size_progression, stated_growth
from smartapp.triggers.spec import TriggerSpec
from smartapp.wording import calm, drug_name, mid_sentence, plain_name, sentence, us_date

RATIONALE = (
    "Progression on treatment (RECIST 1.1 / iRECIST, PCWG3 PSA, GCIG CA-125, mCODE disease status "
    "'worsened') is the point at which the next line, clinical trials and the original diagnosis "
    "deserve a fresh expert look."
)
# Size words count only when the sentence is about tumour (lesion, mass, node, metastasis...).
_WEAK = {
    "interval increase",
    "interval enlargement",
    "increased in size",
    "has increased in size",
    "enlarging",
    "increasing size",
    "new lesion",
    "new lesions",
    "progressed",
    "progression",
    "new enhancing",
}
_IMAGING_SECTIONS = frozenset({"diagnosis", "body", "comment", "addendum", "findings"})


def tumor_clause(sentence: str, phrase: str) -> str | None:
    """A weak progression word with the tumor it is about, as the report says it: "progression of
    osseous metastatic disease", "enlarging liver lesion" (never a cut word); None when the tumor
    word does not follow the phrase closely."""
    start = sentence.lower().find(phrase.lower())
    if start < 0:
        return None
    rest = sentence[start + len(phrase) :]
    tumor = rules.pattern(SPEC.id, "tumor_words").search(rest)
    if tumor is None or tumor.start() > 60 or re.search(r"[.;:]", rest[: tumor.start()]):
        return None
    end = tumor.end()
    while end < len(rest) and rest[end].isalpha():
        end += 1
    following = re.match(r"\s+([A-Za-z]+)", rest[end:])  # "metastatic disease", "liver lesion"
    if following and rules.pattern(SPEC.id, "tumor_words").match(following.group(1)):
        end += following.end()
    return mid_sentence(calm(sentence[start : start + len(phrase) + end]))


def pseudoprogression_raised(text: str) -> bool:
    """The report raises pseudoprogression or flare as possible: a sentence names it and does not
    rule it out ("so flare is not a consideration" rules it out; "cannot be excluded" does not)."""
    named = rules.pattern(SPEC.id, "pseudoprogression")
    denied = rules.pattern(SPEC.id, "pseudoprogression_denied")
    open_question = rules.pattern(SPEC.id, "pseudoprogression_possible")
    for part in re.split(r"(?<=[.;!?])\s+|\n+", text):
        if named.search(part) and (open_question.search(part) or not denied.search(part)):
            return True
    return False


def _responded_after(record: PatientRecord, evaluation: Evaluation, when: date | None) -> bool:
    """A later imaging response or an improved disease status supersedes an earlier progression."""
    if when is None:
        return False
    improved = set(codes.load("urgent")["improved_status"]["codes"])
    if any(
        m.kind == "disease-status"
        and m.when
        and when < m.when <= evaluation.as_of
        and {c.code for c in m.value_codes} & improved
        for m in record.measurements
    ):
        return True
    # Stable disease or a response on a later scan: the line after the progression is working.
    sections = diagnostic_sections() | _IMAGING_SECTIONS
    return any(
        r.when
        and when < r.when
        and any(m.label == "RESPONSE" and m.raw.asserted and m.section in sections for m in r.mentions)
        and not any(
            m.label == "PROGRESSION"
            and m.raw.asserted
            and not m.raw.uncertain
            and m.section in sections
            and not rules.pattern(SPEC.id, "progression_traps").search(m.raw.sentence)
            for m in r.mentions
        )
        for r in texts(record, evaluation, "imaging")
    )


def _imaging_progression(
    record: PatientRecord, evaluation: Evaluation, start: date, current: Callable[[date | None], bool]
) -> list[tuple[date, str, list[Evidence]]]:
    """Current imaging after `start` that states progression in words, or else a growth it measured:
    at most one (date, phrase, evidence) per report, in report order."""
    found: list[tuple[date, str, list[Evidence]]] = []
    for r in texts(record, evaluation, "imaging"):
        if (
            not r.when
            or r.when <= start
            or not current(r.when)
            or rules.pattern(SPEC.id, "baseline_scan").search(r.title)
            or pseudoprogression_raised(r.text)
        ):
            continue
        has_impression = any(m.section == "diagnosis" for m in r.mentions) or "impression" in r.text.lower()
        sections = diagnostic_sections() if has_impression else _IMAGING_SECTIONS
        for m in r.mentions:
            if m.label != "PROGRESSION" or m.section not in sections or not m.raw.asserted or m.raw.uncertain:
                continue
            same = [o for o in r.mentions if o.raw.sentence == m.raw.sentence and o.label == "RESPONSE"]
            if rules.pattern(SPEC.id, "progression_traps").search(m.raw.sentence) or same:
                continue
            said = mid_sentence(calm(m.raw.text))
            if m.key in _WEAK:
                tumor = rules.pattern(SPEC.id, "tumor_words").search(m.raw.sentence.replace(m.raw.text, ""))
                if not tumor:
                    continue  # "enlarging pleural effusion" is not tumor progression
                stated = stated_growth(r)
                if stated is not None:  # the measured sizes say more than "enlarging"
                    found.append(
                        (
                            r.when,
                            f"{calm(r.title) or 'imaging'} {us_date(r.when)}: {stated[0]}",
                            [stated[1], Evidence.of(m.source)],
                        )
                    )
                    break
                said = tumor_clause(m.raw.sentence, m.raw.text) or said
            found.append(
                (
                    r.when,
                    f"{calm(r.title) or 'imaging'} {us_date(r.when)} shows {said}",
                    [Evidence.of(m.source)],
                )
            )
            break
        else:
            # No progression stated in words: a size comparison the report states still counts.
            stated = stated_growth(r)
            if stated is not None:
                found.append(
                    (r.when, f"{calm(r.title) or 'imaging'} {us_date(r.when)}: {stated[0]}", [stated[1]])
                )
    return found


def _summary(regimen: list[str], phrases: list[str]) -> str:
    """'Progression on <regimen>: <up to three signals>', shortened until it fits in 200 characters."""
    on = f" on {regimen_name(regimen)}" if regimen else ""
    summary = sentence(f"Progression{on}: {'; '.join(phrases[:3])}")
    if len(summary) > 200:
        summary = sentence(f"Progression{on}: {phrases[0]}")
    if len(summary) > 200:
        summary = sentence(f"Progression: {phrases[0]}")
    return summary


def evaluate(record: PatientRecord, evaluation: Evaluation) -> Finding | None:
    given = antineoplastic_given(record, evaluation)
    signals: list[tuple[date | None, str]] = []
    evidence: list[Evidence] = []
    facts: list[Fact] = []
    cfg = codes.load("observations")
    window = rules.value(SPEC.id, "currency_days")

    def current(when: date | None) -> bool:
        return when is None or (evaluation.as_of - when).days <= window

    stopped = [
        a
        for a in record.activities
        if {c.code for c in a.status_reason} & set(codes.load("treatments")["termination"]["no_response"])
        and current(a.end)
    ]
    if stopped:
        # The stop date when recorded, else the order's date (a later response still supersedes it).
        when = max((day for a in stopped if (day := a.end or a.when) is not None), default=None)
        signals.append((when, f"{regimen_name([a.name for a in stopped])} stopped for progression"))
        evidence += [
            Evidence.of(a.source, f"{a.name}: {a.status}; reason: {a.status_reason_text or 'no response'}")
            for a in stopped
        ]
    for d in current_diagnoses(record, evaluation):
        if d.clinical_status in ("recurrence", "relapse"):  # the status is as of now, whatever the onset date
            signals.append(
                (d.when, f"{d.entity.label if d.entity else 'cancer'} recorded as {d.clinical_status}")
            )
            evidence.append(Evidence.of(d.source, f"{d.source.text} (clinical status: {d.clinical_status})"))
            facts.append(
                Fact(
                    kind="status",
                    name="clinical status",
                    value=d.clinical_status or "",
                    when=d.when,
                    reference=d.source.reference,
                )
            )
    if given:
        start = min(a.start or a.end or evaluation.as_of for a in given)
        for status in record.measurements:
            if (
                status.kind == "disease-status"
                and status.when
                and start < status.when <= evaluation.as_of
                and current(status.when)
                and {c.code for c in status.value_codes} & set(cfg["disease_status_worse"])
            ):
                signals.append((status.when, f"disease status worse on {us_date(status.when)}"))
                evidence.append(Evidence.of(status.source))
                facts.append(measurement_fact(status))
        for score in record.measurements:
            if (
                score.kind == "deauville"
                and score.value_number is not None
                and score.when
                and start < score.when <= evaluation.as_of
                and current(score.when)
                and score.value_number >= rules.value(SPEC.id, "deauville_inadequate")
            ):
                signals.append((score.when, f"Deauville {score.value_number:g} on PET {us_date(score.when)}"))
                evidence.append(Evidence.of(score.source))
                facts.append(measurement_fact(score))
        for when, phrase, ev in _imaging_progression(record, evaluation, start, current):
            signals.append((when, phrase))
            evidence += ev
        for d in record.diagnoses:
            if (
                d.secondary
                and d.origin == "condition"
                and d.when
                and start < d.when <= evaluation.as_of
                and current(d.when)
            ):
                signals.append(
                    (
                        d.when,
                        f"new {mid_sentence(plain_name(d.source.text.split(' [')[0]))} on {us_date(d.when)}",
                    )
                )
                evidence.append(Evidence.of(d.source))
                facts.append(diagnosis_fact(d))
        prostatectomy = next(
            (
                a.start
                for a in given
                if a.resource_type == "Procedure"
                and rules.pattern(SPEC.id, "prostatectomy_names").search(a.name)
            ),
            None,
        )
        radiotherapy = next(
            (a.start for a in given if rules.pattern(SPEC.id, "radiotherapy_names").search(a.name)), None
        )
        for when, phrase, ev in size_progression(record, evaluation, start):
            if current(when):
                signals.append((when, phrase))
                evidence += ev
        for reason, ev in marker_progression(record, evaluation, start, prostatectomy, radiotherapy):
            latest = max((e.when for e in ev if e.when), default=None)
            if current(latest):
                signals.append((latest, reason))
                evidence += ev
    signals = [s for s in signals if not _responded_after(record, evaluation, s[0])]
    if not signals:
        return None
    # Most recent first: the decisive fact is what is happening now.
    ordered = sorted(signals, key=lambda s: s[0] or evaluation.as_of, reverse=True)
    phrases = list(dict.fromkeys(p for _, p in ordered))
    latest = next((when for when, _ in ordered if when is not None), None)
    regimen = [a.name for a in stopped] or (line_before(given, latest, evaluation) if given else [])
    facts += [Fact(kind="treatment", name=drug_name(name)) for name in regimen]
    # The order of each drug of that regimen, after the signals (the decisive facts come first).
    for name in dict.fromkeys(drug_name(n) for n in regimen):
        order = sorted(
            (a for a in given if drug_name(a.name) == name),
            key=lambda a: (a.resource_type != "MedicationRequest", a.start or evaluation.as_of),
        )
        if order:
            evidence.append(Evidence.of(order[0].source))
    return SPEC.finding(
        _summary(regimen, phrases), evidence, facts=facts, reviews=reviews_in_record(record, evaluation)
    )


SPEC = TriggerSpec(
    id="not-responding",
    label="Disease not responding to treatment",
    short_label="disease not responding",
    group="disease-course",
    urgency="expedite",
    action="clinical-second-opinion",
    review="clinical",
    rationale=RATIONALE,
    sources=("RECIST 1.1 / iRECIST", "PCWG3", "GCIG CA-125 criteria", "mCODE disease status"),
    rule_source="RECIST/PCWG3/GCIG progression rules",
    question=(
        "The disease is progressing on current treatment ({topic}): "
        "what next line of treatment or clinical trial do you recommend?"
    ),
    rule_data=(
        "fhirmaps/codes/observations.json (disease status, tumor markers); smartapp/triggers/markers.py"
    ),
    evaluate=evaluate,
    undecided=undecided,
)
