"""Which shared resources (Medication, Binary, ...) a patient's lines point to: read from the lines
with a regular expression, exactly what walking the parsed resources finds for those types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fhirmaps.bundles import flatten
from smartapp.screening.bucket import _line_references, _parse, _references
from smartapp.screening.errors import ErrorLog

CASES = Path(__file__).parents[1] / "data" / "cases"
SHARED = frozenset({"Medication", "Binary"})


def _of(types: frozenset[str], references: set[str]) -> set[str]:
    return {ref for ref in references if ref.split("/")[0] in types}


def _as_lines(resources: list[dict[str, Any]], **dump: Any) -> list[bytes]:
    return [json.dumps(r, **dump).encode() for r in resources]


def test_every_corpus_chart_gives_the_same_references_compact_spaced_and_unicode() -> None:
    charts = [flatten([json.loads((case / "bundle.json").read_text())]) for case in sorted(CASES.iterdir())]
    assert len(charts) > 200
    found_any = found_shared = 0
    for resources in charts:
        every = _references(resources)
        found_any += bool(every)
        found_shared += bool(_of(SHARED, every))
        for dump in ({"separators": (",", ":")}, {}, {"ensure_ascii": False}, {"indent": None}):
            lines = _as_lines(resources, **dump)
            assert _line_references(lines, resources, SHARED) == _of(SHARED, every)
            types = frozenset(ref.split("/")[0] for ref in every)  # every type referenced
            assert _line_references(lines, resources, types) == every
    assert found_any > 200 and found_shared > 20


def test_escaped_slashes_and_escaped_keys_are_read_as_json_reads_them() -> None:
    order = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "medicationReference": {"reference": "Medication/x1"},
    }
    escaped_slash = [
        b'{"resourceType":"MedicationRequest","id":"m1","medicationReference":{"reference":"Medication\\/x1"}}'
    ]
    escaped_key = [
        b'{"resourceType":"MedicationRequest","id":"m1","medicationReference":{"refer\\u0065nce":"Medication/x1"}}'
    ]
    quoted_in_text = [
        b'{"resourceType":"Observation","id":"o1","valueString":"\\"reference\\": \\"Binary/b9\\""}'
    ]
    escaped_type = [
        b'{"resourceType":"MedicationRequest","id":"m1","medicationReference":{"reference":"Medic\\u0061tion/x1"}}'
    ]
    assert _line_references(escaped_slash, [order], SHARED) == {"Medication/x1"}
    assert _line_references(escaped_key, [order], SHARED) == {"Medication/x1"}
    assert _line_references(escaped_type, [order], SHARED) == {"Medication/x1"}
    assert _line_references(quoted_in_text, [json.loads(quoted_in_text[0])], SHARED) == set()
    history = [b'{"presentedForm":[{"url":"https://ehr.example/fhir/Binary/b2/_history/3"}]}']
    assert _line_references(history, [json.loads(history[0])], SHARED) == {"Binary/b2"}
    assert _line_references(history, [json.loads(history[0])], frozenset({"Medication"})) == set()


def test_a_bare_urn_uuid_owner_is_rewritten_however_the_line_spells_it() -> None:
    plain = b'{"resourceType":"Condition","id":"c1","subject":{"reference":"urn:uuid:p7"}}'
    escaped = b'{"resourceType":"Condition","id":"c2","subject":{"reference":"urn\\u003auuid:p7"}}'
    other = b'{"resourceType":"Condition","id":"c3","subject":{"reference":"urn:uuid:p8"}}'
    usual = b'{"resourceType":"Condition","id":"c4","subject":{"reference":"Patient/p7"}}'
    read = _parse([plain, escaped, other, usual], "p7", ErrorLog())
    owners = [r["subject"]["reference"] for r in read]
    assert owners == ["Patient/p7", "Patient/p7", "urn:uuid:p8", "Patient/p7"]
