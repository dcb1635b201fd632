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
