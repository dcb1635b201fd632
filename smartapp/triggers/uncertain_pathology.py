"""uncertain-pathology: hedged or borderline pathology diagnoses, provisional diagnoses, uncertain
behaviour codes, preliminary reports."""

from __future__ import annotations

from datetime import timedelta

from fhirmaps.diagnoses import is_uncertain_behavior_icd10
from fhirmaps.record import ClinicalText, Mention, PatientRecord
from smartapp.findings import Evidence, Fact, Finding
from smartapp.triggers import rules
from smartapp.triggers.common import (
    Evaluation,
    current_diagnoses,
    diagnosis_fact,
    diagnostic_sections,
    icd10_of,
    reviews_in_record,
    texts,
)
from smartapp.triggers.spec import TriggerSpec
from smartapp.wording import calm, clause_around, distinct, first_fitting, mid_sentence, us_date

RATIONALE = (
    "Hedged pathology wording is read with widely varying certainty (e.g. 'cannot rule out' ~48% perceived "
    "certainty; Lindley et al., Pathol Res Pract 2014), and borderline or provisional diagnoses change "
    "management; subspecialty review of outside pathology found 25% discrepancies, 6.2% major "
    "(MD Anderson, J Oncol Pract 2014)."
)
# Sentences about predictive biomarkers (HER2 FISH pending, MMR equivocal) are biomarker work-up, not
# diagnostic doubt.
# /1 codes for entities managed as definite diagnoses (GIST, thymoma, LCH, desmoid, IMT, PEComa,
# atypical meningioma).
_BEHAVIOUR_WHITELIST = {"gist", "thymic", "desmoid", "imt", "pecoma"}
_WHITELIST_MORPH = ("9752", "9751", "9539", "8936", "8935", "8580", "8821", "8825")


def _hedge_counts(m: Mention, report_mentions: list[Mention]) -> bool:
    sentence = m.raw.sentence
    if m.raw.negated or m.raw.family or m.raw.historical:
        return False
    if (
        m.key in ("equivocal", "indeterminate") and rules.pattern(SPEC.id, "biomarker_words").search(sentence)
    ) or rules.pattern(SPEC.id, "predictive_markers").search(sentence):
        return False  # biomarker equivocality belongs to incomplete-biomarker
    same = [o for o in report_mentions if o.raw.sentence == sentence]
    if any(
        o.label in ("BENIGN_ATYPIA", "NONSPECIFIC_LOCATION")
        and o.raw.start <= m.raw.start < o.raw.start + len(o.raw.text)
        for o in same
    ):
        return False
    if rules.pattern(SPEC.id, "paired_hedges").match(m.key.split()[0]):
        cancers = [o for o in same if o.label == "CANCER" and not o.raw.negated]
        if len(cancers) < 2:
            start = sentence.lower().find(m.raw.text.lower())
            before, after = sentence[: max(start, 0)], sentence[max(start, 0) + len(m.raw.text) :]
            if not (
                rules.pattern(SPEC.id, "neoplastic_words").search(before)
                and rules.pattern(SPEC.id, "neoplastic_words").search(after)
            ) and not m.key.startswith("favo"):
                return False
        return True
    if m.key.startswith("atypical"):
        return True
    return bool(rules.pattern(SPEC.id, "neoplastic_words").search(sentence)) or any(
        o.label == "CANCER" for o in same
    )


def _superseded(report: ClinicalText, later: list[ClinicalText]) -> bool:
    """An old hedged report followed >6 months later by a final report with a confident cancer diagnosis."""
    if report.when is None:
        return False
    for other in later:
        if (
            other.when
            and other.when > report.when + timedelta(days=rules.value(SPEC.id, "superseded_after_days"))
            and other.status in ("final", "amended", "corrected", "appended")
        ):
            confident_dx = [
                m
                for m in other.mentions
                if m.label == "CANCER"
                and m.raw.asserted
                and not m.raw.uncertain
                and m.section in diagnostic_sections()
            ]
            hedges = [
                m
                for m in other.mentions
                if m.label in ("HEDGE", "BORDERLINE") and m.section in diagnostic_sections()
            ]
            if confident_dx and not hedges:
                return True
    return False


