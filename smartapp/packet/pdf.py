"""The packet as a PDF, rendered by WeasyPrint from the same Jinja2 template as the on-screen view.

Page numbers, the patient identifiers and, until the packet is final, the DRAFT mark on every
page come from CSS `@page` margin boxes (smartapp/web/static/packet.css), so they cannot drift
from the screen version. The PDF is tagged PDF/UA-1: its structure (headings, lists, tables,
reading order) is the HTML's, and its language and title come from `<html lang>` and `<title>`.
"""

from __future__ import annotations

import threading
from datetime import date
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from smartapp.packet import checklist_order
from smartapp.packet.model import ChecklistItem, ReferralPacket
from smartapp.packet.report_texts import ReportText, report_texts
from smartapp.wording import us_date

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
TEMPLATES = WEB_DIR / "templates"
STYLESHEET = WEB_DIR / "static" / "packet.css"
# Web routes render in worker threads; fontconfig/pango are not safe to drive from several at once.
_RENDER_LOCK = threading.Lock()


def iso_to_us_date(value: str) -> str:
    """An ISO date or date-time as the one date format of letters (the packet stores ISO)."""
    try:
        return us_date(date.fromisoformat(value[:10]))
    except ValueError:
        return value


def add_filters(environment: Environment) -> Environment:
    environment.filters["us_date"] = iso_to_us_date
    environment.globals["checklist_groups"] = checklist_order.groups
    return environment


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return add_filters(
        Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    )


def slide_requests(packet: ReferralPacket) -> list[tuple[str, list[ChecklistItem]]]:
    """Glass slides and blocks to request, grouped by who holds them: one request letter each."""
    by_holder: dict[str, list[ChecklistItem]] = {}
    for item in packet.checklist:
        if item.category == "slides" and item.status == "to-request":
            by_holder.setdefault(item.holder or "The originating pathology laboratory", []).append(item)
    return list(by_holder.items())


def render_html(packet: ReferralPacket, texts: list[ReportText] | None = None) -> str:
    """The printable HTML document: the letter (packet_print.html wraps packet_document.html), a
    request letter per holder of slides and blocks, then the report texts, each on its own page."""
    return (
        _environment()
        .get_template("packet_print.html")
        .render(
            packet=packet,
            slide_requests=slide_requests(packet),
            texts=report_texts(packet) if texts is None else texts,
        )
    )


def render_pdf(packet: ReferralPacket) -> bytes:
    # Imported here: WeasyPrint loads pango at import time, which only PDF output needs.
    from weasyprint import CSS, HTML, Attachment

    texts = report_texts(packet)
    document = HTML(string=render_html(packet, texts), base_url=str(WEB_DIR))
    # PDF reports cannot be shown as text: they are embedded as files, named in the appendix.
    embedded = [Attachment(string=t.data, name=t.file_name, description=t.title) for t in texts if t.is_pdf]
    with _RENDER_LOCK:
        pdf: bytes = document.write_pdf(
            stylesheets=[CSS(filename=str(STYLESHEET))], pdf_variant="pdf/ua-1", attachments=embedded
        )
    return pdf
