"""Distant (metastatic) disease: AJCC stage IV / M1, a secondary cancer outside the lymph nodes, or
a current diagnosis stated as metastatic. Cancer in regional lymph nodes (ICD-10 C77, "axillary
lymph nodes 2/15") is not metastatic disease unless the stage says M1."""

from __future__ import annotations

from fhirmaps.record import Diagnosis, PatientRecord
from smartapp.findings import Evidence
from smartapp.triggers import rules
from smartapp.triggers.common import Evaluation, current_diagnoses


def nodal_only(d: Diagnosis) -> bool:
    """The diagnosis is about lymph nodes only: coded C77 without a distant code, or worded so."""
    icd10 = [c.code.upper() for c in d.codes if c.short_system == "icd10"]
    if any(code.startswith(("C78", "C79", "C7B")) for code in icd10):
        return False
    if any(code.startswith("C77") for code in icd10):
        return True
    text = d.source.text
    return bool(
        rules.pattern("common", "nodal_words").search(text)
        and not rules.pattern("common", "distant_site_words").search(text)
    )


def distant_disease(record: PatientRecord, evaluation: Evaluation) -> list[Evidence]:
    """Evidence of distant metastatic disease by as_of; empty when there is none. Several rules ask
    (guideline checks, response and biomarker notes): found once per evaluation."""
    return list(evaluation.once("distant", record, _distant_disease))


def _distant_disease(record: PatientRecord, evaluation: Evaluation) -> list[Evidence]:
    current = current_diagnoses(record, evaluation)
    found = [Evidence.of(d.source) for d in current if d.secondary and not nodal_only(d)]
    stage_iv = rules.pattern("common", "stage_iv_values")
    for m in record.measurements:
        if m.kind in ("stage-group", "stage-m") and stage_iv.search(
            f"{m.value_text} {' '.join(c.display + ' ' + c.code for c in m.value_codes)}"
        ):
            found.append(Evidence.of(m.source))
    metastatic = rules.pattern("common", "metastatic_words")
    for d in current + record.problems:
        stated = f"{d.source.text} {d.stage}".strip()
        if (
            metastatic.search(stated)
            and d.clinical_status not in ("resolved", "inactive")
            and not (nodal_only(d) and not rules.pattern("common", "stage_iv_values").search(d.stage))
        ):
            found.append(Evidence.of(d.source, stated))
    return found
