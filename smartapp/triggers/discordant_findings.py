"""discordant-findings: sources disagree on the histologic family or on a grade across a management threshold;
amended reports that change the diagnosis; GIST-vs-sarcoma and FL-vs-MCL work-up patterns."""

from __future__ import annotations

import re
from itertools import combinations

from fhirmaps.record import Diagnosis, PatientRecord, Report
from smartapp.findings import Evidence, Finding
from smartapp.triggers.common import (
    Context,
    all_text,
    confident,
    current_diagnoses,
    diagnostic_sections,
    icd10_of,
    reports,
)
from smartapp.triggers.grades import Grade, _from_text, grades

TRIGGER = "discordant-findings"
RATIONALE = (
    "When sources disagree on the diagnosis or on a grade that changes management, an expert review decides "
    "treatment: subspecialty review of outside pathology finds major discrepancies in 2-6% of cases (Moffitt, "
    "Anticancer Res 2018; MD Anderson, J Oncol Pract 2014); GIST and mantle cell lymphoma are separate entities "
    "with different treatment (SEER/OncoTree schemas)."
)
# Families that legitimately follow one another (transformation), not a disagreement.
_TRANSFORMATIONS = {frozenset({"fl", "dlbcl"}), frozenset({"cll", "dlbcl"}), frozenset({"mzl", "dlbcl"}), frozenset({"cll", "hodgkin"})}
_REVISION = re.compile(r"amend|revis|correct|reclassif|(?<!un)changed|previously (?:reported|diagnosed)|originally|initially (?:reported|diagnosed)|"
                       r"upgrad|now (?:favou?r|diagnos)", re.I)
_UNCHANGED = re.compile(r"unchanged|not changed|no change|remains? the same|is confirmed|concur", re.I)
_GI = re.compile(r"\b(stomach|gastric|small bowel|small intestin\w*|duoden\w*|jejun\w*|ileum|ileal|colon|colonic|rectum|rectal|esophag\w*|"
                 r"oesophag\w*|mesenter\w*|gastrointestinal|gi|omentum|omental|gastro-?esophageal)\b", re.I)
_KIT_DOG1 = re.compile(r"\b(c-?kit|kit|cd117|dog-?1|ano1)\b", re.I)
_CD5_POS = re.compile(r"cd5[\s(]*(?:\+|positive|pos\b|is positive|expression)|positive for [^.]{0,40}\bcd5\b|cd5 co-?express", re.I)
_MCL_STUDY = re.compile(r"(cyclin[\s-]*d1|sox-?11|ccnd1|t\(11;14\))[^.;\n]{0,60}?\b(positive|negative|neg\b|pos\b|detected|not detected|express|absent|present|\+|-)", re.I)
_NOT_DONE = re.compile(r"not (?:performed|done|available|sent)|pending|recommended|could not be", re.I)
_SCHEME_BY_ENTITY = {"net": "net", "nec": "net", "atypical-carcinoid": "net", "breast-carcinoma": "nottingham"}


def _family_pairs(diagnoses: list[Diagnosis]) -> list[tuple[Diagnosis, Diagnosis]]:
    usable = [d for d in diagnoses if d.entity and d.entity.family and d.entity.discord]
    pairs = []
    for a, b in combinations(usable, 2):
        if a.entity is None or b.entity is None:
            continue
        if a.source.reference == b.source.reference or a.entity.discord != b.entity.discord:
            continue
        if a.entity.family == b.entity.family or frozenset({a.entity.family, b.entity.family}) in _TRANSFORMATIONS:
            continue
        if a.entity.family in (b.entity.family_parent, None) or b.entity.family in (a.entity.family_parent, None):
            continue  # NSCLC NOS refined to adenocarcinoma is a refinement, not a disagreement
        pairs.append((a, b))
    return pairs


def _scheme(record: PatientRecord, ctx: Context) -> str:
    for d in current_diagnoses(record, ctx):
        if d.entity and d.entity.id in _SCHEME_BY_ENTITY:
            return _SCHEME_BY_ENTITY[d.entity.id]
        if d.entity and d.entity.lineage == "mesenchymal" and d.entity.id != "gist":
            return "fnclcc"
    return ""


