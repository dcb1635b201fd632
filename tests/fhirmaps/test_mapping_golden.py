"""FHIR in, PatientRecord out: each folder under tests/data/mapping must map to its expected.json,
so a mapping regression shows as a changed fact here, not only as a changed finding downstream.
Rewrite with `python -m tests.fhirmaps.mapping_golden` and read the diff."""

from __future__ import annotations

import json

import pytest

from tests.fhirmaps.mapping_golden import ROOT, as_json, cases, record_for


def test_the_cases_cover_several_ehr_styles() -> None:
    styles = {json.loads((ROOT / c / "case.json").read_text())["style"] for c in cases()}
    assert len(cases()) >= 10 and {"epic", "oracle", "mcode"} <= styles
    assert any("synthea" in c for c in cases())


@pytest.mark.parametrize("case", cases())
def test_mapping_matches_golden(case: str) -> None:
    expected = json.loads((ROOT / case / "expected.json").read_text())
    actual = json.loads(json.dumps(as_json(record_for(case))))
    for key in expected:
        assert actual[key] == expected[key], f"{case}: {key} differs from the golden mapping"
    assert set(actual) == set(expected)
