"""Rule data (smartapp/triggers/rules/*.toml): every entry has a value, a source and a date, and every
entry is read by the code of its trigger (a key nothing reads is a rule that silently does nothing)."""

from __future__ import annotations

import re
from pathlib import Path

from smartapp.triggers import rules

TRIGGERS = Path(__file__).resolve().parents[2] / "smartapp" / "triggers"


def test_every_rule_entry_has_value_source_and_date() -> None:
    for trigger in rules.files():
        for key, entry in rules.table(trigger).items():
            assert entry["source"].strip() and entry["date"], (trigger, key)


def test_every_rule_key_is_read_by_trigger_code() -> None:
    code = "\n".join(p.read_text() for p in TRIGGERS.glob("*.py"))
    for trigger in rules.files():
        for key in rules.table(trigger):
            read = re.search(rf'"{re.escape(key)}"\s*\)', code)
            assert read, f"{trigger}.toml [{key}] is read by nothing"


def _alternatives(expression: str) -> list[str]:
    """The top-level alternatives of an expression, each inner (?:a|b) group spelled out."""
    tops, depth, start = [], 0, 0
    for i, char in enumerate(expression):
        depth += (char == "(") - (char == ")")
        if char == "|" and depth == 0:
            tops.append(expression[start:i])
            start = i + 1
    tops.append(expression[start:])
    out = []
    for top in tops:
        inner = re.search(r"\(\?:([^()]*)\)", top)
        if inner is None:
            out.append(top)
        else:
            head, tail = top[: inner.start()], top[inner.end() :]
            out += [head + option + tail for option in inner.group(1).split("|")]
    return out


def test_every_way_an_equivocal_test_line_ends_holds_an_equivocal_word() -> None:
    # incomplete_biomarker passes over a report with no equivocal word in it, which is exact only
    # while each ending of "equivocal_test" holds one.
    [source] = rules.value("incomplete-biomarker", "equivocal_test")
    endings = _alternatives(source.rsplit(r"\b(", 1)[1].removesuffix(r")\b"))
    assert "not evaluable" in endings and "could not be assessed" in endings and len(endings) >= 12
    words = rules.pattern("incomplete-biomarker", "equivocal_words")
    assert [ending for ending in endings if not words.search(ending)] == []
