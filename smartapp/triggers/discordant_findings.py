"""discordant-findings: sources disagree on the histologic family or on a grade across a management threshold;
amended reports that change the diagnosis; GIST-vs-sarcoma and FL-vs-MCL work-up patterns."""

from __future__ import annotations

import re
from datetime import date
from itertools import combinations

from fhirmaps.record import ClinicalText, Diagnosis, PatientRecord
from smartapp.findings import Evidence, Fact, Finding, NotFound
from smartapp.triggers import rules
from smartapp.triggers.common import (
    Evaluation,
    all_text,
    confident,
    current_diagnoses,
    diagnosis_fact,
    diagnostic_sections,
    icd10_of,
    mentions,
    reviews_in_record,
    texts,
)
from smartapp.triggers.grades import Grade, _from_text, grades
from smartapp.triggers.spec import TriggerSpec
from smartapp.wording import calm, resource_words, sentence, us_date

RATIONALE = (
    "When sources disagree on the diagnosis or on a grade that changes management, an expert review decides "
    "treatment: subspecialty review of outside pathology finds major discrepancies in 2-6% of cases "
    "(Moffitt, Anticancer Res 2018; MD Anderson, J Oncol Pract 2014); GIST and mantle cell lymphoma are "
    "separate entities with different treatment (SEER/OncoTree schemas)."
)
# Families that legitimately follow one another (transformation), not a disagreement.
_TRANSFORMATIONS = {
    frozenset({"fl", "dlbcl"}),
    frozenset({"cll", "dlbcl"}),
    frozenset({"mzl", "dlbcl"}),
    frozenset({"cll", "hodgkin"}),
}
_SCHEME_BY_ENTITY = {
    "net": "net",
    "nec": "net",
    "atypical-carcinoid": "net",
    "breast-carcinoma": "nottingham",
}


def _family_pairs(diagnoses: list[Diagnosis]) -> list[tuple[Diagnosis, Diagnosis]]:
    usable = [d for d in diagnoses if d.entity and d.entity.family and d.entity.discord]
    pairs = []
    for a, b in combinations(usable, 2):
        if a.entity is None or b.entity is None:
            continue
        if a.source.reference == b.source.reference or a.entity.discord != b.entity.discord:
            continue
        if (
            a.entity.family == b.entity.family
            or frozenset({a.entity.family, b.entity.family}) in _TRANSFORMATIONS
        ):
            continue
        if a.entity.family in (b.entity.family_parent, None) or b.entity.family in (
            a.entity.family_parent,
            None,
        ):
            continue  # NSCLC NOS refined to adenocarcinoma is a refinement, not a disagreement
        pairs.append((a, b))
    return pairs


def _scheme(record: PatientRecord, evaluation: Evaluation) -> str:
    for d in current_diagnoses(record, evaluation):
        if d.entity and d.entity.id in _SCHEME_BY_ENTITY:
            return _SCHEME_BY_ENTITY[d.entity.id]
        if d.entity and d.entity.lineage == "mesenchymal" and d.entity.id != "gist":
            return "fnclcc"
    return ""


def _amended_changes(report: ClinicalText) -> list[Evidence]:
    if report.status not in ("amended", "corrected", "appended") and not rules.pattern(
        SPEC.id, "amended_titles"
    ).search(report.title):
        return []
    sections = diagnostic_sections()
    cancers = [
        m
        for m in report.mentions
        if m.label == "CANCER" and m.section in sections and not m.raw.negated and not m.raw.family
    ]
    revised = [
        m
        for m in cancers
        if rules.pattern(SPEC.id, "revision_words").search(m.raw.sentence)
        and not rules.pattern(SPEC.id, "unchanged_words").search(m.raw.sentence)
    ]
    current = {m.key for m in cancers if m not in revised}
    ids = {m.key for m in cancers}
    if (
        len(ids) >= 2
        and revised
        and ({m.key for m in revised} - current or len({m.key for m in revised}) >= 2)
        and any(m.key not in ("generic-malignancy", "generic-lymphoma") for m in cancers)
    ):
        return [Evidence.of(m.source) for m in cancers]
    found: list[tuple[str, int, str]] = []
    for line in re.split(r"\n|(?<=[.;])\s+", report.text):
        if rules.pattern(SPEC.id, "revision_words").search(line) and not rules.pattern(
            SPEC.id, "unchanged_words"
        ).search(line):
            for scheme_hint in ("net", "nottingham", "fnclcc"):
                found += _from_text(line.replace("previously", "").replace("originally", ""), scheme_hint)
            found += [g for g in _revision_grades(line)]
    by_scheme: dict[str, set[int]] = {}
    for scheme, value, _ in found:
        by_scheme.setdefault(scheme, set()).add(
            Grade(scheme, value, Evidence(reference="", path="", text=""), "").category
        )
    if any(len(v) > 1 for v in by_scheme.values()):
        return [Evidence.in_report(report, line) for _, _, line in found]
    return []


