"""Precision / recall per trigger (and for time_critical) over the clinical corpus in tests/data/cases.

Prints JSON. Usage: python bench/clinical_eval.py [--cases tests/data/cases]
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any

from smartapp.engine import evaluate_resources
from smartapp.triggers import TRIGGER_IDS


def _scores(tp: int, fp: int, fn: int) -> dict[str, Any]:
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": round(precision, 3) if precision is not None else None,
        "recall": round(recall, 3) if recall is not None else None,
    }


def evaluate_corpus(cases: Path) -> dict[str, Any]:
    counts = {t: [0, 0, 0] for t in [*TRIGGER_IDS, "time_critical"]}
    mismatches = []
    total = notes_checked = notes_wrong = 0
    for case in sorted(p for p in cases.iterdir() if (p / "expected.json").exists()):
        expected = json.loads((case / "expected.json").read_text())
        bundle = json.loads((case / "bundle.json").read_text())
        results = evaluate_resources([bundle], as_of=date.fromisoformat(expected["as_of"]))
        result = next((r for r in results if r.patient == expected["patient"]), None)
        got = set(result.triggers) if result else set()
        if result is not None and result.time_critical is not None:
            got.add("time_critical")
        want = set(expected["findings"]) | ({"time_critical"} if expected["time_critical"] else set())
        total += 1
        for trigger in counts:
            counts[trigger][0] += trigger in got and trigger in want
            counts[trigger][1] += trigger in got and trigger not in want
            counts[trigger][2] += trigger in want and trigger not in got
        notes = " | ".join(result.notes if result else []).lower()
        note_missing = [w for w in expected.get("notes_contain", []) if w.lower() not in notes]
        note_extra = [w for w in expected.get("notes_absent", []) if w.lower() in notes]
        notes_checked += bool(expected.get("notes_contain") or expected.get("notes_absent"))
        notes_wrong += bool(note_missing or note_extra)
        if got != want or note_missing or note_extra:
            mismatches.append(
                {"case": case.name, "missing": sorted(want - got), "extra": sorted(got - want)}
                | ({"note_missing": note_missing} if note_missing else {})
                | ({"note_unwanted": note_extra} if note_extra else {})
            )
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    return {
        "cases": total,
        "exact_match": total - len(mismatches),
        "overall": _scores(tp, fp, fn),
        "per_trigger": {t: _scores(*c) for t, c in counts.items()},
        # Cases that say what a rule must (or must not) note when it cannot decide.
        "notes": {"cases": notes_checked, "right": notes_checked - notes_wrong},
        "mismatches": mismatches,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--cases", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "data" / "cases"
    )
    args = parser.parse_args()
    print(json.dumps(evaluate_corpus(args.cases), indent=2))


if __name__ == "__main__":
    main()
