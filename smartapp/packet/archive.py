"""The referral as one ZIP file for centers that take referrals by portal, secure e-mail or disc:
the letter (PDF), the FHIR document (JSON) and every report text the packet carries, with a
contents list that also names what is not in the file and who sends it."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from smartapp.packet.model import ReferralPacket
from smartapp.packet.report_texts import report_texts

LETTER = "referral-letter.pdf"
DOCUMENT = "referral-document.fhir.json"
CONTENTS = "contents.txt"
REPORTS = "reports/"


def build_archive(packet: ReferralPacket, pdf: bytes, bundle: dict[str, Any]) -> bytes:
    texts = report_texts(packet)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            CONTENTS, contents(packet, [(REPORTS + t.file_name, t.title, t.date) for t in texts])
        )
        archive.writestr(LETTER, pdf)
        archive.writestr(DOCUMENT, json.dumps(bundle, indent=1, ensure_ascii=False))
        for text in texts:
            archive.writestr(REPORTS + text.file_name, text.data)
    return buffer.getvalue()


def contents(packet: ReferralPacket, reports: list[tuple[str, str, str]]) -> str:
    """The contents list in words: what each file is, and what travels separately."""
    draft = "" if packet.status == "final" else "DRAFT - not a final referral.\n\n"
    lines = [
        f"{draft}Second-opinion referral"
        + (f" for {packet.patient.name}" if packet.patient.name else "")
        + (f" to {packet.destination.name}" if packet.destination else ""),
        "",
        f"{LETTER}: the referral letter with the reasons, questions, diagnosis, treatment and records "
        "checklist.",
        f"{DOCUMENT}: the same referral as a FHIR R4 document Bundle, with the record's resources it cites.",
    ]
    if reports:
        lines += ["", "Report texts:"]
        lines += [f"{name}: {title}" + (f", {date}" if date else "") for name, title, date in reports]
    else:
        lines += ["", "No report texts were in the record."]
    separate = [item for item in packet.checklist if item.status == "to-request"]
    if separate:
        lines += ["", "Not in this file; requested from the holder:"]
        lines += [
            f"{item.label}" + (f" ({item.detail})" if item.detail else "") + f": from {item.holder}"
            for item in separate
        ]
    return "\n".join(lines) + "\n"
