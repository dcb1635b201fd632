"""The full text of a source document for the viewer, with the evidence found in it."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from fhirmaps.elements import concept_text, parse_date, system_name
from fhirmaps.narrative import binary_key
from fhirmaps.reports import NarrativeSources, binary_map, read_report
from smartapp.chart_reader import ChartSnapshot
from smartapp.wording import resource_words, us_date

NARRATIVE_TYPES = {"DiagnosticReport", "DocumentReference", "Observation", "Communication", "Composition"}


@dataclass
class SourceDocument:
    reference: str
    title: str
    date: str
    text: str
    attachments: list[tuple[int, str]]  # (index, content type)


def find_resource(snapshot: ChartSnapshot, rtype: str, rid: str) -> dict[str, Any] | None:
    return next(
        (r for r in snapshot.resources if r.get("resourceType") == rtype and r.get("id") == rid), None
    )


def attachments_of(resource: dict[str, Any]) -> list[dict[str, Any]]:
    found = [f for f in resource.get("presentedForm") or [] if isinstance(f, dict)]
    found += [
        c["attachment"]
        for c in resource.get("content") or []
        if isinstance(c, dict) and isinstance(c.get("attachment"), dict)
    ]
    return found


def attachment_bytes(snapshot: ChartSnapshot, attachment: dict[str, Any]) -> tuple[bytes, str] | None:
    ctype = str(attachment.get("contentType") or "application/octet-stream")
    if attachment.get("data"):
        try:
            return base64.b64decode(str(attachment["data"]), validate=False), ctype
        except (binascii.Error, ValueError):
            return None
    url = attachment.get("url")
    if not isinstance(url, str):
        return None
    if url in snapshot.attachments:
        return snapshot.attachments[url]
    return binary_map(snapshot.resources).get(binary_key(url))


def load_document(snapshot: ChartSnapshot, resource: dict[str, Any]) -> SourceDocument:
    rtype = str(resource.get("resourceType"))
    reference = f"{rtype}/{resource.get('id')}"
    text = ""
    title = ""
    when = ""
    if rtype in NARRATIVE_TYPES:
        sources = NarrativeSources(binary_map(snapshot.resources), snapshot.attachments, set(), [])
        report, _chunks = read_report(resource, sources)
        text, title = report.text, report.title
        when = report.when.isoformat() if report.when else ""
    else:
        when = str(
            resource.get("effectiveDateTime")
            or resource.get("onsetDateTime")
            or resource.get("authoredOn")
            or resource.get("recordedDate")
            or resource.get("performedDateTime")
            or resource.get("issued")
            or ""
        )
    if not text:
        text = coded_text(resource)
        title = (
            title
            or concept_text(resource.get("code") or resource.get("medicationCodeableConcept"))
            or resource_words(reference)
        )
    attachments = [(i, str(a.get("contentType") or "")) for i, a in enumerate(attachments_of(resource))]
    return SourceDocument(
        reference,
        title or resource_words(reference),
        us_date(parse_date(when)) if when else "",
        text,
        attachments,
    )


_SKIPPED = frozenset(
    {
        "resourceType",
        "id",
        "meta",
        "text",
        "subject",
        "patient",
        "identifier",
        "contained",
        "encounter",
        "presentedForm",
        "content",
        "implicitRules",
        "language",
    }
)


def coded_text(resource: dict[str, Any]) -> str:
    """A coded resource as lines a clinician can read ("Code: Acute myeloid leukemia (ICD-10-CM C92.00)"),
    not raw JSON."""
    lines = []
    for key, value in resource.items():
        if key in _SKIPPED:
            continue
        shown = _readable(value)
        if shown:
            label = re.sub(r"(?<!^)(?=[A-Z])", " ", key).lower().capitalize()
            lines.append(f"{label}: {shown}")
    return "\n".join(lines)


def _readable(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(t for t in (_readable(v) for v in value) if t)
    if isinstance(value, dict):
        if "coding" in value or "text" in value and len(value) <= 2:
            codes = ", ".join(
                f"{system_name(str(c.get('system', '')))} {c.get('code')}".strip()
                for c in value.get("coding") or []
                if isinstance(c, dict) and c.get("code")
            )
            words = concept_text(value)
            return f"{words} ({codes})" if words and codes else words or codes
        if "reference" in value or "display" in value:
            return str(value.get("display") or resource_words(str(value.get("reference", ""))))
        if "value" in value and ("unit" in value or "code" in value):
            return f"{value.get('value')} {value.get('unit') or value.get('code') or ''}".strip()
        if "start" in value or "end" in value:
            return " to ".join(_readable(value.get(k)) for k in ("start", "end") if value.get(k))
        parts = [
            f"{k}: {t}" for k, v in value.items() if k not in ("url", "extension") and (t := _readable(v))
        ]
        return ", ".join(parts)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and parse_date(value) and re.match(r"\d{4}-\d{2}", value):
        return us_date(parse_date(value))
    return str(value) if isinstance(value, (str, int, float)) else ""


def highlight(text: str, needle: str | None) -> list[tuple[str, bool]]:
    """Splits `text` into (segment, is_evidence) parts; tolerant of whitespace differences."""
    if not needle or not text:
        return [(text, False)]
    words = [re.escape(w) for w in needle.split()]
    if not words:
        return [(text, False)]
    match = re.search(r"\s+".join(words), text)
    if not match:
        return [(text, False)]
    return [(text[: match.start()], False), (match.group(0), True), (text[match.end() :], False)]
