"""What incomplete-biomarker cannot decide: a cancer whose predictive biomarkers have no result at
all (no result is not an equivocal result). Invasive breast carcinoma without any HER2 result
(ASCO/CAP: every invasive breast cancer is tested); metastatic non-squamous NSCLC without any
molecular or PD-L1 result (NCCN NSCLC)."""

from __future__ import annotations

import re

from fhirmaps import codes
from fhirmaps.record import PatientRecord
from smartapp.triggers import rules
from smartapp.triggers.common import Evaluation, confident, has_entity, has_icd10, text_has, texts
from smartapp.triggers.extent import distant_disease
from smartapp.wording import sentence

TRIGGER = "incomplete-biomarker"
_SEARCHED = "is in any report, note or observation"


def _invasive_breast(record: PatientRecord, evaluation: Evaluation) -> bool:
    """A current invasive breast carcinoma recorded recently, or with distant disease."""
    found = confident(
        has_entity(record, evaluation, "breast-carcinoma") + has_icd10(record, evaluation, "C50")
    )
    invasive = [d for d in found if d.behavior in (None, "3") and not d.secondary]
    if not invasive:
        return False
    window = rules.value(TRIGGER, "her2_relevant_days")
    recent = any(d.when is not None and (evaluation.as_of - d.when).days <= window for d in invasive)
    return recent or bool(distant_disease(record, evaluation))


def her2_reported(record: PatientRecord, evaluation: Evaluation) -> bool:
    """A HER2 result, order or mention anywhere: an Observation, a report or note line, a test order."""
    if any(m.kind in ("her2-ihc", "her2-ish") for m in record.measurements):
        return True
    names = rules.pattern(TRIGGER, "her2_names")
    if any(names.search(r.text) or names.search(r.title) for r in texts(record, evaluation)):
        return True
    return any(names.search(a.name) for a in record.activities)


def molecular_documented(record: PatientRecord, evaluation: Evaluation) -> bool:
    """A molecular result or order (EGFR, ALK, ROS1, BRAF, KRAS, MET, RET, NTRK, NGS), not a line
    saying it was not done. Asked by guideline check G3 and by the biomarker note: found once."""
    return evaluation.once("molecular", record, _molecular_documented)


def _molecular_documented(record: PatientRecord, evaluation: Evaluation) -> bool:
    terms = codes.load("treatments")["molecular_terms"]
    if any(m.kind == "molecular" for m in record.measurements):
        return True
    if any(
        text_has(a.name, terms) and a.status not in ("entered-in-error", "revoked") for a in record.activities
    ):
        return True
    not_done = rules.pattern("common", "not_done_words")
    return any(
        text_has(line, terms) and not not_done.search(line)
        for r in texts(record, evaluation)
        for line in re.split(r"\n|(?<=\.)\s+", r.text)
    )


def _metastatic_nonsquamous_nsclc(record: PatientRecord, evaluation: Evaluation) -> bool:
    nsclc = has_entity(record, evaluation, "lung-adenocarcinoma", "nsclc-nos")
    return (
        bool(nsclc)
        and not has_entity(record, evaluation, "lung-squamous")
        and bool(distant_disease(record, evaluation))
    )


def undecided(record: PatientRecord, evaluation: Evaluation) -> str | None:
    if _invasive_breast(record, evaluation) and not her2_reported(record, evaluation):
        return sentence(
            "Whether the HER2 work-up is complete could not be assessed: no HER2 result for the invasive "
            f"breast carcinoma {_SEARCHED}"
        )
    if _metastatic_nonsquamous_nsclc(record, evaluation) and not molecular_documented(record, evaluation):
        return sentence(
            "Whether molecular testing is complete could not be assessed: no EGFR, ALK, ROS1 or other "
            f"driver mutation result for the metastatic non-squamous lung cancer {_SEARCHED}"
        )
    return None
