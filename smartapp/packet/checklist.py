"""The records checklist: what a receiving center asks for (domain §12.3). Each item is attached
(its text travels with the packet), to request from a named holder (glass slides and blocks from
the originating laboratory, a report whose text the EHR did not give us), or still to gather;
the coordinator may also mark one not applicable."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from fhirmaps.elements import parse_date, reference
from fhirmaps.record import PatientRecord
from smartapp.chart_reader import report_category_name
from smartapp.packet.intake import index, obj, objs, person_name
from smartapp.packet.model import CATEGORY_LABELS, Attachment, ChecklistCategory, ChecklistItem, ItemStatus
from smartapp.packet.treatment import treatment_so_far
from smartapp.wording import us_date

Json = dict[str, Any]
# LOINC document types of operative / procedure notes.
OPERATIVE_NOTE_TYPES = frozenset({"11504-8", "28570-0", "34137-0"})
# LOINC document types of pathology reports filed as documents (outside reports are often scanned).
PATHOLOGY_DOCUMENT_TYPES = frozenset({"11526-1", "60568-3", "22637-3"})


LAB_HOLDER = "the pathology laboratory that processed the specimen"


def build_checklist(
    resources: Sequence[Json],
    record: PatientRecord,
    everything: Sequence[Json] = (),
    attachments: Sequence[Attachment] = (),
) -> list[ChecklistItem]:
    """`resources` are the patient's own, `everything` the whole input (performers, organizations);
    `attachments` the report texts that travel with the packet."""
    holders = Holders(everything or resources, {a.reference for a in attachments})
    items: list[ChecklistItem] = []
    items += slide_items(resources, holders)
    reports = [r for r in resources if r.get("resourceType") == "DiagnosticReport"]
    pathology = [r for r in reports if report_category_name(r) == "Pathology"]
    radiology = [r for r in reports if report_category_name(r) == "Radiology"]
    documents = [r for r in resources if r.get("resourceType") == "DocumentReference"]
    pathology += [r for r in documents if _codes(r.get("type")) & PATHOLOGY_DOCUMENT_TYPES]
    items += _per_resource("pathology-report", pathology, "Pathology report", holders) or [
        _missing("pathology-report")
    ]
    studies = [r for r in resources if r.get("resourceType") == "ImagingStudy"]
    imaging = [_images(study, holders) for study in studies] + _per_resource(
        "imaging", radiology, "Imaging report", holders
    )
    items += imaging or [_missing("imaging")]
    items += lab_items(resources, record)
    notes = [r for r in documents if _codes(r.get("type")) & OPERATIVE_NOTE_TYPES]
    items += _per_resource("operative-note", notes, "Operative note", holders) or [
        _missing(
            "operative-note", "Operative notes: none in the record; gather them if the patient had surgery."
        )
    ]
    items += treatment_items(record) or [_missing("treatment")]
    coverage = [r for r in resources if r.get("resourceType") == "Coverage"]
    items += [
        ChecklistItem(
            id=f"insurance:Coverage/{c.get('id')}",
            category="insurance",
            status="attached",
            label="Insurance coverage",
            detail="Payer, plan and member id (see Insurance)",
            reference=f"Coverage/{c.get('id')}",
        )
        for c in coverage
    ] or [_missing("insurance")]
    return items


class Holders:
    """Who holds what the record only points at: the performer of a report, the laboratory of a specimen."""

    def __init__(self, resources: Sequence[Json], attached: set[str]) -> None:
        self.by_ref = index(resources)
        self.attached = attached
        self.reports = [r for r in resources if r.get("resourceType") == "DiagnosticReport"]

    def name(self, value: object) -> str:
        """The first organization among the performers (the laboratory holds the material), else a person."""
        performers = objs(value)
        performers.sort(key=lambda p: 0 if reference(p).startswith("Organization/") else 1)
        for performer in performers:
            target = self.by_ref.get(reference(performer), {})
            found = (
                str(target.get("name") or "")
                if target.get("resourceType") == "Organization"
                else person_name(target.get("name"))
            )
            if found or performer.get("display"):
                return found or str(performer["display"])
        return ""

    def of_report(self, report: Json) -> str:
        return (
            self.name(report.get("performer"))
            or self.name(report.get("author"))
            or self.name(report.get("custodian"))
        )

    def of_specimen(self, specimen_ref: str) -> str:
        for report in self.reports:
            if specimen_ref in {reference(s) for s in objs(report.get("specimen"))}:
                holder = self.of_report(report)
                if holder:
                    return holder
        return ""


def slide_items(resources: Sequence[Json], holders: Holders | None = None) -> list[ChecklistItem]:
    """One item per specimen, naming its accession and block ids and when it was collected. Slides
    and blocks are physical: they are requested from the laboratory that holds them."""
    holders = holders or Holders(resources, set())
    items = []
    for specimen in (r for r in resources if r.get("resourceType") == "Specimen"):
        ref = f"Specimen/{specimen.get('id')}"
        accession = _value(specimen.get("accessionIdentifier") or {})
        blocks = [
            _value(i) for c in objs(specimen.get("container")) for i in objs(c.get("identifier")) if _value(i)
        ]
        kind = _text(specimen.get("type")) or "Specimen"
        detail = f"Accession {accession or 'not recorded'}"
        if blocks:
            detail += "; blocks " + ", ".join(blocks)
        collection = obj(specimen.get("collection"))
        collected = parse_date(collection.get("collectedDateTime")) or parse_date(
            specimen.get("receivedTime")
        )
        if collected:
            detail += f"; collected {us_date(collected)}"
        items.append(
            ChecklistItem(
                id=f"slides:{ref}",
                category="slides",
                status="to-request",
                holder=holders.of_specimen(ref) or LAB_HOLDER,
                label=f"Glass slides and blocks: {kind}",
                detail=detail,
                reference=ref,
            )
        )
    if items:
        return items
    accessions = sorted(
        {
            _value(i)
            for r in resources
            if r.get("resourceType") == "DiagnosticReport" and report_category_name(r) == "Pathology"
            for i in r.get("identifier") or []
            if "ACSN" in _codes(i.get("type")) and _value(i)
        }
    )
    if accessions:
        return [
            ChecklistItem(
                id="slides:accessions",
                category="slides",
                status="to-request",
                holder=LAB_HOLDER,
                label="Glass slides and blocks",
                detail="Accession "
                + ", ".join(accessions)
                + "; no specimen record: ask the pathology laboratory for the block ids.",
            )
        ]
    return [
        _missing(
            "slides",
            "Glass slides and blocks: no specimen or accession number in the record; "
            "ask the pathology laboratory.",
        )
    ]


def lab_items(resources: Sequence[Json], record: PatientRecord) -> list[ChecklistItem]:
    markers: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for m in record.measurements:
        if m.kind == "tumor-marker":
            markers[m.name].append((m.when.isoformat() if m.when else "", m.source.reference))
    items = []
    for name, values in sorted(markers.items()):
        values.sort()
        when, ref = values[-1]
        items.append(
            ChecklistItem(
                id=f"labs:marker:{name}",
                category="labs",
                status="attached",
                reference=ref,
                label=f"Tumor marker trend: {name}",
                detail=f"{len(values)} result(s), latest {_date(when)}",
            )
        )
    labs = [
        r
        for r in resources
        if r.get("resourceType") == "Observation" and "laboratory" in _codes_list(r.get("category"))
    ]
    marker_refs = {ref for values in markers.values() for _, ref in values}
    other = [r for r in labs if f"Observation/{r.get('id')}" not in marker_refs]
    if other:
        latest = max(other, key=lambda r: str(r.get("effectiveDateTime", "")))
        items.append(
            ChecklistItem(
                id="labs:other",
                category="labs",
                status="attached",
                reference=f"Observation/{latest.get('id')}",
                label="Laboratory results",
                detail=f"{len(other)} other result(s), latest {_date(latest.get('effectiveDateTime'))}",
            )
        )
    return items or [_missing("labs")]


def treatment_items(record: PatientRecord) -> list[ChecklistItem]:
    return [
        ChecklistItem(
            id=f"treatment:{line.reference}:{n}",
            category="treatment",
            status="attached",
            label=f"Treatment record: {line.text}",
            detail=f"{line.status} {_date(line.date) if line.date else ''}".strip(),
            reference=line.reference,
        )
        for n, line in enumerate(treatment_so_far(record))
    ]


def _per_resource(
    category: ChecklistCategory, resources: Sequence[Json], what: str, holders: Holders
) -> list[ChecklistItem]:
    """A report is attached when its text travels with the packet, else requested from its author."""
    items = []
    for resource in resources:
        ref = f"{resource['resourceType']}/{resource.get('id')}"
        title = (
            _text(resource.get("code"))
            or _text(resource.get("type"))
            or _text(resource.get("description"))
            or what
        )
        when = _date(resource.get("effectiveDateTime") or resource.get("started") or resource.get("date"))
        holder = "" if ref in holders.attached else holders.of_report(resource)
        status: ItemStatus = (
            "attached" if ref in holders.attached else "to-request" if holder else "to-gather"
        )
        items.append(
            ChecklistItem(
                id=f"{category}:{ref}",
                category=category,
                status=status,
                label=f"{what}: {title}",
                detail=when,
                holder=holder,
                reference=ref,
            )
        )
    return items


def _images(study: Json, holders: Holders) -> ChecklistItem:
    """Images travel on disc or by an image-sharing service, never inside the packet."""
    ref = f"ImagingStudy/{study.get('id')}"
    title = (
        _text(study.get("description"))
        or _text((objs(study.get("procedureCode")) or [{}])[0])
        or "Imaging study"
    )
    holder = holders.name(study.get("location"))
    return ChecklistItem(
        id=f"imaging:{ref}",
        category="imaging",
        status="to-request",
        holder=holder or "the imaging department that performed the study",
        label=f"Imaging study (DICOM images on disc or by image sharing): {title}",
        detail=_date(study.get("started")),
        reference=ref,
    )


def _date(value: object) -> str:
    when = parse_date(value)
    return us_date(when) if when else "undated"


def _missing(category: ChecklistCategory, label: str = "") -> ChecklistItem:
    return ChecklistItem(
        id=f"{category}:missing",
        category=category,
        status="to-gather",
        label=label or f"{CATEGORY_LABELS[category]}: none found in the record",
    )


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
    return (
        {str(c.get("code")) for c in (concept or {}).get("coding") or [] if isinstance(c, dict)}
        if isinstance(concept, dict)
        else set()
    )


def _codes_list(concepts: Any) -> set[str]:
    return {code for concept in concepts or [] for code in _codes(concept)}