def _amended_changes(report: Report) -> list[Evidence]:
    if report.status not in ("amended", "corrected", "appended") and not re.search(r"amended|corrected|revised", report.title, re.I):
        return []
    sections = diagnostic_sections()
    cancers = [m for m in report.mentions if m.label == "CANCER" and m.section in sections and not m.raw.negated and not m.raw.family]
    revised = [m for m in cancers if _REVISION.search(m.raw.sentence) and not _UNCHANGED.search(m.raw.sentence)]
    current = {m.key for m in cancers if m not in revised}
    ids = {m.key for m in cancers}
    if len(ids) >= 2 and revised and ({m.key for m in revised} - current or len({m.key for m in revised}) >= 2) and any(
            m.key not in ("generic-malignancy", "generic-lymphoma") for m in cancers):
        return [Evidence.of(m.source) for m in cancers]
    found: list[tuple[str, int, str]] = []
    for line in re.split(r"\n|(?<=[.;])\s+", report.text):
        if _REVISION.search(line) and not _UNCHANGED.search(line):
            for scheme_hint in ("net", "nottingham", "fnclcc"):
                found += _from_text(line.replace("previously", "").replace("originally", ""), scheme_hint)
            found += [g for g in _revision_grades(line)]
    by_scheme: dict[str, set[int]] = {}
    for scheme, value, _ in found:
        by_scheme.setdefault(scheme, set()).add(Grade(scheme, value, Evidence("", "", ""), "").category)
    if any(len(v) > 1 for v in by_scheme.values()):
        return [Evidence(report.reference, "DiagnosticReport.presentedForm", line, report.title) for _, _, line in found]
    return []


def _revision_grades(line: str) -> list[tuple[str, int, str]]:
    """"grade 2 ... revised to grade 3" style statements."""
    out = []
    for match in re.finditer(r"grade\s*([123])", line, re.I):
        out.append(("revision", int(match.group(1)), line.strip()))
    return out if len({v for _, v, _ in out}) > 1 else []


def _kit_done(text: str) -> bool:
    """KIT/CD117 or DOG1 immunostain with a result (not 'not performed' / 'pending')."""
    for line in re.split(r"\n|(?<=[.;])\s+", text):
        if _KIT_DOG1.search(line) and re.search(r"positiv|negativ|\+|express|reactiv|stain", line, re.I) and not _NOT_DONE.search(line):
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
    return report.text[start:pos + len(d.source.text)]


def evaluate(record: PatientRecord, ctx: Context) -> Finding | None:
    evidence: list[Evidence] = []
    reasons: list[str] = []
    dx = confident(current_diagnoses(record, ctx))
    for a, b in _family_pairs(dx):
        pair = sorted(d.entity.label for d in (a, b) if d.entity)
        reasons.append(" vs ".join(pair))
        evidence += [Evidence.of(a.source), Evidence.of(b.source)]
    scheme = _scheme(record, ctx)
    by_scheme: dict[str, list[Grade]] = {}
    for g in grades(record, ctx, scheme):
        by_scheme.setdefault(g.scheme, []).append(g)
    for name, items in by_scheme.items():
        # Same-day grades are parts of one specimen session (several cores or blocks), not two opinions.
        if any(a.category != b.category and (a.when is None or b.when is None or a.when != b.when) for a, b in combinations(items, 2)):
            label = {"gleason": "Gleason grade group", "net": "NET grade", "nottingham": "Nottingham grade", "fnclcc": "FNCLCC grade"}[name]
            values = ", ".join(sorted({str(g.value) for g in items}))
            reasons.append(f"{label} differs across reports ({values})")
            evidence += [g.evidence for g in items]
    for report in reports(record, ctx, "pathology"):
        changed = _amended_changes(report)
        if changed:
            reasons.append(f"{report.status or 'amended'} report changed the diagnosis")
            evidence += changed
    text = all_text(record, ctx, "pathology")
    sarcomas = [d for d in dx if d.entity and d.entity.id in ("leiomyosarcoma", "soft-tissue-sarcoma", "sarcoma-nos")]
    gi_sarcoma = [d for d in sarcomas if _GI.search(d.source.text) or _GI.search(_report_text(record, d)) or (icd10_of(d) and icd10_of(d)[:3] in
                  ("C15", "C16", "C17", "C18", "C19", "C20", "C26", "C48")) or (icd10_of(d).startswith("C49.4"))]
    if gi_sarcoma and not _kit_done(text) and not any(_KIT_DOG1.search(m.name) for m in record.measurements):
        reasons.append("GI spindle-cell sarcoma without KIT (CD117)/DOG1 results (GIST not excluded)")
        evidence += [Evidence.of(d.source) for d in gi_sarcoma]
    follicular = [d for d in dx if d.entity and d.entity.id == "fl"]
    if follicular and _CD5_POS.search(text):
        done = [m for m in _MCL_STUDY.finditer(text) if not _NOT_DONE.search(m.group(0))]
        if not done:
            reasons.append("follicular lymphoma diagnosis with CD5 expression and no cyclin D1/SOX11 result (mantle cell lymphoma not excluded)")
            evidence += [Evidence.of(d.source) for d in follicular]
    if not reasons:
        return None
    summary = "Sources disagree (" + "; ".join(sorted(set(reasons))) + "): consider expert review to settle the diagnosis."
    return Finding(TRIGGER, summary, RATIONALE, evidence)