def _phrase(m: Mention) -> str:
    """The clause that holds the hedge ("lymphoma cannot be excluded"), without parentheses."""
    sentence = m.raw.sentence
    start = max(sentence.lower().find(m.raw.text.lower()), 0)
    return clause_around(sentence, start, start + len(m.raw.text))


def evaluate(record: PatientRecord, evaluation: Evaluation) -> Finding | None:
    evidence: list[Evidence] = []
    facts: list[Fact] = []
    phrases: list[str] = []  # one per reason, for the summary
    shorter: list[str] = []  # one quote per report, when two do not fit
    pathology = sorted(
        texts(record, evaluation, "pathology"), key=lambda r: (r.when or evaluation.as_of, r.reference)
    )
    sections = diagnostic_sections()
    done = reviews_in_record(record, evaluation)
    for report in pathology:
        if _superseded(report, pathology) or report.reference in done.notes:
            continue
        quotes = []
        for m in report.mentions:
            if m.section not in sections:
                continue
            counts = (m.label == "HEDGE" and _hedge_counts(m, report.mentions)) or (
                m.label == "BORDERLINE" and not m.raw.negated and not m.raw.historical and not m.raw.family
            )
            if counts:
                quotes.append(_phrase(m))
                facts.append(
                    Fact(
                        kind="statement",
                        name="borderline entity" if m.label == "BORDERLINE" else "hedged diagnosis",
                        value=quotes[-1],
                        when=report.when,
                        reference=report.reference,
                    )
                )
                evidence.append(Evidence.of(m.source))
        if quotes:
            where = (
                f"{calm(report.title) or 'pathology report'} {us_date(report.when) if report.when else ''}"
            ).strip()
            kept = distinct(quotes) or quotes[:1]  # quotes without words (hostile text) are still quotes
            phrases.append(" and ".join(f"\u201c{q}\u201d" for q in kept[:2]) + f" on {where}")
            shorter.append(f"\u201c{kept[0]}\u201d on {where}")
    finals = [r for r in pathology if r.status in ("final", "amended", "corrected", "appended")]
    for report in pathology:
        if report.status in ("preliminary", "partial", "registered") and not any(
            f.when and report.when and f.when >= report.when for f in finals
        ):
            phrases.append(
                f"the pathology report of {us_date(report.when)} is still {report.status}, "
                "with no final report"
            )
            facts.append(
                Fact(
                    kind="status",
                    name=report.title or "pathology report",
                    value=report.status,
                    when=report.when,
                    status=report.status,
                    reference=report.reference,
                )
            )
            evidence.append(
                Evidence.in_report(report, f"Report status: {report.status}", "DiagnosticReport.status")
            )
    for d in current_diagnoses(record, evaluation):
        name = d.source.text.split(" [")[0]
        morph = (d.morphology or "")[:4]
        uncertain_code = (
            d.behavior == "1"
            and not (d.entity and d.entity.id in _BEHAVIOUR_WHITELIST)
            and not morph.startswith(_WHITELIST_MORPH)
        )
        icd = icd10_of(d)
        if uncertain_code or (icd and is_uncertain_behavior_icd10(icd)):
            phrases.append(f"{mid_sentence(calm(name))} is coded with uncertain behavior")
            facts.append(diagnosis_fact(d, name))
            evidence.append(Evidence.of(d.source))
    if not phrases:
        return None
    phrases = list(dict.fromkeys(phrases))
    lead = "Pathology is not conclusive: "
    summary = first_fitting(
        lead + "; ".join(phrases[:2]), lead + phrases[0], *(lead + p for p in shorter[:1])
    )
    return SPEC.finding(summary, evidence, facts=facts, reviews=done)


SPEC = TriggerSpec(
    id="uncertain-pathology",
    label="Uncertain or borderline pathology",
    short_label="uncertain pathology",
    group="diagnosis",
    urgency="routine",
    action="expert-pathology-review",
    review="pathology",
    rationale=RATIONALE,
    sources=("Lindley et al., Pathol Res Pract 2014", "Galloway 2011", "MD Anderson, J Oncol Pract 2014"),
    rule_source="pathology uncertainty terms",
    question=(
        "Please review the slides and give a definitive diagnosis; the report is not conclusive ({topic})."
    ),
    rule_data="fhirmaps/codes/lexicon.json (hedges, borderline entities) and context_rules.json",
    evaluate=evaluate,
)
