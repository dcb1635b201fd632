"""rare-cancer: a current diagnosis in a RARECARE/JARC rare family (or the broader NCI option)."""

from __future__ import annotations

from fhirmaps.record import Diagnosis, PatientRecord
from smartapp.findings import Evidence, Finding
from smartapp.triggers.common import (
    Evaluation,
    confident,
    current_diagnoses,
    diagnosis_fact,
    reviews_in_record,
)
from smartapp.triggers.spec import TriggerSpec
from smartapp.wording import calm, join, plain_name, sentence

RATIONALE = (
    "Rare cancers (RARECARE/JARC: fewer than 6 new cases per 100,000 per year) are seen by few pathologists "
    "and oncologists; ESMO and the Joint Action on Rare Cancers recommend review at an expert center "
    "(Casali & Trama, ESMO Open 2020). Subspecialty review of outside pathology finds discrepancies in "
    "about 25% of cases, 6% major (MD Anderson, J Oncol Pract 2014)."
)


def rare_label(d: Diagnosis, rare_definition: str) -> str | None:
    """Display label of the rare group, or None when the diagnosis is not rare under the definition."""
    entity, site = d.entity, d.site
    if entity is not None and entity.id in ("sclc", "papillary-thyroid"):
        return None
    if entity is not None and entity.rare:
        return entity.label
    if site is not None and site.rare:
        return site.label
    if rare_definition == "nci":
        if entity is not None and entity.rare_nci:
            return entity.label
        if site is not None and site.rare_nci:
            return site.label
    return None


def evaluate(record: PatientRecord, evaluation: Evaluation) -> Finding | None:
    hits: list[tuple[str, Diagnosis]] = []
    for d in confident(current_diagnoses(record, evaluation)):
        label = rare_label(d, evaluation.rare_definition)
        if label:
            hits.append((label, d))
    if not hits:
        return None
    labels = list(dict.fromkeys(label for label, _ in sorted(hits, key=lambda h: h[0])))
    # "sarcoma" from a site code next to "osteosarcoma" from the histology is one cancer, named once.
    labels = [
        label
        for label in labels
        if not any(label != other and label.lower() in other.lower() for other in labels)
    ]
    noun = "is a rare cancer" if len(labels) == 1 else "are rare cancers"
    summary = sentence(
        f"{join(labels)} {noun}; "
        f"review at a center experienced in {'it' if len(labels) == 1 else 'them'} is recommended"
    )
    facts = [diagnosis_fact(d, label) for label, d in hits]
    evidence = [Evidence.of(d.source) for _, d in hits]
    return SPEC.finding(summary, evidence, facts=facts, reviews=reviews_in_record(record, evaluation))


def _typed(d: Diagnosis) -> bool:
    """The diagnosis names a type or a site: a specific entity, a site, a morphology, a topography or
    an ICD-10 code."""
    specific = d.entity is not None and d.entity.lineage != "generic"
    return specific or bool(
        d.site or d.morphology or d.topography or any(c.short_system == "icd10" for c in d.codes)
    )


def undecided(record: PatientRecord, evaluation: Evaluation) -> str | None:
    """A cancer coded only as a generic malignancy, with no type or site anywhere in the record,
    cannot be judged rare or common."""
    primary = [d for d in confident(current_diagnoses(record, evaluation)) if not d.secondary]
    generic = [
        d
        for d in primary
        if d.origin == "condition" and d.entity is not None and d.entity.id == "generic-malignancy"
    ]
    if not generic or any(_typed(d) for d in primary):
        return None
    named = calm(plain_name(generic[0].source.text.split(" [")[0])) or "malignant neoplasm"
    return sentence(
        f"Whether this is a rare cancer could not be assessed: the cancer is recorded as “{named}”, "
        "without a histologic type"
    )


SPEC = TriggerSpec(
    id="rare-cancer",
    label="Rare cancer",
    short_label="rare cancer",
    group="diagnosis",
    urgency="routine",
    action="clinical-second-opinion",
    review="both",
    rationale=RATIONALE,
    sources=(
        "Casali & Trama, ESMO Open 2020 (RARECARE)",
        "JARC rare cancer families",
        "MD Anderson, J Oncol Pract 2014",
    ),
    rule_source="RARECARE/JARC rare cancer lists",
    question=(
        "Do you confirm the diagnosis of this rare cancer ({topic}) on expert review, "
        "and where should treatment be planned?"
    ),
    rule_data="fhirmaps/codes/entities.json and sites.json (rare flags)",
    evaluate=evaluate,
    undecided=undecided,
)
