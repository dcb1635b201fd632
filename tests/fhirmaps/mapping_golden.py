"""Golden FHIR-in → PatientRecord-out cases: tests/data/mapping/<case>/ holds `input.json` (a
Bundle, copied from the corpus in a range of EHR styles), `case.json` (patient, evaluation date)
and `expected.json`, the record `fhirmaps.read.read_records` makes of it, as readable JSON.

`python -m tests.fhirmaps.mapping_golden` rewrites every expected.json from the current mapping.
Read each diff before committing it: a changed line is a changed clinical fact (a diagnosis read
with another site, a mention that lost its negation, a report no longer read)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any

from fhirmaps.entities import Entity, Site
from fhirmaps.read import read_records
from fhirmaps.record import ClinicalText, Mention, PatientRecord

ROOT = Path(__file__).resolve().parents[2] / "tests" / "data" / "mapping"
TEXT_SHOWN = 120  # characters of a report's text kept in the golden file


def cases() -> list[str]:
    return sorted(p.name for p in ROOT.iterdir() if (p / "input.json").exists())


def record_for(case: str) -> PatientRecord:
    spec = json.loads((ROOT / case / "case.json").read_text())
    bundle = json.loads((ROOT / case / "input.json").read_text())
    records = read_records([bundle], as_of=date.fromisoformat(spec["as_of"]))
    found = next((r for r in records if r.patient == spec["patient"]), None)
    if found is None:
        raise LookupError(f"{case}: {spec['patient']} not read")
    return found


def as_json(record: PatientRecord) -> dict[str, Any]:
    """The record as plain JSON: every field, dates as ISO strings; a report's text shortened to its
    start and length, each narrative mention with its ConText flags."""
    document = {
        field.name: _plain(getattr(record, field.name))
        for field in dataclasses.fields(record)
        if field.name != "reports"
    }
    document["texts"] = [_report(r) for r in record.texts]
    return document


def _report(report: ClinicalText) -> dict[str, Any]:
    fields = {
        f.name: _plain(getattr(report, f.name))
        for f in dataclasses.fields(report)
        if f.name not in ("text", "mentions")
    }
    fields["text_start"] = report.text[:TEXT_SHOWN]
    fields["text_chars"] = len(report.text)
    fields["mentions"] = [_mention(m) for m in report.mentions]
    return fields


def _mention(mention: Mention) -> dict[str, Any]:
    raw = mention.raw
    flags = [f for f in ("negated", "uncertain", "historical", "hypothetical", "family") if getattr(raw, f)]
    return {
        "label": raw.label,
        "key": raw.key,
        "text": raw.text,
        "section": mention.section,
        "flags": flags,
        "path": mention.source.path,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, (Entity, Site)):
        return value.id  # what it is; its definition lives in the code maps, not in each case
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write() -> None:
    for case in cases():
        text = json.dumps(as_json(record_for(case)), indent=1, ensure_ascii=False) + "\n"
        (ROOT / case / "expected.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write()
