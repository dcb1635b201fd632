"""guideline-deviation: a short curated list of checks, each phrased for clinician review.

G1 HER2-positive metastatic breast cancer without an anti-HER2 agent; G2 low-risk prostate cancer with
radical treatment planned and no active-surveillance discussion; G3 metastatic non-squamous NSCLC on
first-line systemic therapy without molecular testing.
"""

from __future__ import annotations

import re

from fhirmaps import codes
from fhirmaps.record import PatientRecord
from smartapp.findings import Evidence, Fact, Finding
from smartapp.triggers import rules
from smartapp.triggers.biomarker_unreported import molecular_documented
from smartapp.triggers.common import (
    Evaluation,
    has_entity,
    has_icd10,
    mentions,
    reviews_in_record,
    text_has,
    texts,
)
from smartapp.triggers.extent import distant_disease
from smartapp.triggers.major_treatment import planned_major
from smartapp.triggers.prostate import low_risk_t, prostate_facts
from smartapp.triggers.spec import TriggerSpec
from smartapp.wording import sentence

RATIONALE = {
    "G1": (
        "HER2-positive metastatic breast cancer is treated with HER2-directed therapy in first line "
        "(ASCO/CAP HER2 definitions, Wolff et al. 2018/2023; NCCN breast guideline); "
        "please confirm the reason if none is planned."
    ),
    "G2": (
        "For very-low/low-risk prostate cancer (Grade Group 1, PSA <10, cT1-T2a) NCCN lists active "
        "surveillance as the preferred option for most patients; "
        "please confirm it was discussed before radical treatment."
    ),
    "G3": (
        "Metastatic non-squamous NSCLC needs broad molecular testing "
        "(EGFR, ALK, ROS1, BRAF, KRAS, MET, RET, NTRK) before first-line systemic therapy "
        "(NCCN NSCLC guideline); PD-L1 alone is not enough."
    ),
}


def _exempt(record: PatientRecord, evaluation: Evaluation, drug_words: list[str]) -> bool:
    if record.trials or mentions(record, evaluation, "TRIAL", kinds=("note",)):
        return True
    refusal = set(codes.load("treatments")["termination"]["refusal"])
    for a in record.activities:
        if {c.code for c in a.status_reason} & refusal and text_has(a.name, drug_words):
            return True
    text = "\n".join(r.text for r in texts(record, evaluation, "note"))
    return any(
        rules.pattern(SPEC.id, "refusal_words").search(line) and text_has(line, drug_words)
        for line in re.split(r"\n|(?<=\.)\s+", text)
    )


def _g1(record: PatientRecord, evaluation: Evaluation) -> list[Evidence]:
    breast = has_entity(record, evaluation, "breast-carcinoma") or has_icd10(record, evaluation, "C50")
    if not breast:
        return []
    positive = [
        Evidence.of(m.source)
        for m in record.measurements
        if m.kind in ("her2-ihc", "her2-ish")
        and rules.pattern(SPEC.id, "her2_positive_values").search(m.value_text)
        and not rules.pattern(SPEC.id, "her2_negative").search(m.value_text)
    ]
    for r in texts(record, evaluation, "pathology"):
        for line in re.split(r"\n|(?<=\.)\s+", r.text):
            if rules.pattern(SPEC.id, "her2_positive").search(line) and not rules.pattern(
                SPEC.id, "her2_negative"
            ).search(line):
                positive.append(Evidence.in_report(r, line.strip()))
    metastatic = distant_disease(record, evaluation)
    if not positive or not metastatic:
        return []
    agents = codes.load("treatments")["anti_her2"]
    rxnorm = set(codes.load("treatments")["anti_her2_rxnorm"])
    for a in record.activities:
        if a.status != "entered-in-error" and (
            text_has(f"{a.name} {a.note}", agents) or {c.code for c in a.codes} & rxnorm
        ):
            return []
    if _exempt(record, evaluation, [*agents, *rules.value(SPEC.id, "her2_therapy_words")]):
        return []
    return positive + metastatic + [Evidence.of(d.source) for d in breast]


