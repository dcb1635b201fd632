"""rare-cancer: a current diagnosis in a RARECARE/JARC rare family (or the broader NCI option)."""

from __future__ import annotations

from fhirmaps.record import Diagnosis, PatientRecord
from smartapp.findings import Evidence, Finding
from smartapp.triggers.common import Context, confident, current_diagnoses

TRIGGER = "rare-cancer"
RATIONALE = (
    "Rare cancers (RARECARE/JARC: fewer than 6 new cases per 100,000 per year) are seen by few pathologists and "
    "oncologists; ESMO and the Joint Action on Rare Cancers recommend review at an expert centre (Casali & Trama, "
    "ESMO Open 2020). Subspecialty review of outside pathology finds discrepancies in about 25% of cases, 6% major "
    "(MD Anderson, J Oncol Pract 2014)."
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


def evaluate(record: PatientRecord, ctx: Context) -> Finding | None:
    hits: list[tuple[str, Diagnosis]] = []
    for d in confident(current_diagnoses(record, ctx)):
        label = rare_label(d, ctx.rare_definition)
        if label:
            hits.append((label, d))
    if not hits:
        return None
    labels = sorted({label for label, _ in hits})
    summary = f"Rare cancer ({', '.join(labels)}): consider review at an expert centre for this tumour type."
    return Finding(TRIGGER, summary, RATIONALE, [Evidence.of(d.source) for _, d in hits])
