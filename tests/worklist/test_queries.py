"""Worklist reading helpers without a server: filter parsing, run errors, CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

from smartapp.worklist.queries import Filters, Row, error_causes, to_csv


def row(**fields: object) -> Row:
    values: dict[str, object] = {
        "patient_id": "p1",
        "name": "Ann Example",
        "birth_date": date(1960, 5, 1),
        "triggers": ["rare-cancer"],
        "trigger_labels": ["Rare cancer"],
        "finding_count": 1,
        "urgency": "expedite",
        "time_critical": False,
        "change": "new",
        "status": "new",
        "groups": ["clinic"],
        "screened": datetime(2026, 12, 4, 8, tzinfo=UTC),
    }
    return Row(**(values | fields))  # type: ignore[arg-type]


def test_filters_keep_only_known_values() -> None:
    filters = Filters.from_query(
        {
            "trigger": "rare-cancer",
            "urgency": "urgent!",
            "time_critical": "maybe",
            "status": "reviewed",
            "change": "new-or-changed",
            "group": "x" * 201,
        }
    )
    assert filters.query() == {"trigger": "rare-cancer", "status": "reviewed", "change": "new-or-changed"}
    assert Filters.from_query({"trigger": "' OR 1=1 --"}).query() == {}


def test_error_causes_counts_both_shapes_and_drops_examples() -> None:
    causes = error_causes(
        '{"timeout": 1, "validation": {"count": 4, "examples": ["Patient.name bad"]}, "x": "y"}'
    )
    assert causes == [("validation", 4), ("timeout", 1)]
    assert error_causes("not json") == [("unreadable error record", 1)]
    assert error_causes("[]") == []


def test_csv_defuses_every_formula_prefix() -> None:
    rows = [row(patient_id=f"p{i}", name=f"{prefix}cmd|' /C calc'!A0") for i, prefix in enumerate("=+-@\t")]
    rows.append(row(patient_id="plain", name="Plain Name", groups=["@g", "ok"]))
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    for item in parsed[:5]:
        assert item["name"].startswith("'"), item["name"]
    plain = parsed[5]
    assert plain["name"] == "Plain Name" and plain["groups"] == "'@g; ok"
    assert plain["birth_date"] == "1960-05-01" and plain["last_screened"] == "2026-12-04"
    assert plain["time_critical"] == "no" and plain["triggers"] == "Rare cancer"
