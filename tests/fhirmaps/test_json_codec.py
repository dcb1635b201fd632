"""The fast JSON path reads everything exactly as the standard library does, refusals included."""

from __future__ import annotations

import json

import pytest

from fhirmaps.json_codec import canonical, loads

# What orjson refuses and the standard library takes: each must still be read, as `json` reads it.
LENIENT = [
    b'{"resourceType": "Observation", "valueQuantity": {"value": NaN}}',
    b'{"text": "half a pair \\ud800 of surrogates"}',
    b'{"valueInteger": 9223372036854775807, "n": -9223372036854775808}',
]


@pytest.mark.parametrize("data", LENIENT, ids=["nan", "lone-surrogate", "int64-limits"])
def test_what_orjson_refuses_is_read_as_before(data: bytes) -> None:
    got, want = loads(data), json.loads(data)
    assert json.dumps(got) == json.dumps(want)


@pytest.mark.parametrize("data", [b"{not json", b"", b'{"a": 1} trailing', b"\xff\xfe"])
def test_what_both_refuse_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        loads(data)


@pytest.mark.parametrize("depth", [1_100, 100_000])
def test_nesting_too_deep_for_both_is_a_recursion_error_as_before(depth: int) -> None:
    with pytest.raises(RecursionError):
        json.loads(("[" * depth + "]" * depth).encode())
    with pytest.raises(RecursionError):
        loads(("[" * depth + "]" * depth).encode())


def test_a_number_beyond_64_bits_is_read_as_the_nearest_float() -> None:
    """The one documented difference from `json` (which keeps the integer)."""
    value = loads(b'{"valueDecimal": 123456789012345678901234567890}')["valueDecimal"]
    assert value == float(123456789012345678901234567890)


def test_str_and_bytes_give_the_same_resource() -> None:
    text = '{"resourceType": "Patient", "name": [{"family": "Müller"}], "active": true, "n": 1.5}'
    assert loads(text) == loads(text.encode()) == json.loads(text)


def test_canonical_ignores_key_order_and_keeps_every_value() -> None:
    a = {"resourceType": "Patient", "id": "p1", "name": [{"given": ["Ana"], "family": "Ortiz"}]}
    b = {"name": [{"family": "Ortiz", "given": ["Ana"]}], "id": "p1", "resourceType": "Patient"}
    assert canonical(a) == canonical(b)
    assert canonical(a) != canonical(a | {"id": "p2"})
    big = {"valueInteger": 123456789012345678901234567890}
    assert canonical(big) == b'{"valueInteger":123456789012345678901234567890}'
