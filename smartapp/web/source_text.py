"""The full text of a source document for the viewer, with the evidence found in it."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from fhirmaps.narrative import binary_key
from fhirmaps.reports import NarrativeContext, binary_map, read_report
from smartapp.record_loader import PatientRecordSnapshot

NARRATIVE_TYPES = {"DiagnosticReport", "DocumentReference", "Observation", "Communication", "Composition"}


@dataclass
class SourceDocument:
    reference: str
    title: str
    date: str
    text: str
    attachments: list[tuple[int, str]]  # (index, content type)


def find_resource(snapshot: PatientRecordSnapshot, rtype: str, rid: str) -> dict[str, Any] | None:
    return next((r for r in snapshot.resources if r.get("resourceType") == rtype and r.get("id") == rid), None)


def attachments_of(resource: dict[str, Any]) -> list[dict[str, Any]]:
    found = [f for f in resource.get("presentedForm") or [] if isinstance(f, dict)]
    found += [c["attachment"] for c in resource.get("content") or [] if isinstance(c, dict) and isinstance(c.get("attachment"), dict)]
    return found


def attachment_bytes(snapshot: PatientRecordSnapshot, attachment: dict[str, Any]) -> tuple[bytes, str] | None:
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


def load_document(snapshot: PatientRecordSnapshot, resource: dict[str, Any]) -> SourceDocument:
    rtype = str(resource.get("resourceType"))
    reference = f"{rtype}/{resource.get('id')}"
    text = ""
    title = ""
    when = ""
    if rtype in NARRATIVE_TYPES:
        ctx = NarrativeContext(binary_map(snapshot.resources), snapshot.attachments, set(), [])
        report, _chunks = read_report(resource, ctx)
        text, title = report.text, report.title
        when = report.when.isoformat() if report.when else ""
    attachments = [(i, str(a.get("contentType") or "")) for i, a in enumerate(attachments_of(resource))]
    return SourceDocument(reference, title or reference, when, text, attachments)


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
    return [(text[: match.start()], False), (match.group(0), True), (text[match.end():], False)]
