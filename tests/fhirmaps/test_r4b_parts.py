"""The validation shortcut (fhirmaps/r4b_parts.py) gives exactly the answers of full R4B validation.

Expected answers come from the full model validation (`validate_in_full`); the same resources are
then validated with the shortcut knowing their shapes and parts."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhirmaps import r4b
from fhirmaps.bundles import flatten

CASES = Path(__file__).parents[1] / "data" / "cases"
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


# Each shares its shape or its parts with the valid observations the shortcut learns from, and is
# wrong somewhere, or in a way that only shows with the known parts in place.
TRAPS = {
    "status not a code": observation("t1", status=["final"]),
    "two value choices": observation("t2", valueString="4.1 ng/mL"),
    "known code under another key": observation("t3", specimen=copy.deepcopy(CODE)),
    "reference where a concept belongs": observation("t4", code=dict(SUBJECT)),
    "null in a known list": observation("t5", category=[*copy.deepcopy(CATEGORY), None]),
    "bad date": observation("t6", effectiveDateTime="05/01/2026"),
    "unknown element": observation("t7", colour="red"),
    "code with a number for a system": observation("t8", code={"coding": [{"system": 42}], "text": "PSA"}),
    "required status missing": {k: v for k, v in observation("t9").items() if k != "status"},
    "status null": observation("t10", status=None),
    "id with a space": observation("bad id"),
    "boolean where a number belongs": observation("t11", valueQuantity={"value": True, "unit": "ng/mL"}),
    "valid": observation("t12", valueQuantity={"value": 3.9, "unit": "ng/mL"}),
    # Inside objects of shapes seen before: each is vouched for one level down, and must still fail.
    "quantity value not a number": observation("n1", valueQuantity={"value": "high", "unit": "ng/mL"}),
    "quantity unit a list": observation("n2", valueQuantity={"value": 4.1, "unit": ["ng/mL"]}),
    "unknown element in a quantity": observation("n3", valueQuantity={"value": 4.1, "unit": "ng/mL", "x": 1}),
    "reference a number": observation("n4", subject={"reference": 5}),
    "null coding": observation("n5", code={"coding": [None], "text": "PSA"}),
    "coding code a list": observation(
        "n6", code={"coding": [{"system": "http://loinc.org", "code": ["2857-1"]}]}
    ),
    "category an object": observation("n7", category={"coding": CATEGORY[0]["coding"]}),
    "coding system a number": observation("n8", category=[{"coding": [{"system": 1, "code": "laboratory"}]}]),
    "valid new quantity and subject": observation(
        "n9", valueQuantity={"value": 9, "unit": "mg"}, subject={"reference": "Patient/p9"}
    ),
}


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    r4b.forget_validations()
    yield
    r4b.forget_validations()


def test_traps_get_the_answers_of_full_validation() -> None:
    expected = {name: r4b.validate_in_full(resource) for name, resource in TRAPS.items()}
    assert expected["valid"] is None
    assert all(problem for name, problem in expected.items() if not name.startswith("valid"))
    r4b.forget_validations()
    for n in range(3):
        assert r4b.validate(observation(f"v{n}", valueQuantity={"value": n, "unit": "ng/mL"})) is None
    assert {name: r4b.validate(copy.deepcopy(resource)) for name, resource in TRAPS.items()} == expected


def test_a_resource_of_a_known_shape_and_parts_is_vouched_for_without_the_model() -> None:
    model = r4b.model_class("Observation")
    assert model is not None
    assert not r4b._PARTS.vouch(model, observation("a"))  # shape never seen
    assert r4b.validate(observation("a")) is None
    assert r4b._PARTS.vouch(model, observation("b", valueQuantity={"value": 7, "unit": "mg"}))
    assert not r4b._PARTS.vouch(model, observation("c", effectiveDateTime="2026-13-45"))
    assert not r4b._PARTS.vouch(model, observation("d", issued="2026-01-05T10:00:00Z"))  # new shape


def _corpus() -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = []
    for case in sorted(CASES.iterdir()):
        resources += flatten([json.loads((case / "bundle.json").read_text())])
    return [r for r in resources if r4b.model_class(str(r.get("resourceType"))) is not None]


WRONG_VALUES: list[Any] = [None, 42, "x", True, [], {}, [None], {"unexpected": 1}]


def _variants(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The resource with one key dropped, or one value swapped for a value of another kind."""
    for key in resource:
        if key == "resourceType":
            continue
        yield {k: v for k, v in resource.items() if k != key}
        for wrong in WRONG_VALUES:
            yield resource | {key: copy.deepcopy(wrong)}
    yield resource | {"valueString": "added"}
    yield resource | {"notAnElement": 1}


def _nested_variants(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The resource with one key dropped, one value swapped or one key added inside one of its
    objects (or the objects of its arrays), one or two levels down."""
    for key, value in resource.items():
        for path, inner in _objects(value, (key,), 2):
            for name in inner:
                yield _with(resource, path, {k: v for k, v in inner.items() if k != name})
                for wrong in WRONG_VALUES:
                    yield _with(resource, path, inner | {name: copy.deepcopy(wrong)})
            yield _with(resource, path, inner | {"notAnElement": 1})


def _objects(
    value: Any, path: tuple[Any, ...], levels: int
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    if levels == 0:
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _objects(item, (*path, index), levels)
    elif isinstance(value, dict):
        yield path, value
        for key, item in value.items():
            yield from _objects(item, (*path, key), levels - 1)


def _with(resource: dict[str, Any], path: tuple[Any, ...], replacement: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(resource)
    holder: Any = changed
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = replacement
    return changed


def test_broken_objects_inside_the_corpus_get_the_answers_of_full_validation() -> None:
    corpus = _corpus()
    variants = [v for r in corpus[3::41] for v in _nested_variants(r)]
    assert len(variants) > 5000
    expected = [r4b.validate_in_full(resource) for resource in variants]
    for resource in corpus:  # learn every shape and part the corpus has, inside objects too
        r4b.validate(resource)
    warm = [r4b.validate(resource) for resource in variants]
    differing = [
        (json.dumps(resource)[:300], want, got)
        for resource, want, got in zip(variants, expected, warm, strict=True)
        if want != got
    ]
    assert differing == []
    assert sum(problem is not None for problem in expected) > len(variants) // 2


def test_the_corpus_and_its_broken_variants_get_the_answers_of_full_validation() -> None:
    corpus = _corpus()
    assert len(corpus) > 3000
    variants = [v for r in corpus[::7] for v in _variants(r)]  # every 7th, broken every way: 47,000
    expected = [r4b.validate_in_full(resource) for resource in corpus + variants]
    for resource in corpus:  # learn every shape and part the corpus has
        r4b.validate(resource)
    warm = [r4b.validate(resource) for resource in corpus + variants]
    differing = [
        (json.dumps(resource)[:200], want, got)
        for resource, want, got in zip(corpus + variants, expected, warm, strict=True)
        if want != got
    ]
    assert differing == []
    assert sum(problem is not None for problem in expected) > len(variants) // 2  # the variants do break
