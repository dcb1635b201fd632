"""Repeated elements are validated once: the answers stay exactly those of validating whole resources."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fhirmaps import r4b

CODE = {"coding": [{"system": "http://loinc.org", "code": "2857-1", "display": "PSA"}], "text": "PSA"}
CATEGORY = [
    {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}
        ]
    }
]
SUBJECT = {"reference": "Patient/p1"}


def observation(oid: str, **changes: Any) -> dict[str, Any]:
    base = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": copy.deepcopy(CATEGORY),
        "code": copy.deepcopy(CODE),
        "subject": dict(SUBJECT),
        "effectiveDateTime": "2026-01-05",
        "valueQuantity": {"value": 4.1, "unit": "ng/mL"},
    }
    return base | changes


# Each shares its repeated parts with the valid observations the memo learns from, and is wrong
# somewhere else, or wrong in a way that only shows with the known parts in place.
TRAPS = {
    "status not a code": observation("t1", status=["final"]),
    "two value choices": observation("t2", valueString="4.1 ng/mL"),
    "known code under another key": observation("t3", specimen=copy.deepcopy(CODE)),
    "reference where a concept belongs": observation("t4", code=dict(SUBJECT)),
    "null in a known list": observation("t5", category=[*copy.deepcopy(CATEGORY), None]),
    "bad date": observation("t6", effectiveDateTime="05/01/2026"),
    "unknown element": observation("t7", colour="red"),
    "code one character off": observation("t8", code={"coding": [{"system": 42}], "text": "PSA"}),
    "required status missing": {k: v for k, v in observation("t9").items() if k != "status"},
    "valid": observation("t10", valueQuantity={"value": 3.9, "unit": "ng/mL"}),
}


@pytest.fixture(autouse=True)
def fresh_memo() -> None:
    r4b.forget_validations()


def cold(resource: dict[str, Any]) -> str | None:
    r4b.forget_validations()
    return r4b.validate(copy.deepcopy(resource))


def test_answers_with_known_elements_are_those_of_the_whole_resource() -> None:
    expected = {name: cold(resource) for name, resource in TRAPS.items()}
    assert expected["valid"] is None
    assert all(problem for name, problem in expected.items() if name != "valid")
    r4b.forget_validations()
    for n in range(3):  # seen, then kept, then used
        assert r4b.validate(observation(f"v{n}", valueQuantity={"value": n, "unit": "ng/mL"})) is None
    shell, _unknown = r4b._ELEMENTS.substitute("Observation", observation("probe"))
    assert type(shell["code"]).__name__ == "CodeableConcept"
    assert [type(c).__name__ for c in shell["category"]] == ["CodeableConcept"]
    assert {name: r4b.validate(copy.deepcopy(resource)) for name, resource in TRAPS.items()} == expected


def test_a_repeated_element_is_taken_from_the_memo_and_a_unique_one_is_not() -> None:
    for n in range(2):
        assert r4b.validate(observation(f"v{n}", valueQuantity={"value": n, "unit": "ng/mL"})) is None
    shell, unknown = r4b._ELEMENTS.substitute("Observation", observation("probe", valueQuantity={"value": 7}))
    assert type(shell["code"]).__name__ == "CodeableConcept"
    assert type(shell["subject"]).__name__ == "Reference"
    assert shell["valueQuantity"] == {"value": 7}  # seen once: not kept
    assert unknown == []


def test_an_element_is_not_kept_from_a_resource_that_failed() -> None:
    odd = {"coding": [{"system": "http://loinc.org", "code": "19123-9"}]}
    for n in range(3):
        assert r4b.validate(observation(f"bad{n}", status=["final"], code=odd)) is not None
    shell, _unknown = r4b._ELEMENTS.substitute("Observation", observation("probe", code=odd))
    assert shell["code"] == odd
