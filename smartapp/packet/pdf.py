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

from smartapp.packet.model import ReferralPacket
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
    return environment


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return add_filters(
        Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    )


def render_html(packet: ReferralPacket) -> str:
    """The printable HTML document (packet_print.html wraps packet_document.html)."""
    return _environment().get_template("packet_print.html").render(packet=packet)


def render_pdf(packet: ReferralPacket) -> bytes:
    # Imported here: WeasyPrint loads pango at import time, which only PDF output needs.
    from weasyprint import CSS, HTML

    document = HTML(string=render_html(packet), base_url=str(WEB_DIR))
    with _RENDER_LOCK:
        pdf: bytes = document.write_pdf(stylesheets=[CSS(filename=str(STYLESHEET))], pdf_variant="pdf/ua-1")
    return pdf
