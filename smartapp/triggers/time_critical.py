"""time_critical: acute leukaemia not in remission, DLBCL/Burkitt, malignant cord compression, SVC syndrome."""

from __future__ import annotations

import re

from fhirmaps import codes
from fhirmaps.record import PatientRecord
from smartapp.findings import Evidence, TimeCritical
from smartapp.triggers.common import (
    Context,
    confident,
    current_diagnoses,
    diagnostic_sections,
    icd10_of,
    mentions,
)

_COMPRESSION = re.compile(r"compress|effac|impinge|deform", re.I)
_NO_COMPRESSION = re.compile(r"\b(without|no)\s+(?:\w+\s+){0,3}(?:compress|effac|impinge|deform)", re.I)
_INACTIVE = {"inactive", "resolved", "remission", "refuted", "entered-in-error"}


def _in_remission_icd10(code: str) -> bool:
    """ICD-10-CM leukaemia codes: 5th character 1 means 'in remission'."""
    plain = code.upper().replace(".", "")
    return plain[:3] in ("C91", "C92", "C93", "C94", "C95") and len(plain) >= 5 and plain[4] == "1"


def assess_time_critical(record: PatientRecord, ctx: Context) -> TimeCritical | None:
    urgent = codes.load("urgent")
    reasons: list[str] = []
    evidence: list[Evidence] = []
    cancers = confident(current_diagnoses(record, ctx))
    for d in cancers:
        if d.entity is None or not d.entity.time_critical:
            continue
        icd = icd10_of(d)
        if icd and _in_remission_icd10(icd):
            continue
        if d.entity.id in ("aml", "all"):
            reasons.append(f"{d.entity.label} not in remission")
        else:
            reasons.append(d.entity.label)
        evidence.append(Evidence.of(d.source))
    if cancers:
        for p in record.problems:
            if p.clinical_status in _INACTIVE or p.verification_status in _INACTIVE:
                continue
            values = {c.code for c in p.codes}
            icd = next((c.code for c in p.codes if c.short_system == "icd10"), "")
            if values & set(urgent["cord_compression_snomed"]) or (icd and codes.has_prefix(icd, urgent["cord_compression_icd10"])):
                reasons.append("spinal cord compression in a patient with cancer")
                evidence.append(Evidence.of(p.source))
            if values & set(urgent["svc_snomed"]) or (icd and codes.has_prefix(icd, urgent["svc_icd10"])):
                reasons.append("superior vena cava syndrome in a patient with cancer")
                evidence.append(Evidence.of(p.source))
    sections = diagnostic_sections() | {"findings", "note", "plan"}
    for m in mentions(record, ctx, "CORD_COMPRESSION", "SVC", kinds=("imaging", "note", "pathology"), sections=sections):
        if m.raw.uncertain or not cancers:
            continue
        if m.key.startswith("epidural") and (not _COMPRESSION.search(m.raw.sentence) or _NO_COMPRESSION.search(m.raw.sentence)):
            continue  # epidural disease counts only with compression of the cord / thecal sac
        reasons.append("malignant spinal cord compression" if m.label == "CORD_COMPRESSION" else "superior vena cava syndrome")
        evidence.append(Evidence.of(m.source))
    if not reasons:
        return None
    reason = "; ".join(sorted(set(reasons)))
    reason = reason[0].upper() + reason[1:]
    return TimeCritical(reason=f"{reason}: an oncological emergency.", advice=codes.load("urgent")["advice"], evidence=evidence)