def _revision_grades(line: str) -> list[tuple[str, int, str]]:
    """ "grade 2 ... revised to grade 3" style statements."""
    out = []
    for match in rules.pattern(SPEC.id, "any_grade").finditer(line):
        out.append(("revision", int(match.group(1)), line.strip()))
    return out if len({v for _, v, _ in out}) > 1 else []


def _kit_done(text: str) -> bool:
    """KIT/CD117 or DOG1 immunostain with a result (not 'not performed' / 'pending')."""
    for line in re.split(r"\n|(?<=[.;])\s+", text):
        if (
            rules.pattern(SPEC.id, "kit_dog1").search(line)
            and rules.pattern(SPEC.id, "stain_result_words").search(line)
            and not rules.pattern(SPEC.id, "not_done_words").search(line)
        ):
            return True
    return False


def _report_text(record: PatientRecord, d: Diagnosis) -> str:
    """The diagnosis sentence with the specimen lines just above it (where the site is named)."""
    report = record.report(d.report) if d.report else None
    if report is None:
        return ""
    pos = report.text.find(d.source.text[:60])
    if pos < 0:
        return d.source.text
    start = pos
    for _ in range(3):
        start = report.text.rfind("\n", 0, max(start - 1, 0))
        if start <= 0:
            start = 0
            break
    return report.text[start : pos + len(d.source.text)]


_GRADE_LABELS = {
    "gleason": "Gleason grade group",
    "net": "NET grade",
    "nottingham": "Nottingham grade",
    "fnclcc": "FNCLCC grade",
}


def _reading(d: Diagnosis) -> str:
    """'leiomyosarcoma on outside biopsy 10/27/2026'"""
    label = d.entity.label if d.entity else d.source.text
    where = d.source.title or resource_words(d.source.reference).lower()
    return f"{label} on {where} {us_date(d.when)}" if d.when else f"{label} on {where}"


def _on_surveillance(record: PatientRecord, evaluation: Evaluation) -> bool:
    return any(
        m.key in ("active surveillance", "watchful waiting", "expectant management")
        for m in mentions(record, evaluation, "SURVEILLANCE", kinds=("note", "pathology"))
    )


def _immunophenotype(record: PatientRecord, evaluation: Evaluation) -> list[Evidence]:
    """The report lines that state CD5 expression (the decisive fact for mantle cell lymphoma)."""
    found = []
    for r in texts(record, evaluation, "pathology"):
        for line in re.split(r"\n|(?<=[.;])\s+", r.text):
            if rules.pattern(SPEC.id, "cd5_positive_patterns").search(line):
                found.append(Evidence.in_report(r, line.strip()))
    return found


