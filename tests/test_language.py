"""What the oncologist reads: every summary in the corpus is one sentence a clinician would write.

The golden file tests/data/summaries.json holds every corpus summary; it was read sentence by sentence
when written, so a wording change shows up here and is made on purpose (regenerate it with
`python -m tests.test_language` and read the diff)."""

from __future__ import annotations

import json
import re
import sys
from datetime import date
from functools import cache
from pathlib import Path

import pytest

from smartapp.engine import evaluate_resources
from smartapp.findings import PatientResult
from smartapp.triggers import TRIGGER_IDS

CASES = Path(__file__).parent / "data" / "cases"
GOLDEN = Path(__file__).parent / "data" / "summaries.json"
BRITISH = re.compile(
    r"tumour|centre|oesophag|haemat|leukaem|favour|behaviour|programme|anaemia|oedema|colour|"
    r"randomis|characteris|hospitalis|organis",
    re.I,
)
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
REFERENCE = re.compile(
    r"\b(Patient|Condition|Observation|DiagnosticReport|DocumentReference|MedicationRequest|ServiceRequest|"
    r"Procedure|CarePlan)/[A-Za-z0-9.-]+"
)


@cache
def corpus_results() -> dict[str, PatientResult]:
    out = {}
    for case in sorted(p for p in CASES.iterdir() if (p / "expected.json").exists()):
        expected = json.loads((case / "expected.json").read_text())
        bundle = json.loads((case / "bundle.json").read_text())
        results = evaluate_resources([bundle], as_of=date.fromisoformat(expected["as_of"]))
        out[case.name] = next(r for r in results if r.patient == expected["patient"])
    return out


def sentences(result: PatientResult) -> dict[str, str]:
    said = {f.trigger: f.summary for f in result.findings}
    if result.time_critical is not None:
        said["time-critical"] = result.time_critical.reason
    said.update({f"note-{i}": note for i, note in enumerate(result.notes)})
    return said


def test_every_summary_matches_the_reviewed_golden_file() -> None:
    golden = json.loads(GOLDEN.read_text())
    current = {name: sentences(result) for name, result in corpus_results().items()}
    assert current == golden


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if (p / "expected.json").exists()))
def test_summaries_read_as_a_clinician_writes(case: str) -> None:
    for key, text in sentences(corpus_results()[case]).items():
        assert len(text) <= 200, (key, text)
        assert text[0].isupper() and text.endswith("."), (key, text)
        assert text.count(".") - len(re.findall(r"\d\.\d", text)) == 1, (key, text)  # one sentence
        assert not re.search(r"\([^)]*\(", text), (key, text)  # no nested parentheses
        assert not BRITISH.search(text), (key, text)
        assert not ISO_DATE.search(text), (key, text)
        assert not REFERENCE.search(text), (key, text)
        assert not any(trigger in text for trigger in TRIGGER_IDS), (key, text)


def main() -> None:
    current = {name: sentences(result) for name, result in corpus_results().items()}
    GOLDEN.write_text(json.dumps(current, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    sys.stdout.write(f"wrote {GOLDEN} ({sum(len(v) for v in current.values())} sentences)\n")


if __name__ == "__main__":
    main()


def test_drug_names_keep_acronyms_and_lose_doses() -> None:
    from smartapp.wording import drug_name

    assert drug_name("BCG live (TICE BCG) 50 mg intravesical") == "BCG live (TICE BCG)"
    assert drug_name("MITOTANE 500 MG PO TABS") == "mitotane"
    assert drug_name("BCG") == "BCG" and drug_name("R-CHOP") == "R-CHOP"
    assert drug_name("Cabozantinib 40 mg tablet") == "cabozantinib"