def _g2(record: PatientRecord, evaluation: Evaluation) -> list[Evidence]:
    prostate = has_entity(record, evaluation, "prostate-adenocarcinoma") or has_icd10(
        record, evaluation, "C61"
    )
    if not prostate:
        return []
    facts = prostate_facts(record, evaluation)
    if (
        facts.grade_group != 1
        or facts.psa is None
        or facts.psa >= 10
        or (facts.t_stage and not low_risk_t(facts.t_stage))
    ):
        return []
    radical = [
        a
        for a, term in planned_major(record, evaluation)
        if rules.pattern(SPEC.id, "radical_prostate_treatment").search(f"{term} {a.name}")
    ]
    if not radical:
        return []
    as_terms = codes.load("treatments")["as_discussion_terms"]
    if any(text_has(r.text, as_terms) for r in texts(record, evaluation)) or any(
        text_has(f"{a.name} {a.note}", as_terms) for a in record.activities
    ):
        return []
    if _exempt(record, evaluation, ["surveillance", "prostatectomy", "radiation", "radiotherapy"]):
        return []
    return facts.evidence + [Evidence.of(a.source) for a in radical]


def _g3(record: PatientRecord, evaluation: Evaluation) -> list[Evidence]:
    nsclc = has_entity(record, evaluation, "lung-adenocarcinoma", "nsclc-nos")
    if not nsclc or has_entity(record, evaluation, "lung-squamous"):
        return []
    metastatic = distant_disease(record, evaluation)
    if not metastatic:
        return []
    systemic = [
        a
        for a in record.activities
        if a.antineoplastic
        and a.resource_type.startswith("Medication")
        and a.status not in ("entered-in-error", "cancelled")
    ]
    if not systemic:
        return []
    if molecular_documented(record, evaluation):
        return []
    if _exempt(record, evaluation, ["molecular", "testing", "biopsy"]):
        return []
    return metastatic + [Evidence.of(d.source) for d in nsclc] + [Evidence.of(a.source) for a in systemic]


def evaluate(record: PatientRecord, evaluation: Evaluation) -> Finding | None:
    rules = {"G1": _g1, "G2": _g2, "G3": _g3}
    wordings = {
        "G1": "HER2-positive metastatic breast cancer with no anti-HER2 agent ordered or given",
        "G2": (
            "low-risk prostate cancer with radical treatment planned "
            "and no documented active-surveillance discussion"
        ),
        "G3": (
            "metastatic non-squamous NSCLC on first-line systemic therapy "
            "with no molecular testing documented"
        ),
    }
    hits = {name: rule(record, evaluation) for name, rule in rules.items()}
    fired = [name for name, ev in hits.items() if ev]
    if not fired:
        return None
    summary = sentence("; ".join(wordings[n] for n in fired))
    rationale = " ".join(RATIONALE[n] for n in fired)
    facts = [Fact(kind="statement", name=wordings[n]) for n in fired]
    return SPEC.finding(
        summary,
        [e for n in fired for e in hits[n]],
        facts=facts,
        rationale=rationale,
        reviews=reviews_in_record(record, evaluation),
    )


SPEC = TriggerSpec(
    id="guideline-deviation",
    label="Possible deviation from guidelines",
    short_label="plan differs from guideline",
    group="treatment-plan",
    urgency="routine",
    action="clinical-second-opinion",
    review="clinical",
    rationale=(
        "Guideline-recommended care is the default; when a plan departs from it without a documented reason, "
        "an expert review confirms the reason or corrects the plan (NCCN, ASCO)."
    ),
    sources=("NCCN guidelines", "ASCO guidelines"),
    rule_source="NCCN/ASCO guideline checks",
    question="The plan appears to differ from guideline-recommended care ({topic}): do you agree with it?",
    rule_data="smartapp/triggers/guideline_deviation.py",
    evaluate=evaluate,
)
