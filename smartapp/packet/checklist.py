"""The records checklist: what a receiving center asks for (domain §12.3), each item found in the
record (with its reference) or still to gather."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from fhirmaps.record import PatientRecord
from smartapp.packet.model import CATEGORY_LABELS, ChecklistItem
from smartapp.packet.treatment import treatment_so_far
from smartapp.record_loader import report_category_name

Json = dict[str, Any]
# LOINC document types of operative / procedure notes.
OPERATIVE_NOTE_TYPES = frozenset({"11504-8", "28570-0", "34137-0"})
# LOINC document types of pathology reports filed as documents (outside reports are often scanned).
PATHOLOGY_DOCUMENT_TYPES = frozenset({"11526-1", "60568-3", "22637-3"})


def build_checklist(resources: Sequence[Json], record: PatientRecord) -> list[ChecklistItem]:
    items: list[ChecklistItem] = []
    items += slide_items(resources)
    reports = [r for r in resources if r.get("resourceType") == "DiagnosticReport"]
    pathology = [r for r in reports if report_category_name(r) == "Pathology"]
    radiology = [r for r in reports if report_category_name(r) == "Radiology"]
    documents = [r for r in resources if r.get("resourceType") == "DocumentReference"]
    pathology += [r for r in documents if _codes(r.get("type")) & PATHOLOGY_DOCUMENT_TYPES]
    items += _per_resource("pathology-report", pathology, "Pathology report") or [_missing("pathology-report")]
    studies = [r for r in resources if r.get("resourceType") == "ImagingStudy"]
    imaging = _per_resource("imaging", studies, "Imaging study (images)") + _per_resource("imaging", radiology, "Imaging report")
    items += imaging or [_missing("imaging")]
    items += lab_items(resources, record)
    notes = [r for r in documents if _codes(r.get("type")) & OPERATIVE_NOTE_TYPES]
    items += _per_resource("operative-note", notes, "Operative note") or [
        _missing("operative-note", "Operative notes: none in the record; gather them if the patient had surgery.")
    ]
    items += treatment_items(record) or [_missing("treatment")]
    coverage = [r for r in resources if r.get("resourceType") == "Coverage"]
    items += _per_resource("insurance", coverage, "Insurance coverage") or [_missing("insurance")]
    return items


def slide_items(resources: Sequence[Json]) -> list[ChecklistItem]:
    """One item per specimen, naming its accession and block ids. Slides and blocks are physical:
    the record can only say which ones to request from the releasing laboratory."""
    items = []
    for specimen in (r for r in resources if r.get("resourceType") == "Specimen"):
        accession = _value(specimen.get("accessionIdentifier") or {})
        blocks = [_value(i) for c in specimen.get("container") or [] for i in c.get("identifier") or [] if _value(i)]
        kind = _text(specimen.get("type")) or "Specimen"
        detail = f"Accession {accession or 'not recorded'}"
        if blocks:
            detail += "; blocks " + ", ".join(blocks)
        items.append(ChecklistItem(
            id=f"slides:Specimen/{specimen.get('id')}", category="slides", status="found",
            label=f"Glass slides and blocks: {kind}", detail=detail, reference=f"Specimen/{specimen.get('id')}",
        ))
    if items:
        return items
    accessions = sorted({
        _value(i) for r in resources if r.get("resourceType") == "DiagnosticReport" and report_category_name(r) == "Pathology"
        for i in r.get("identifier") or [] if "ACSN" in _codes(i.get("type")) and _value(i)
    })
    if accessions:
        return [ChecklistItem(id="slides:accessions", category="slides", status="to-gather",
                              label="Glass slides and blocks", detail="Accession " + ", ".join(accessions) +
                              "; no specimen record: ask the pathology laboratory for the block ids.")]
    return [_missing("slides", "Glass slides and blocks: no specimen or accession number in the record; "
                               "ask the pathology laboratory.")]


def lab_items(resources: Sequence[Json], record: PatientRecord) -> list[ChecklistItem]:
    markers: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for m in record.measurements:
        if m.kind == "tumor-marker":
            markers[m.name].append((m.when.isoformat() if m.when else "", m.source.reference))
    items = []
    for name, values in sorted(markers.items()):
        values.sort()
        when, ref = values[-1]
        items.append(ChecklistItem(id=f"labs:marker:{name}", category="labs", status="found", reference=ref,
                                   label=f"Tumor marker trend: {name}", detail=f"{len(values)} result(s), latest {when or 'undated'}"))
    labs = [r for r in resources if r.get("resourceType") == "Observation" and "laboratory" in _codes_list(r.get("category"))]
    marker_refs = {ref for values in markers.values() for _, ref in values}
    other = [r for r in labs if f"Observation/{r.get('id')}" not in marker_refs]
    if other:
        latest = max(other, key=lambda r: str(r.get("effectiveDateTime", "")))
        items.append(ChecklistItem(id="labs:other", category="labs", status="found", reference=f"Observation/{latest.get('id')}",
                                   label="Laboratory results", detail=f"{len(other)} other result(s), latest {str(latest.get('effectiveDateTime', ''))[:10]}"))
    return items or [_missing("labs")]


def treatment_items(record: PatientRecord) -> list[ChecklistItem]:
    return [
        ChecklistItem(id=f"treatment:{line.reference}:{n}", category="treatment", status="found",
                      label=f"Treatment record: {line.text}", detail=f"{line.status} {line.date}".strip(),
                      reference=line.reference)
        for n, line in enumerate(treatment_so_far(record))
    ]


def _per_resource(category: str, resources: Sequence[Json], what: str) -> list[ChecklistItem]:
    items = []
    for resource in resources:
        ref = f"{resource['resourceType']}/{resource.get('id')}"
        title = _text(resource.get("code")) or _text(resource.get("type")) or _text(resource.get("description")) or what
        when = str(resource.get("effectiveDateTime") or resource.get("started") or resource.get("date") or "")[:10]
        items.append(ChecklistItem(id=f"{category}:{ref}", category=category, status="found",  # type: ignore[arg-type]
                                   label=f"{what}: {title}", detail=when, reference=ref))
    return items


def _missing(category: str, label: str = "") -> ChecklistItem:
    return ChecklistItem(id=f"{category}:missing", category=category, status="to-gather",  # type: ignore[arg-type]
                         label=label or f"{CATEGORY_LABELS[category]}: none found in the record")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if value.get("text"):
            return str(value["text"])
        for coding in value.get("coding") or []:
            if coding.get("display"):
                return str(coding["display"])
    return ""


def _value(identifier: Any) -> str:
    return str(identifier.get("value", "")) if isinstance(identifier, dict) else ""


def _codes(concept: Any) -> set[str]:
    return {str(c.get("code")) for c in (concept or {}).get("coding") or [] if isinstance(c, dict)} if isinstance(concept, dict) else set()


def _codes_list(concepts: Any) -> set[str]:
    return {code for concept in concepts or [] for code in _codes(concept)}
