"""Code lists as data: every list lives in ``fhirmaps/codes/*.json`` with its ``source`` and ``date``.

This is the one place that reads them; results are cached for the life of the process.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

CODE_FILES = (
    "entities",
    "sites",
    "lexicon",
    "reports",
    "observations",
    "treatments",
    "requests",
    "urgent",
    "context_rules",
    "snomed",
    "rxnorm",
    "read_elements",
)


@cache
def load(name: str) -> dict[str, Any]:
    """Return the parsed code file ``fhirmaps/codes/<name>.json`` (cached)."""
    if name not in CODE_FILES:
        raise KeyError(f"unknown code file {name!r}")
    text = resources.files("fhirmaps").joinpath("codes", f"{name}.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def strings(name: str, key: str) -> frozenset[str]:
    """A list-valued entry of a code file as a frozen set of strings."""
    return _frozen(name, key)


@cache
def _frozen(name: str, key: str) -> frozenset[str]:
    return frozenset(str(value) for value in load(name)[key])


def in_ranges(code: str, ranges: list[str]) -> bool:
    """True when a 4-digit ICD-O-3 morphology falls in one of ``["8800-8934", "8936", ...]``."""
    if not code.isdigit():
        return False
    value = int(code)
    for item in ranges:
        low, _, high = item.partition("-")
        if int(low) <= value <= int(high or low):
            return True
    return False


def has_prefix(code: str, prefixes: list[str] | frozenset[str]) -> bool:
    """ICD-10-CM / ICD-O topography prefix match, tolerant of a missing dot ("C493" ~ "C49.3")."""
    plain = code.upper().replace(".", "")
    return any(plain.startswith(p.upper().replace(".", "")) for p in prefixes)
