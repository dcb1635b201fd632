"""US states: the two-letter codes a directory names, and the state of a patient's address.

Addresses come as the EHR wrote them: "27 Willow Bend Court, Towson, MD 21204" built from a
structured FHIR address, or free text ("Towson, Maryland", "Erie PA 16508-1234, USA"). Only what
reads unambiguously as a state is taken; anything else gives "" (the state is then unknown and
the matcher says so) rather than a guess.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data" / "us_states.toml"

_ZIP = r"\d{5}(?:-\d{4})?"
# "MD 21204", "md. 21204-1234": a two-letter code is trusted in any case when a ZIP code follows.
_CODE_BEFORE_ZIP = re.compile(rf"\b([A-Za-z]{{2}})\.?,?\s+{_ZIP}\b")
_COUNTRY = re.compile(r"[\s,]*\b(?:u\.?s\.?a?\.?|united states(?: of america)?)\s*$", re.IGNORECASE)
_TRAILING_ZIP = re.compile(rf"[\s,]*{_ZIP}\s*$")
# Names people write for a state besides the data file's own.
EXTRA_NAMES = {"washington dc": "DC", "washington d.c.": "DC", "d.c.": "DC", "virgin islands": "VI"}


@cache
def states() -> dict[str, str]:
    """Two-letter code → name, in the data file's order."""
    table = tomllib.loads(DATA.read_text(encoding="utf-8"))["states"]
    return {str(code): str(name) for code, name in table.items()}


def state_name(code: str) -> str:
    return states().get(code, code)


def state_of(address: str) -> str:
    """The two-letter code of the US state in `address`, or "" when none reads clearly."""
    text = _COUNTRY.sub("", " ".join(address.replace("\n", ", ").split()))
    known = [c for m in _CODE_BEFORE_ZIP.finditer(text) if (c := m.group(1).upper()) in states()]
    if known:
        return known[-1]
    # Without "XX 12345": the last comma-separated part (a lone ZIP code dropped) must be the state,
    # as a name ("Maryland") or a capitalised code, alone or after the city ("Towson MD").
    parts = [_TRAILING_ZIP.sub("", p).strip() for p in text.split(",")]
    parts = [p for p in parts if p]
    if not parts:
        return ""
    last = parts[-1]
    by_name = {name.lower(): code for code, name in states().items()} | EXTRA_NAMES
    if (named := by_name.get(" ".join(last.lower().split()))) is not None:
        return named
    code = last.split()[-1].replace(".", "")
    # A part that starts with a number is a street line: "12 Oak CT" is a court, not Connecticut.
    if code.isupper() and code in states() and not last[0].isdigit():
        return code
    return ""
