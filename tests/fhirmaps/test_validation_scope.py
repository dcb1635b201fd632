"""Reading validates only what the mapping reads (fhirmaps/codes/read_elements.json) plus what R4B
requires: a malformed element the rules never use costs nothing and says nothing, a malformed
element they do use is still a data issue, and a type the mapping ignores is not validated at all.
The scope is checked against the mapping itself: every element read_records looks up on the
corpus, the mapping folders and the demo fixtures must be in it."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

from fhirmaps import codes
from fhirmaps.r4b import model_class
from fhirmaps.read import PATIENT_TYPES, read_records
from fhirmaps.validation_scope import _kept
from tests.fhirmaps.builders import ICD10, LOINC, cc, condition, observation, patient

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 3, 1)


class Recording(dict[str, Any]):
    """A resource that notes every top-level element looked up by name (walks over all elements,
    which look for references or attachments, do not count)."""

    looked_up: defaultdict[str, set[str]] = defaultdict(set)

    def _note(self, key: object) -> None:
        Recording.looked_up[str(dict.get(self, "resourceType", ""))].add(str(key))

    def get(self, key: str, default: Any = None) -> Any:
        self._note(key)
        return dict.get(self, key, default)

    def __getitem__(self, key: str) -> Any:
        self._note(key)
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        self._note(key)
        return dict.__contains__(self, key)


def inputs() -> list[dict[str, Any]]:
    paths = [
        *ROOT.glob("tests/data/cases/*/bundle.json"),
        *ROOT.glob("tests/data/mapping/*/input.json"),
        *ROOT.glob("demo/demo_ehr/fixtures/**/*.json"),
    ]
    loaded = [json.loads(p.read_text()) for p in sorted(paths)]
    return [d for d in loaded if isinstance(d, dict)]


def test_every_element_the_mapping_reads_is_validated() -> None:
    Recording.looked_up.clear()
    documents = inputs()
    assert len(documents) > 250
    for document in documents:
        entries = document.get("entry") if document.get("resourceType") == "Bundle" else None
        resources = [e["resource"] for e in entries] if entries else [document]
        read_records([Recording(r) for r in resources], as_of=AS_OF)
    # The recording saw the mapping at work (read_records kept the recording resources).
    assert {"code", "valueQuantity", "effectiveDateTime"} <= Recording.looked_up["Observation"]
    assert {"code", "clinicalStatus", "verificationStatus"} <= Recording.looked_up["Condition"]
    missing = {}
    for resource_type, looked_up in Recording.looked_up.items():
        kept = _kept(resource_type)
        cls = model_class(resource_type)
        if kept is None or cls is None:
            continue  # validated whole, or not a type R4B defines
        fields = {field.alias or name for name, field in cls.model_fields.items()}
        if outside := sorted((looked_up & fields) - kept):
            missing[resource_type] = outside
    assert missing == {}, "add these to fhirmaps/codes/read_elements.json"


def test_every_date_a_mapper_falls_back_to_is_validated() -> None:
    """first_date(resource, "effectiveDateTime", ..., "issued") reads "issued" only when the earlier
    dates are absent, which the corpus may never show: the fallbacks are taken from the code."""
    source = "\n".join(p.read_text() for p in (ROOT / "fhirmaps").glob("*.py"))
    calls = re.findall(r"first_date\(\s*[\w\[\]\"']+,\s*((?:\"[A-Za-z]+\",?\s*)+)\)", source)
    fallbacks = {name for call in calls for name in re.findall(r'"([A-Za-z]+)"', call)}
    assert {"issued", "recordedDate", "authoredOn"} <= fallbacks
    for resource_type in codes.load("read_elements")["elements"]:
        kept, cls = _kept(resource_type), model_class(resource_type)
        assert kept is not None and cls is not None
        fields = {field.alias or name for name, field in cls.model_fields.items()}
        assert fallbacks & fields <= kept, resource_type


def test_scoped_types_are_types_the_mapping_reads() -> None:
    scoped = set(codes.load("read_elements")["elements"])
    assert scoped <= PATIENT_TYPES
    assert {"Observation", "Condition", "DiagnosticReport", "MedicationRequest"} <= scoped


def issues(*resources: dict[str, Any]) -> dict[str, str]:
    [record] = read_records([patient(), *resources], as_of=AS_OF)
    return {i["resource"]: i["reason"] for i in record.data_issues}


def test_a_malformed_element_the_rules_never_read_is_not_an_issue_and_costs_nothing() -> None:
    lab = observation("o1", "2823-3", "Potassium", value=4.1, unit="mmol/L")
    lab["referenceRange"] = "3.5-5.0"  # not a list of ranges: invalid R4B, and never read
    claim = {"resourceType": "Claim", "id": "cl1", "patient": {"reference": "Patient/p1"}, "item": "x"}
    assert issues(lab, claim) == {}


def test_a_malformed_element_the_rules_read_is_still_a_data_issue() -> None:
    marker = observation("o1", "2039-6", "CEA", value=4.1, unit="ng/mL")
    marker["code"] = "CEA"  # a code that is a string: the marker cannot be recognised
    found = issues(marker)
    assert "Observation/o1" in found and "code" in found["Observation/o1"]


def test_a_missing_required_element_is_still_a_data_issue() -> None:
    cancer = condition("c1", "C50.912", "Malignant neoplasm of left female breast")
    staged = observation("o1", "21908-9", "Stage group", coded=cc(LOINC, "LA3", "Stage IV"))
    del staged["status"]  # required by R4B, though the rules do not read it
    found = issues(cancer, staged)
    assert "Observation/o1" in found and "status" in found["Observation/o1"]
    assert cancer["code"]["coding"][0]["system"] == ICD10