def evaluate(record: PatientRecord, evaluation: Evaluation) -> Finding | None:
    evidence: list[Evidence] = []
    phrases: list[str] = []
    facts: list[Fact] = []
    not_found: list[NotFound] = []
    done = reviews_in_record(record, evaluation)
    dx = [d for d in confident(current_diagnoses(record, evaluation)) if d.source.reference not in done.notes]
    for a, b in _family_pairs(dx):
        first, second = sorted((a, b), key=lambda d: (d.when or evaluation.as_of, d.source.reference))
        phrases.append(f"{_reading(first)} vs {_reading(second)}")
        facts += [diagnosis_fact(first), diagnosis_fact(second)]
        evidence += [Evidence.of(first.source), Evidence.of(second.source)]
    scheme = _scheme(record, evaluation)
    by_scheme: dict[str, list[Grade]] = {}
    for g in grades(record, evaluation, scheme):
        if g.source not in done.notes:
            by_scheme.setdefault(g.scheme, []).append(g)
    surveillance = _on_surveillance(record, evaluation)
    for name, items in by_scheme.items():
        # Same-day grades are parts of one specimen session (several cores or blocks), not two opinions;
        # during active surveillance a higher grade on a later biopsy is progression (surveillance-check).
        pairs = [
            (a, b)
            for a, b in combinations(items, 2)
            if a.category != b.category
            and (a.when is None or b.when is None or a.when != b.when)
            and not (surveillance and a.when and b.when)
        ]
        if pairs:
            ordered = sorted(
                {g for pair in pairs for g in pair}, key=lambda g: (g.when or evaluation.as_of, g.source)
            )
            label = _GRADE_LABELS[name]
            # One reading per date and grade (a report and its grade Observation say the same thing).
            shown: dict[tuple[date | None, int], Grade] = {}
            for g in ordered:
                key = (g.when, g.value)
                if key not in shown or (g.evidence.title and not shown[key].evidence.title):
                    shown[key] = g
            readings = [
                (
                    f"{g.value} on {calm(g.evidence.title) or resource_words(g.source).lower()} "
                    f"{us_date(g.when)}"
                ).strip()
                for g in shown.values()
            ]
            phrases.append(f"{label} {' vs '.join(readings)}")
            facts += [
                Fact(
                    kind="measurement",
                    name=label,
                    value=str(g.value),
                    number=float(g.value),
                    when=g.when,
                    reference=g.source,
                )
                for g in ordered
            ]
            evidence += [g.evidence for g in ordered]
    for report in texts(record, evaluation, "pathology"):
        changed = _amended_changes(report)
        if changed:
            phrases.append(
                f"the {report.status or 'amended'} report of {us_date(report.when)} changes the diagnosis"
            )
            facts.append(
                Fact(
                    kind="status",
                    name=report.title or "pathology report",
                    value=report.status,
                    when=report.when,
                    reference=report.reference,
                )
            )
            evidence += changed
    text = all_text(record, evaluation, "pathology")
    sarcomas = [
        d for d in dx if d.entity and d.entity.id in ("leiomyosarcoma", "soft-tissue-sarcoma", "sarcoma-nos")
    ]
    gi_sarcoma = [
        d
        for d in sarcomas
        if rules.pattern(SPEC.id, "gi_sites").search(d.source.text)
        or rules.pattern(SPEC.id, "gi_sites").search(_report_text(record, d))
        or (icd10_of(d) and icd10_of(d)[:3] in ("C15", "C16", "C17", "C18", "C19", "C20", "C26", "C48"))
        or (icd10_of(d).startswith("C49.4"))
    ]
    if (
        gi_sarcoma
        and not _kit_done(text)
        and not any(rules.pattern(SPEC.id, "kit_dog1").search(m.name) for m in record.measurements)
    ):
        phrases.append("GI spindle-cell sarcoma without KIT (CD117) or DOG1 results, so GIST is not excluded")
        facts += [diagnosis_fact(d) for d in gi_sarcoma]
        not_found.append(
            NotFound(
                what="KIT (CD117) or DOG1 result",
                searched=f"{len(texts(record, evaluation, 'pathology'))} pathology reports",
            )
        )
        evidence += [Evidence.of(d.source) for d in gi_sarcoma]
    follicular = [d for d in dx if d.entity and d.entity.id == "fl"]
    if follicular and rules.pattern(SPEC.id, "cd5_positive_patterns").search(text):
        done_studies = [
            m
            for m in rules.pattern(SPEC.id, "mcl_studies").finditer(text)
            if not rules.pattern(SPEC.id, "not_done_words").search(m.group(0))
        ]
        if not done_studies:
            phrases.append(
                "follicular lymphoma diagnosis but CD5 positive, with no cyclin D1, SOX11 or t(11;14) "
                "result, so mantle cell lymphoma is not excluded"
            )
            facts += [diagnosis_fact(d) for d in follicular] + [
                Fact(kind="diagnosis", name="Mantle cell lymphoma", status="not excluded")
            ]
            not_found.append(
                NotFound(
                    what="cyclin D1, SOX11 or t(11;14) result",
                    searched=f"{len(texts(record, evaluation, 'pathology'))} pathology reports",
                )
            )
            evidence += _immunophenotype(record, evaluation) + [Evidence.of(d.source) for d in follicular]
    if not phrases:
        return None
    summary = sentence(f"Readings disagree: {'; '.join(phrases[:2])}")
    if len(summary) > 200:
        summary = sentence(phrases[0])
    return SPEC.finding(summary, evidence, facts=facts, not_found=not_found, reviews=done)


def ask(finding: Finding) -> str | None:
    """The consultant question for the kind of disagreement, from the finding's facts."""
    names = [f.name for f in finding.facts if f.kind == "diagnosis"]
    low = " ".join(names).lower()
    if "stromal" in low or "gist" in low:
        other = next(
            (n.lower() for n in names if "stromal" not in n.lower() and "gist" not in n.lower()), "sarcoma"
        )
        return f"Please re-review H&E and IHC: GIST vs {other}; KIT (CD117)/DOG1 status?"
    if "mantle" in low or "follicular" in low:
        return (
            "Please re-review H&E and IHC: follicular vs mantle cell lymphoma; "
            "cyclin D1/SOX11 or t(11;14) status?"
        )
    grades = [f.name for f in finding.facts if f.kind == "measurement"]
    if grades:
        return (
            f"Please re-grade the tumor on the slides: which {grades[0]} do you assign, "
            "and does it change management?"
        )
    return None


SPEC = TriggerSpec(
    id="discordant-findings",
    label="Conflicting diagnoses or grades",
    short_label="discordant diagnoses",
    group="diagnosis",
    urgency="routine",
    action="expert-pathology-review",
    review="pathology",
    rationale=RATIONALE,
    sources=(
        "Moffitt, Anticancer Res 2018",
        "MD Anderson, J Oncol Pract 2014",
        "Frable 2006",
        "SEER/OncoTree schemas",
    ),
    rule_source="diagnostic discordance rules",
    question=(
        "Please re-review the slides and stains ({topic}): which diagnosis or grade do they support, "
        "and does it change management?"
    ),
    rule_data="fhirmaps/codes/entities.json (families, lineages); smartapp/triggers/grades.py thresholds",
    evaluate=evaluate,
    ask=ask,
)
