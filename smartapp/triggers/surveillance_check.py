"""surveillance-check: active surveillance for prostate cancer or papillary thyroid microcarcinoma with an
eligibility criterion missing or violated."""

from __future__ import annotations

import re
from datetime import date

from fhirmaps.record import PatientRecord
from smartapp.findings import Evidence, Fact, Finding, NotFound
from smartapp.triggers import rules
from smartapp.triggers.common import (
    Evaluation,
    antineoplastic_given,
    has_entity,
    has_icd10,
    mentions,
    reviews_in_record,
    texts,
)
from smartapp.triggers.grades import grades
from smartapp.triggers.prostate import low_risk_t, prostate_facts
from smartapp.triggers.spec import TriggerSpec
from smartapp.wording import sentence, us_date

RATIONALE = (
    "Active surveillance is safe only within its eligibility criteria: NCCN very-low/low-risk prostate "
    "cancer (Grade Group 1, PSA <10 ng/mL, cT1-T2a, <3 positive cores, <=50% cancer per core, "
    "PSA density <0.15 ng/mL/g); papillary thyroid microcarcinoma <=1 cm without extrathyroidal "
    "extension or metastasis (Miyauchi, World J Surg 2016)."
)
_AS_TERMS = ("active surveillance", "watchful waiting", "expectant management", "surveillance protocol")


def _surveillance_sources(record: PatientRecord, evaluation: Evaluation) -> list[Evidence]:
    found = [
        Evidence.of(m.source)
        for m in mentions(record, evaluation, "SURVEILLANCE", kinds=("note", "pathology"))
        if m.key in _AS_TERMS
        or (m.key == "observation" and m.source.reference.startswith(("CarePlan", "ServiceRequest")))
    ]
    for a in record.activities:
        text = f"{a.name} {a.note}".lower()
        if a.status not in ("revoked", "entered-in-error", "cancelled") and any(t in text for t in _AS_TERMS):
            found.append(Evidence.of(a.source))
    return found


def _prostate(record: PatientRecord, evaluation: Evaluation) -> tuple[list[str], list[Evidence]]:
    f = prostate_facts(record, evaluation)
    problems = []
    # A higher grade on a later biopsy is progression on surveillance (not a discordance between readings).
    series = sorted(
        (g for g in grades(record, evaluation, "") if g.scheme == "gleason" and g.when),
        key=lambda g: g.when or evaluation.as_of,
    )
    if len(series) >= 2 and series[-1].value > series[0].value and series[-1].when != series[0].when:
        later = series[-1]
        problems.append(
            f"Grade Group rose from {series[0].value} to {later.value} on the biopsy of {us_date(later.when)}"
        )
        f.evidence.insert(0, later.evidence)
    if f.grade_group is None:
        problems.append("Grade Group not documented")
    elif f.grade_group >= 3:
        problems.append(f"Grade Group {f.grade_group} exceeds surveillance criteria")
    elif f.grade_group == 2:
        if f.pattern4_pct is None:
            problems.append("Grade Group 2 with percentage of Gleason pattern 4 not documented")
        elif f.pattern4_pct > 10:
            problems.append(f"Grade Group 2 with {f.pattern4_pct}% pattern 4")
    if f.psa is None:
        problems.append("PSA not documented")
    elif f.psa >= 10:
        problems.append(
            f"PSA {f.psa:g} ng/mL{f' on {us_date(f.psa_when)}' if f.psa_when else ''} is at or above 10"
        )
    if f.t_stage is None:
        problems.append("clinical T stage not documented")
    elif not low_risk_t(f.t_stage):
        problems.append(f"clinical stage c{f.t_stage}, above T2a")
    if f.cores is None:
        problems.append("number of positive cores not documented")
    elif f.cores >= 3:
        problems.append(f"{f.cores} positive cores, 3 or more")
    if f.max_core_pct is None:
        problems.append("maximum percentage of cancer per core not documented")
    elif f.max_core_pct > 50:
        problems.append(f"{f.max_core_pct}% cancer in a core, over 50%")
    if f.density is None:
        problems.append("PSA density not documented: no prostate volume")
    elif f.density >= 0.15:
        problems.append(f"PSA density {f.density:.2f} ng/mL/g, {f.density_basis}, is at or above 0.15")
    if f.brca2:
        problems.append("germline BRCA2 pathogenic variant, which favors treatment")
    if f.high_genomic:
        problems.append("high genomic risk score")
    return problems, f.evidence


def _growth(dated: list[tuple[date | None, float]]) -> str:
    """Growth between the first and the latest measurement (largest size per date), when it reaches
    the threshold."""
    by_day: dict[date, float] = {}
    for when, size in dated:
        if when is not None:
            by_day[when] = max(size, by_day.get(when, 0.0))
    if len(by_day) < 2:
        return ""
    first, last = min(by_day), max(by_day)
    grew = by_day[last] - by_day[first]
    if grew < rules.value(SPEC.id, "thyroid_growth_cm") - 1e-9:
        return ""
    return (
        f"tumor grew from {by_day[first]:g} to {by_day[last]:g} cm "
        f"between {us_date(first)} and {us_date(last)}"
    )


