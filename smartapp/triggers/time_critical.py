"""time_critical: acute leukemia not in remission, DLBCL/Burkitt, malignant cord compression, SVC syndrome.

Each condition is time-critical only while it is current (windows in fhirmaps/codes/urgent.json,
`currency_days`): a leukemia or lymphoma within `diagnosis` days of its diagnosis, until treatment
has run for `treatment_started` days or a disease status says it improved; a cord compression or
SVC syndrome within `compression` days of the record that states it.
"""

from __future__ import annotations

from datetime import date

from fhirmaps import codes
from fhirmaps.record import Diagnosis, PatientRecord
from smartapp.findings import Evidence, TimeCritical
from smartapp.triggers import rules
from smartapp.triggers.common import (
    Evaluation,
    antineoplastic_given,
    confident,
    current_diagnoses,
    diagnostic_sections,
    icd10_of,
    mentions,
)
from smartapp.wording import join, sentence

_INACTIVE = {"inactive", "resolved", "remission", "refuted", "entered-in-error"}
_LEUKEMIA = {"aml", "all"}


def _in_remission_icd10(code: str) -> bool:
    """ICD-10-CM leukemia codes: 5th character 1 means 'in remission'."""
    plain = code.upper().replace(".", "")
    return plain[:3] in ("C91", "C92", "C93", "C94", "C95") and len(plain) >= 5 and plain[4] == "1"


def _recent(when: date | None, evaluation: Evaluation, days: int) -> bool:
    return when is None or 0 <= (evaluation.as_of - when).days <= days


def _treated_or_improved(
    record: PatientRecord, evaluation: Evaluation, d: Diagnosis, grace_days: int
) -> bool:
    """Treatment started after the diagnosis more than `grace_days` ago, or a later disease status says
    it improved."""
    since = d.when or date.min
    for a in antineoplastic_given(record, evaluation):
        began = a.start or a.end or evaluation.as_of
        if began >= since and (evaluation.as_of - began).days > grace_days:
            return True
    improved = set(codes.load("urgent")["improved_status"]["codes"])
    return any(
        m.kind == "disease-status"
        and m.when
        and since <= m.when <= evaluation.as_of
        and {c.code for c in m.value_codes} & improved
        for m in record.measurements
    )


def assess_time_critical(record: PatientRecord, evaluation: Evaluation) -> TimeCritical | None:
    urgent = codes.load("urgent")
    window = urgent["currency_days"]
    found: dict[str, tuple[str, list[Evidence]]] = {}  # pathway -> (condition, evidence)

    def add(pathway: str, condition: str, evidence: Evidence) -> None:
        found.setdefault(pathway, (condition, []))[1].append(evidence)

    cancers = confident(current_diagnoses(record, evaluation))
    for d in cancers:
        if d.entity is None or not d.entity.time_critical:
            continue
        icd = icd10_of(d)
        if (icd and _in_remission_icd10(icd)) or not _recent(d.when, evaluation, window["diagnosis"]):
            continue
        if _treated_or_improved(record, evaluation, d, window["treatment_started"]):
            continue
        leukemia = d.entity.id in _LEUKEMIA
        condition = f"{d.entity.label} not in remission" if leukemia else f"newly diagnosed {d.entity.label}"
        add("acute-leukemia" if leukemia else "aggressive-lymphoma", condition, Evidence.of(d.source))
    if cancers:
        for p in record.problems:
            if p.clinical_status in _INACTIVE or p.verification_status in _INACTIVE:
                continue
            if not _recent(p.when, evaluation, window["compression"]):
                continue
            values = {c.code for c in p.codes}
            icd = next((c.code for c in p.codes if c.short_system == "icd10"), "")
            if values & set(urgent["cord_compression_snomed"]) or (
                icd and codes.has_prefix(icd, urgent["cord_compression_icd10"])
            ):
                add(
                    "cord-compression",
                    "spinal cord compression in a patient with cancer",
                    Evidence.of(p.source),
                )
            if values & set(urgent["svc_snomed"]) or (icd and codes.has_prefix(icd, urgent["svc_icd10"])):
                add("svc", "superior vena cava syndrome in a patient with cancer", Evidence.of(p.source))
    sections = diagnostic_sections() | {"findings", "note", "plan"}
    for m in mentions(
        record,
        evaluation,
        "CORD_COMPRESSION",
        "SVC",
        kinds=("imaging", "note", "pathology"),
        sections=sections,
    ):
        if m.raw.uncertain or not cancers or not _recent(m.source.when, evaluation, window["compression"]):
            continue
        compressed = rules.pattern("time-critical", "compression_words").search(m.raw.sentence)
        if m.key.startswith("epidural") and (
            not compressed or rules.pattern("time-critical", "no_compression").search(m.raw.sentence)
        ):
            continue  # epidural disease counts only with compression of the cord / thecal sac
        if m.label == "CORD_COMPRESSION":
            add("cord-compression", "malignant spinal cord compression", Evidence.of(m.source))
        else:
            add("svc", "superior vena cava syndrome", Evidence.of(m.source))
    if not found:
        return None
    order = ["cord-compression", "svc", "acute-leukemia", "aggressive-lymphoma"]
    pathways = [p for p in order if p in found]
    conditions = [found[p][0] for p in pathways]
    return TimeCritical(
        reason=sentence(f"{join(conditions)}: treatment must not wait for a second opinion"),
        advice=" ".join(urgent["pathways"][p]["text"] for p in pathways),
        conditions=conditions,
        evidence=[e for p in pathways for e in found[p][1]],
    )
