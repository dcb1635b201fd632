"""The report texts a packet carries (copied inline into its `sources` at drafting time), as files:
for the ZIP download, the PDF's appendix and its embedded files."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from fhirmaps.narrative import decode_bytes
from smartapp.packet.model import ReferralPacket

EXTENSIONS = {
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/html": "html",
    "application/rtf": "rtf",
    "text/rtf": "rtf",
    "application/xml": "xml",
    "application/json": "json",
}


@dataclass(frozen=True)
class ReportText:
    title: str
    date: str  # display date, "" when the report has none
    content_type: str
    data: bytes
    number: int  # 1-based, in the letter's order

    @property
    def is_pdf(self) -> bool:
        return self.content_type.split(";")[0].strip().lower() == "application/pdf"

    @property
    def file_name(self) -> str:
        kind = self.content_type.split(";")[0].strip().lower()
        slug = re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")[:60] or "report"
        return f"{self.number:02d}-{slug}.{EXTENSIONS.get(kind, 'bin')}"

    def readable(self) -> str:
        """The text for the PDF appendix; "" when it cannot be shown as text (e.g. an image)."""
        if self.is_pdf:
            return ""
        try:
            return decode_bytes(self.data, self.content_type)
        except ValueError:
            return ""


def report_texts(packet: ReferralPacket) -> list[ReportText]:
    """Every report text held inline in the packet's copies, in the order of `packet.attachments`."""
    by_ref: dict[str, list[tuple[str, bytes]]] = {}
    for resource in packet.sources:
        ref = f"{resource.get('resourceType')}/{resource.get('id')}"
        forms = [*_list(resource.get("presentedForm"))]
        forms += [c.get("attachment") for c in _list(resource.get("content")) if isinstance(c, dict)]
        for form in forms:
            if not isinstance(form, dict) or not isinstance(form.get("data"), str):
                continue
            try:
                data = base64.b64decode(form["data"], validate=True)
            except (binascii.Error, ValueError):
                continue
            by_ref.setdefault(ref, []).append((str(form.get("contentType") or ""), data))
    found: list[ReportText] = []
    for attachment in packet.attachments:
        forms = by_ref.get(attachment.reference) or []
        match = next((f for f in forms if f[0] == attachment.content_type), None)
        if match is None:
            continue
        forms.remove(match)
        found.append(
            ReportText(
                title=attachment.title,
                date=attachment.date,
                content_type=attachment.content_type,
                data=match[1],
                number=len(found) + 1,
            )
        )
    return found


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