def _thyroid(record: PatientRecord, evaluation: Evaluation) -> list[str]:
    text = "\n".join(r.text for r in texts(record, evaluation))
    problems = []
    dated: list[tuple[date | None, float]] = []  # (when measured, largest size in cm)
    for report in texts(record, evaluation):
        for line in re.split(r"\n|(?<=\.)\s+", report.text):
            if rules.pattern(SPEC.id, "lesion_words").search(line):
                for value, unit in rules.pattern(SPEC.id, "tumor_size").findall(line):
                    dated.append((report.when, float(value) / (10 if unit.lower() == "mm" else 1)))
    dated += [
        (m.when, m.value_number / (10 if m.unit.lower() == "mm" else 1))
        for m in record.measurements
        if m.kind == "tumor-size" and m.value_number is not None
    ]
    sizes = [size for _, size in dated]
    growth = _growth(dated)
    if growth:
        problems.append(growth)
    if not sizes:
        problems.append("tumor size not documented")
    elif max(sizes) > 1.0:
        problems.append(f"tumor {max(sizes):g} cm, over 1 cm")
    ete_neg = rules.pattern(SPEC.id, "ete_absent").search(text)
    if not ete_neg:
        problems.append(
            "extrathyroidal extension not documented"
            if not rules.pattern(SPEC.id, "ete_words").search(text)
            else "extrathyroidal extension present"
        )
    node_neg = rules.pattern(SPEC.id, "nodes_negative").search(text)
    if not node_neg:
        problems.append(
            "lymph-node status not documented"
            if not rules.pattern(SPEC.id, "nodal_metastasis").search(text)
            else "nodal metastasis reported"
        )
    negated = rules.pattern(SPEC.id, "aggressive_negated_patterns")
    if any(
        rules.pattern(SPEC.id, "aggressive_subtypes").search(line) and not negated.search(line)
        for line in re.split(r"\n|(?<=\.)\s+", text)
    ):
        problems.append("aggressive histologic subtype")
    return problems


def _definitive_treatment_planned(record: PatientRecord) -> bool:
    """Surveillance was discussed but surgery or radiotherapy was chosen: the patient is not on
    surveillance."""
    for a in record.activities:
        if a.resource_type in ("ServiceRequest", "Appointment", "CarePlan", "Procedure") and a.status in (
            "active",
            "draft",
            "on-hold",
            "booked",
            "proposed",
            "pending",
            "scheduled",
            "not-started",
            "preparation",
        ):
            said = f"{a.name} {a.note}"
            if rules.pattern(SPEC.id, "definitive_treatment").search(said) and not rules.pattern(
                SPEC.id, "not_chosen_patterns"
            ).search(said):
                return True
    return False


def evaluate(record: PatientRecord, evaluation: Evaluation) -> Finding | None:
    sources = _surveillance_sources(record, evaluation)
    if not sources or antineoplastic_given(record, evaluation) or _definitive_treatment_planned(record):
        return None
    prostate = has_entity(record, evaluation, "prostate-adenocarcinoma") or has_icd10(
        record, evaluation, "C61"
    )
    thyroid = has_entity(record, evaluation, "papillary-thyroid") or has_icd10(record, evaluation, "C73")
    if prostate:
        problems, extra = _prostate(record, evaluation)
        disease = "prostate cancer"
    elif thyroid:
        problems, extra = _thyroid(record, evaluation), []
        disease = "papillary thyroid carcinoma"
    else:
        return None
    if not problems:
        return None
    # Values that break a criterion come before criteria that are merely undocumented.
    ordered = sorted(problems, key=lambda p: "not documented" in p)
    summary = sentence(f"Active surveillance for {disease}: {'; '.join(ordered[:3])}")
    if len(summary) > 200:
        summary = sentence(f"Active surveillance for {disease}: {ordered[0]}")
    facts = [Fact(kind="statement", name=p) for p in ordered]
    not_found = [
        NotFound(what=p.removesuffix(" not documented")) for p in ordered if p.endswith("not documented")
    ]
    evidence = extra + sources + [Evidence.of(d.source) for d in (prostate or thyroid)]
    return SPEC.finding(
        summary, evidence, facts=facts, not_found=not_found, reviews=reviews_in_record(record, evaluation)
    )


SPEC = TriggerSpec(
    id="surveillance-check",
    label="Active surveillance: confirm eligibility",
    short_label="surveillance eligibility unconfirmed",
    group="treatment-plan",
    urgency="routine",
    action="clinical-second-opinion",
    review="clinical",
    rationale=RATIONALE,
    sources=("NCCN Prostate Cancer (very-low/low risk)", "Miyauchi, World J Surg 2016"),
    rule_source="NCCN/ATA surveillance criteria",
    question="Is active surveillance appropriate? Please confirm eligibility ({topic}).",
    rule_data="smartapp/triggers/surveillance_check.py and prostate.py thresholds",
    evaluate=evaluate,
)
