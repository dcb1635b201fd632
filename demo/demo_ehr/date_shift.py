"""Keeps the demo charts' stories true on any day: every date in a fixture moves by the days between
the day the charts were written for (FIXTURE_DAY) and the day the demo starts, so "surgery in 3 days"
is always in 3 days. Dates inside text attachments (inline or Binary) move too; PDFs are left as they are."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import date, timedelta
from typing import Any

FIXTURE_DAY = date(2026, 11, 25)  # the "today" of fixtures/patients/README.md
_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_US = re.compile(r"(?<!\d)(\d{1,2})/(\d{1,2})/(\d{4})(?!\d)")
_NAMES = frozenset({"id", "reference", "fullUrl", "url", "system"})
_TEXT_TYPES = ("text/", "application/xhtml", "application/rtf", "application/json")


def shift_resource(resource: Any, days: int) -> Any:
    """A copy of a FHIR resource (any JSON value) with every date moved by `days`."""
    if days == 0:
        return resource
    if isinstance(resource, dict):
        # Ids and references keep their text (some ids carry a date), so every reference still resolves.
        out = {
            key: value if key in _NAMES else shift_resource(value, days) for key, value in resource.items()
        }
        content_type = str(out.get("contentType", ""))
        if isinstance(out.get("data"), str) and content_type.startswith(_TEXT_TYPES):
            out["data"] = _shift_base64(out["data"], days)
        return out
    if isinstance(resource, list):
        return [shift_resource(item, days) for item in resource]
    if isinstance(resource, str):
        return shift_text(resource, days)
    return resource


def shift_text(text: str, days: int) -> str:
    def iso(match: re.Match[str]) -> str:
        moved = _move(int(match.group(1)), int(match.group(2)), int(match.group(3)), days)
        return moved.isoformat() if moved else match.group(0)

    def us(match: re.Match[str]) -> str:
        moved = _move(int(match.group(3)), int(match.group(1)), int(match.group(2)), days)
        return f"{moved.month:02d}/{moved.day:02d}/{moved.year}" if moved else match.group(0)

    return _US.sub(us, _ISO.sub(iso, text))


def days_to(today: date | None) -> int:
    return (today - FIXTURE_DAY).days if today else 0


def _move(year: int, month: int, day: int, days: int) -> date | None:
    try:
        return date(year, month, day) + timedelta(days=days)
    except ValueError:
        return None


def _shift_base64(data: str, days: int) -> str:
    try:
        text = base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return data
    return base64.b64encode(shift_text(text, days).encode("utf-8")).decode("ascii")
