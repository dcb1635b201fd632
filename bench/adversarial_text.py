"""Hostile narrative text: seconds per MB for each narrative path (issue 12; target <= 2 s/MB).

Prints JSON. Usage: python bench/adversarial_text.py [--megabytes 5]
Each path gets one document of each hostile kind (repeated hedge words, a run-on sentence without
punctuation, heading-only lines, deep nesting of parentheses) next to a real pathology report, and the
whole engine runs (reading, NLP, triggers). `per_mb_input` divides by the size sent; `per_mb_read` by
the part read (a document is read up to fhirmaps.reports.DOCUMENT_CHARS), the worst case for a
document just under the cap. The `record` path sends the same size as many notes each just under that
cap, so the record's budget (fhirmaps.narrative_budget.RECORD_CHARS) is what bounds it. The NLP model
is warmed first and its text cache cleared before every run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fhirmaps import context  # noqa: E402
from fhirmaps.narrative_budget import RECORD_CHARS  # noqa: E402
from fhirmaps.reports import DOCUMENT_CHARS  # noqa: E402
from smartapp.cds.evaluation import evaluate  # noqa: E402
from smartapp.cds.fetch import HookRecord, read_prefetch  # noqa: E402
from smartapp.engine import evaluate_resources  # noqa: E402
from tests.fhirmaps.builders import bundle, note, observation, patient, report  # noqa: E402
from tests.hostile_text import KINDS, hostile  # noqa: E402

AS_OF = date(2026, 3, 1)
GOOD = report("good", "FINAL DIAGNOSIS: Chordoma of the sacrum.", date="2026-01-10")


def _document(path: str, text: str) -> dict[str, Any]:
    if path in ("pathology", "cds-prefetch"):
        return report("bad", text)
    if path == "radiology":
        return report("bad", text, kind="imaging", title="CT chest")
    if path == "note":
        return note("bad", text)
    return observation("bad", "22637-3", "Pathology report final diagnosis", text_value=text)


def _notes(text: str) -> list[dict[str, Any]]:
    """The text as notes each just under the per-document cap, one day apart."""
    size = DOCUMENT_CHARS - 1_000
    parts = [text[i : i + size] for i in range(0, len(text), size)]
    return [
        note(f"bad{i}", part, date=f"2025-{1 + i // 28:02d}-{1 + i % 28:02d}") for i, part in enumerate(parts)
    ]


PATHS = ("pathology", "radiology", "note", "valueString", "cds-prefetch", "record")


def _run(path: str, text: str) -> tuple[float, bool]:
    context.clear_cache()
    started = time.perf_counter()
    if path == "record":
        [result] = evaluate_resources([bundle(patient(), *_notes(text), GOOD)], as_of=AS_OF)
    elif path == "cds-prefetch":
        found, _ = read_prefetch(
            {"patient": patient(), "diagnosticReports": bundle(_document(path, text), GOOD, kind="searchset")}
        )
        result = evaluate(HookRecord(resources=[r for items in found.values() for r in items]), "p1", AS_OF)
    else:
        [result] = evaluate_resources([bundle(patient(), _document(path, text), GOOD)], as_of=AS_OF)
    return time.perf_counter() - started, result.finding("rare-cancer") is not None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=float, default=5.0)
    parser.add_argument(
        "--paths", default=",".join(PATHS), help="comma-separated subset of " + ", ".join(PATHS)
    )
    args = parser.parse_args()
    size = int(args.megabytes * 1_000_000)
    context.warm()
    out: dict[str, Any] = {
        "document_chars_cap": DOCUMENT_CHARS,
        "record_chars_cap": RECORD_CHARS,
        "piece_chars": context.PIECE_CHARS,
        "megabytes_sent": args.megabytes,
        "paths": {},
    }
    for path in args.paths.split(","):
        rows = {}
        cap = RECORD_CHARS if path == "record" else DOCUMENT_CHARS
        for kind in KINDS:
            seconds, other_found = _run(path, hostile(kind, size))
            rows[kind] = {
                "seconds": round(seconds, 2),
                "per_mb_input": round(seconds / (size / 1e6), 2),
                "per_mb_read": round(seconds / (min(size, cap) / 1e6), 2),
                "other_finding_kept": other_found,
            }
        out["paths"][path] = rows
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
