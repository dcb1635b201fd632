"""Rule data: the phrases, thresholds and time windows of each trigger, one TOML file per trigger.

Every entry is a table with `value`, `source` and `date`, so a reviewer sees where a number comes
from and when it was set. Trigger code reads values with `value(trigger, key)`; a test fails when a
key is read by nothing (tests/triggers/test_rule_data.py).
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import resources
from typing import Any

from fhirmaps.folded import FoldedPattern

_HERE = "smartapp.triggers.rules"


@cache
def table(trigger: str) -> dict[str, dict[str, Any]]:
    """The whole rule file of one trigger (file name: the trigger id with underscores)."""
    name = f"{trigger.replace('-', '_')}.toml"
    data = tomllib.loads(resources.files(_HERE).joinpath(name).read_text(encoding="utf-8"))
    for key, entry in data.items():
        if not isinstance(entry, dict) or not {"value", "source", "date"} <= entry.keys():
            raise ValueError(f"{name}: [{key}] needs value, source and date")
    return data


def value(trigger: str, key: str) -> Any:
    return table(trigger)[key]["value"]


def _alternation(trigger: str, key: str) -> str:
    """A list of regular expressions in the rule data as one alternation."""
    return "|".join(f"(?:{p})" for p in value(trigger, key))


@cache
def pattern(trigger: str, key: str) -> re.Pattern[str]:
    """A list of regular expressions in the rule data, compiled as one case-insensitive alternation."""
    return re.compile(_alternation(trigger, key), re.I)


@cache
def folded(trigger: str, key: str) -> FoldedPattern:
    """`pattern(trigger, key)` for a yes/no search, faster on ASCII text (fhirmaps/folded.py); the
    entry's expressions must be lowercase."""
    return FoldedPattern(_alternation(trigger, key))


def files() -> list[str]:
    """Trigger ids that have a rule file."""
    return sorted(
        p.name.removesuffix(".toml").replace("_", "-")
        for p in resources.files(_HERE).iterdir()
        if p.name.endswith(".toml")
    )
