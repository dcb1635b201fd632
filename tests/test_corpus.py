"""The clinical corpus (tests/data/cases/<case>/bundle.json + expected.json): fired triggers must
equal `findings`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from smartapp.engine import evaluate_resources

CASES = Path(__file__).parent / "data" / "cases"
CASE_DIRS = sorted(
    p for p in CASES.glob("*/") if (p / "expected.json").exists() and (p / "bundle.json").exists()
)


def _load(case: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    return json.loads((case / "bundle.json").read_text()), json.loads((case / "expected.json").read_text())


def test_corpus_is_present() -> None:
    assert len(CASE_DIRS) >= 20


@pytest.mark.parametrize("case", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_case(case: Path) -> None:
    bundle, expected = _load(case)
    results = evaluate_resources([bundle], as_of=date.fromisoformat(expected["as_of"]))
    result = next((r for r in results if r.patient == expected["patient"]), None)
    assert result is not None, f"patient {expected['patient']} not found"
    document = result.to_json()
    fired = {f["trigger"]: f for f in document["findings"]}
    assert set(fired) == set(expected["findings"]), expected.get("rationale", "")
    assert (document["time_critical"] is not None) == expected["time_critical"]
    for item in expected.get("evidence", []):
        refs = {e["reference"] for e in fired[item["trigger"]]["evidence"]}
        assert item["reference"] in refs, (
            f"{item['trigger']} should cite {item['reference']}; cites {sorted(refs)}"
        )
    for item in expected.get("evidence_not", []):
        if item["trigger"] in fired:
            refs = {e["reference"] for e in fired[item["trigger"]]["evidence"]}
            assert item["reference"] not in refs, f"{item['trigger']} must not cite {item['reference']}"
    named = {i["resource"] for i in document["data_issues"]}
    for reference in expected.get("data_issues_for", []):
        assert reference in named, (
            f"{reference} should be reported as a data issue; issues name {sorted(named)}"
        )
    # A rule that could not decide says so in a patient-level note (and only when it could not).
    notes = " | ".join(document.get("notes") or []).lower()
    for words in expected.get("notes_contain", []):
        assert words.lower() in notes, f"a note should say {words!r}; notes: {notes or 'none'}"
    for words in expected.get("notes_absent", []):
        assert words.lower() not in notes, f"no note may say {words!r}; notes: {notes}"
    for trigger, text in expected.get("summary_contains", {}).items():
        assert text.lower() in fired[trigger]["summary"].lower()
    for trigger, text in expected.get("summary_not_contains", {}).items():
        if trigger in fired:
            assert text.lower() not in fired[trigger]["summary"].lower()
