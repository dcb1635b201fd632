"""Reports and notes: DiagnosticReport, DocumentReference, Observation.valueString, Communication,
CarePlan text.

Narrative is gathered from presentedForm / content attachments (deduplicated by URL, as US Core exposes
the same scanned report through both DiagnosticReport and DocumentReference), text.div, conclusion and note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fhirmaps import codes
from fhirmaps.direct_init import direct_init
from fhirmaps.elements import (
    Json,
    as_list,
    code_set,
    codes_of,
    concept_text,
    first_date,
    ref_of,
    reference,
)
from fhirmaps.narrative import (
    Attachments,
    Section,
    attachment_bytes,
    binary_key,
    decode_bytes,
    html_to_text,
    split_sections,
)
from fhirmaps.record import ClinicalText, TextKind


@direct_init
@dataclass(frozen=True)
class Chunk:
    """One section of narrative waiting for NLP."""

    report: ClinicalText
    path: str
    section: Section


@dataclass
class NarrativeSources:
    binaries: Mapping[str, tuple[bytes, str]]
    fetched: Attachments
    seen_urls: set[str]
    issues: list[dict[str, str]]


def classify(resource: Json) -> TextKind:
    """pathology | imaging | note, by category first, then code, then title words (vendors mislabel codes)."""
    cfg = codes.load("reports")
    categories = code_set(resource.get("category"))
    if resource.get("resourceType") == "DocumentReference":
        categories |= code_set(resource.get("type"))
    type_codes = code_set(resource.get("code")) | code_set(resource.get("type"))
    if categories & set(cfg["pathology_categories"]) or type_codes & set(cfg["pathology_codes"]):
        return "pathology"
    if categories & set(cfg["imaging_categories"]) or type_codes & set(cfg["imaging_codes"]):
        return "imaging"
    words = " ".join(
        [
            concept_text(resource.get("code")),
            concept_text(resource.get("type")),
            str(resource.get("description", "")),
        ]
    ).lower()
    if any(w in words for w in cfg["pathology_words"]):
        return "pathology"
    if any(w in f" {words} " for w in cfg["imaging_words"]):
        return "imaging"
    return "note"


def read_report(resource: Json, sources: NarrativeSources) -> tuple[ClinicalText, list[Chunk]]:
    rtype = str(resource.get("resourceType"))
    kind: TextKind = classify(resource) if rtype in ("DiagnosticReport", "DocumentReference") else "note"
    title = (
        concept_text(resource.get("code"))
        or concept_text(resource.get("type"))
        or str(resource.get("description", ""))
    )
    when = first_date(
        resource, "effectiveDateTime", "effectivePeriod", "issued", "date", "sent", "authored", "created"
    )
    if when is None and isinstance(resource.get("context"), dict):
        when = first_date(resource["context"], "period")
    specimens = tuple(
        sorted(
            {reference(s) for s in as_list(resource.get("specimen")) if reference(s)}
            | {
                str(i.get("value"))
                for i in as_list(resource.get("identifier"))
                if isinstance(i, dict) and i.get("value")
            }
        )
    )
    report = ClinicalText(
        reference=ref_of(resource),
        kind=kind,
        status=str(resource.get("status", "")).lower(),
        title=title,
        when=when,
        codes=tuple(codes_of(resource.get("code")) + codes_of(resource.get("type"))),
        conclusion_codes=tuple(c for cc in as_list(resource.get("conclusionCode")) for c in codes_of(cc)),
        specimens=specimens,
        author_is_patient=rtype == "Communication"
        and reference(resource.get("sender")).startswith("Patient/"),
    )
    texts: list[tuple[str, str]] = []
    for path, attachment in attachment_slots(resource):
        text = _attachment_text(report.reference, path, attachment, sources)
        if text:
            texts.append((path, text))
    if isinstance(resource.get("conclusion"), str):
        texts.append(
            (
                f"{rtype}.conclusion",
                f"CONCLUSION: {resource['conclusion']}" if kind != "note" else resource["conclusion"],
            )
        )
    if rtype == "Observation" and isinstance(resource.get("valueString"), str):
        texts.append(("Observation.valueString", resource["valueString"]))
    for i, payload in enumerate(as_list(resource.get("payload"))):
        if isinstance(payload, dict) and isinstance(payload.get("contentString"), str):
            texts.append((f"Communication.payload[{i}].contentString", payload["contentString"]))
    if rtype == "CarePlan":
        for key in ("title", "description"):
            if isinstance(resource.get(key), str):
                texts.append((f"CarePlan.{key}", resource[key]))
        for i, activity in enumerate(as_list(resource.get("activity"))):
            detail = activity.get("detail", {}) if isinstance(activity, dict) else {}
            if isinstance(detail.get("description"), str):
                texts.append((f"CarePlan.activity[{i}].detail.description", detail["description"]))
    for i, note in enumerate(as_list(resource.get("note"))):
        if isinstance(note, dict) and isinstance(note.get("text"), str):
            texts.append((f"{rtype}.note[{i}].text", note["text"]))
    narrative: Json = resource["text"] if isinstance(resource.get("text"), dict) else {}
    div = narrative.get("div")
    attached = any(".presentedForm" in p or ".content[" in p for p, _ in texts)
    # status "generated" means the div only renders the structured elements (Synthea, most servers):
    # not a report.
    authored = narrative.get("status") != "generated"
    if (
        isinstance(div, str)
        and authored
        and not attached
        and (rtype in ("DiagnosticReport", "DocumentReference", "Observation") or not texts)
    ):
        # text.div often repeats structured content, but report resources without an attachment keep the whole
        # narrative there (mCODE examples), so read it for them.
        div_text = html_to_text(div)
        if div_text and not any(div_text.strip() == t.strip() for _, t in texts):
            texts.append((f"{rtype}.text.div", div_text))
    texts = _capped(report, texts, sources)
    report.text = "\n\n".join(t for _, t in texts)
    default = "body" if kind != "note" or rtype == "Observation" else "note"
    if rtype == "Observation":
        # Pathology panels split the report into coded parts (LOINC 22636-5 relevant history,
        # 22634-0 gross...).
        by_code = codes.load("reports")["observation_sections"]
        default = next((by_code[c] for c in sorted(code_set(resource.get("code"))) if c in by_code), default)
    chunks = [Chunk(report, path, s) for path, text in texts for s in split_sections(text, default)]
    return report, chunks


# A document is read up to DOCUMENT_CHARS (about 60 pages; the longest real reports and discharge
# summaries are a fraction of that). Beyond it a document is broken or hostile (spaCy refuses more than
# 1,000,000 characters per Doc), so the rest is not read and a data issue says so.
DOCUMENT_CHARS = 200_000


def _capped(
    report: ClinicalText, texts: list[tuple[str, str]], sources: NarrativeSources
) -> list[tuple[str, str]]:
    total = sum(len(t) for _, t in texts)
    if total <= DOCUMENT_CHARS:
        return texts
    kept: list[tuple[str, str]] = []
    room = DOCUMENT_CHARS
    for path, text in texts:
        if room > 0:
            kept.append((path, text[:room]))
        room -= len(text)
    sources.issues.append(
        {
            "resource": report.reference,
            "reason": (
                f"{document_name(report)} is {_size(total)} long; "
                f"only the first {DOCUMENT_CHARS:,} characters were read, "
                "and anything after them was not assessed."
            ),
        }
    )
    return kept


def document_name(report: ClinicalText) -> str:
    """'Surgical pathology report of 03/02/2026' in words, for messages (no ids)."""
    kind = {"pathology": "pathology report", "imaging": "imaging report"}.get(report.kind, "note")
    name = f"{report.title} ({kind})" if report.title else kind.capitalize()
    when = report.when
    return f"{name} of {when.month:02d}/{when.day:02d}/{when.year}" if when else f"{name} (undated)"


def _size(chars: int) -> str:
    return f"{chars / 1_000_000:.1f} million characters" if chars >= 1_000_000 else f"{chars:,} characters"


def attachment_slots(resource: Json) -> list[tuple[str, Json]]:
    """(FHIRPath, attachment) of every attachment a report, document or message carries."""
    rtype = resource.get("resourceType")
    found: list[tuple[str, Json]] = []
    for i, form in enumerate(as_list(resource.get("presentedForm"))):
        if isinstance(form, dict):
            found.append((f"{rtype}.presentedForm[{i}]", form))
    for i, content in enumerate(as_list(resource.get("content"))):
        if isinstance(content, dict) and isinstance(content.get("attachment"), dict):
            found.append((f"{rtype}.content[{i}].attachment", content["attachment"]))
    for i, payload in enumerate(as_list(resource.get("payload"))):
        if isinstance(payload, dict) and isinstance(payload.get("contentAttachment"), dict):
            found.append((f"{rtype}.payload[{i}].contentAttachment", payload["contentAttachment"]))
    return found


def _attachment_text(ref: str, path: str, attachment: Json, sources: NarrativeSources) -> str:
    url = attachment.get("url")
    if isinstance(url, str) and url:
        key = binary_key(url)
        if key in sources.seen_urls:
            return ""
        sources.seen_urls.add(key)
    raw = attachment_bytes(attachment, sources.binaries, sources.fetched)
    if raw is None:
        if url:
            sources.issues.append(
                {
                    "resource": ref,
                    "reason": (
                        f"Report text at {path} was not available to read; its narrative was not assessed."
                    ),
                }
            )
        return ""
    try:
        return decode_bytes(raw[0], raw[1])
    except ValueError as exc:
        sources.issues.append(
            {
                "resource": ref,
                "reason": f"Report text at {path} could not be read: {exc}; its narrative was not assessed.",
            }
        )
        return ""


def attachment_urls(resource: Json) -> list[tuple[str, str]]:
    """(url, contentType) of attachments that are neither inline nor a Binary reference."""
    out = []
    for _, attachment in attachment_slots(resource):
        url = attachment.get("url")
        if isinstance(url, str) and url and not attachment.get("data"):
            out.append((url, str(attachment.get("contentType") or "")))
    return out


def binary_map(resources: Sequence[Json]) -> dict[str, tuple[bytes, str]]:
    """Decoded Binary resources of the input, keyed "Binary/<id>" as reports reference them."""
    return {
        f"Binary/{r.get('id')}": c
        for r in resources
        if r.get("resourceType") == "Binary"
        for c in [binary_content(r)]
        if c
    }


def binary_content(resource: Json) -> tuple[bytes, str] | None:
    """Decoded bytes of a Binary resource."""
    import base64
    import binascii

    data: Any = resource.get("data") or resource.get("content")
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data), str(resource.get("contentType") or "")
    except (binascii.Error, ValueError):
        return None
