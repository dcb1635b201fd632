"""The demo EHR's FHIR JSON: compact UTF-8, and numbers beyond 64 bits still written."""

from __future__ import annotations

import json

from demo_ehr.fhir_responses import FhirResponse


def test_a_response_is_the_json_of_its_content() -> None:
    content = {
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"text": "José Ñandú"}],
        "multipleBirthInteger": 2,
    }
    body = FhirResponse(content).body
    assert json.loads(body) == content
    assert b" " not in body.replace(b"Jos\xc3\xa9 \xc3\x91and\xc3\xba", b"")


def test_an_integer_beyond_64_bits_is_written_digit_for_digit() -> None:
    content = {"resourceType": "Basic", "id": "b1", "extension": [{"valueInteger": 2**70}]}
    assert json.loads(FhirResponse(content).body)["extension"][0]["valueInteger"] == 2**70
