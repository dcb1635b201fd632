"""Prefetch first, FHIR fallback for the rest with the hook's token only, 412 when data is missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer

from smartapp.cds.discovery import PREFETCH
from smartapp.cds.fetch import read_prefetch
from tests.cds.conftest import HOOK_TOKEN, SERVICE, Stack
from tests.cds.requests import minimal_request

DATA = Path(__file__).resolve().parents[1] / "data" / "cds"


def aml_request(stack: Stack) -> dict[str, Any]:
    text = (DATA / "aml-time-critical-prefetch" / "request.json").read_text()
    request: dict[str, Any] = json.loads(text.replace("{{FHIR_SERVER}}", stack.fhir_base))
    return request


def searched_types(calls: list[tuple[str, str]]) -> set[str]:
    return {path.split("/")[2] for path, _ in calls if path.count("/") == 2}


def test_only_the_keys_missing_from_prefetch_are_read(stack: Stack, fake_fhir: Any) -> None:
    fake = fake_fhir("demo-aml")
    request = aml_request(stack)
    for key in ("diagnosticReports", "observations", "carePlans"):
        del request["prefetch"][key]
    response = stack.call(request)
    assert response.status_code == 200
    assert searched_types(fake.calls) == {"DiagnosticReport", "Observation", "CarePlan"}
    assert [c["indicator"] for c in response.json()["cards"]] == ["critical", "warning"]


def test_prefetch_without_authorization_is_evaluated_and_unread_text_is_named(
    stack: Stack, fake_fhir: Any
) -> None:
    fake = fake_fhir("demo-aml")
    request = aml_request(stack)
    del request["fhirAuthorization"], request["fhirServer"]
    response = stack.call(request)
    assert response.status_code == 200
    cards = response.json()["cards"]
    assert cards[0]["indicator"] == "critical"  # the coded AML Condition is enough
    assert "_Not checked:_ Binary" in cards[1]["detail"]
    assert fake.calls == []


def test_fhir_server_not_allowed_for_the_client_gets_412_and_no_token_is_sent(
    stack: Stack, fake_fhir: Any, httpserver: HTTPServer
) -> None:
    fake = fake_fhir("demo-aml")
    request = aml_request(stack)
    del request["prefetch"]
    request["fhirServer"] = stack.fhir_base.replace("/fhir", "/elsewhere/fhir")
    response = stack.call(request)
    assert response.status_code == 412
    outcome = response.json()
    assert (
        outcome["resourceType"] == "OperationOutcome" and "not accepted" in outcome["issue"][0]["diagnostics"]
    )
    assert fake.calls == [] and not [entry for entry in httpserver.log if "elsewhere" in entry[0].path]


def test_token_for_another_patient_is_not_used(stack: Stack, fake_fhir: Any) -> None:
    fake = fake_fhir("demo-aml")
    request = aml_request(stack)
    del request["prefetch"]
    request["fhirAuthorization"]["patient"] = "someone-else"
    assert stack.call(request).status_code == 412
    assert fake.calls == []


def test_rejected_token_is_not_refreshed_and_gives_412(stack: Stack, fake_fhir: Any) -> None:
    fake = fake_fhir("demo-aml")
    request = aml_request(stack)
    del request["prefetch"]
    request["fhirAuthorization"]["access_token"] = "expired-token"  # noqa: S105 - fake
    response = stack.call(request)
    assert response.status_code == 412
    assert "rejected the access token" in response.json()["issue"][0]["diagnostics"]
    searches = [path for path, _ in fake.calls]
    assert len(searches) == len(set(searches))  # one try per search: no refresh, no retry with another token


def test_forbidden_searches_for_required_data_give_412(stack: Stack, fake_fhir: Any) -> None:
    fake = fake_fhir("demo-aml")
    fake.status = 403
    request = aml_request(stack)
    del request["prefetch"]["conditions"]
    response = stack.call(request)
    assert response.status_code == 412
    assert "conditions" in response.json()["issue"][0]["diagnostics"]


def test_scope_without_a_required_type_gives_412_without_calling(stack: Stack, fake_fhir: Any) -> None:
    fake = fake_fhir("demo-aml")
    request = aml_request(stack)
    del request["prefetch"]["observations"]
    request["fhirAuthorization"]["scope"] = "patient/Patient.read patient/Condition.read patient/Binary.read"
    response = stack.call(request)
    assert response.status_code == 412
    assert "observations" in response.json()["issue"][0]["diagnostics"]
    assert "Observation" not in searched_types(fake.calls)


def test_operation_outcome_in_prefetch_counts_as_missing(stack: Stack) -> None:
    request = minimal_request()
    request["prefetch"]["diagnosticReports"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "too-costly"}],
    }
    response = stack.call(request)
    assert response.status_code == 412
    assert "diagnosticReports" in response.json()["issue"][0]["diagnostics"]


def test_optional_keys_missing_without_authorization_still_answer(stack: Stack) -> None:
    request = minimal_request()
    for key in ("procedures", "coverage", "specimens"):
        del request["prefetch"][key]
    assert stack.call(request).json() == {"cards": []}


def test_malformed_requests(stack: Stack) -> None:
    bad = stack.call({"hook": "patient-view", "context": {}})
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    other_hook = {**minimal_request(), "hook": "order-sign"}
    assert stack.call(other_hook).status_code == 400
    unknown = stack.call(minimal_request(), path="/cds-services/nope")
    assert unknown.status_code == 404
    assert stack.call(minimal_request(), path="/cds-services/nope", token="x").status_code == 401


def test_read_prefetch_keys() -> None:
    page = {
        "resourceType": "Bundle",
        "entry": [{"resource": {"resourceType": "Condition", "id": "c"}}],
        "link": [{"relation": "next", "url": "https://fhir.test/page2"}],
    }
    found, partial = read_prefetch(
        {
            "conditions": page,
            "carePlans": None,
            "patient": {"resourceType": "Patient", "id": "p"},
            "observations": {"resourceType": "OperationOutcome"},
            "unknownKey": page,
        }
    )
    assert found == {
        "patient": [{"resourceType": "Patient", "id": "p"}],
        "conditions": [{"resourceType": "Condition", "id": "c"}],
        "carePlans": [],
    }
    assert partial == {"conditions"}
    assert set(PREFETCH) >= set(found)
    assert HOOK_TOKEN and SERVICE


def test_paged_prefetch_is_read_again_in_full(stack: Stack, fake_fhir: Any) -> None:
    fake = fake_fhir("demo-aml")
    request = aml_request(stack)
    conditions = request["prefetch"]["conditions"]
    conditions["entry"] = conditions["entry"][:1]
    conditions["link"] = [{"relation": "next", "url": stack.fhir_base + "/Condition?page=2"}]
    response = stack.call(request)
    assert response.status_code == 200
    assert searched_types(fake.calls) == {"Condition"}
    assert [c["indicator"] for c in response.json()["cards"]] == ["critical", "warning"]


def test_attachment_urls_escaping_the_fhir_server_get_no_hook_token(
    stack: Stack, fake_fhir: Any, httpserver: HTTPServer
) -> None:
    """`fhirServer` + `/../` or `/%2e%2e/` resolves outside the FHIR base: the hook's token stays home."""
    fake_fhir("demo-aml")
    httpserver.expect_request("/auth/jwks").respond_with_data(b"the EHR's keys", content_type="text/plain")
    request = aml_request(stack)
    reports = request["prefetch"]["diagnosticReports"]["entry"]
    escapes = [
        stack.fhir_base + "/../auth/jwks",
        stack.fhir_base + "/%2e%2E/auth/jwks",
        "Binary/%2E%2e/../auth/jwks",
    ]
    for entry, url in zip(reports, escapes, strict=False):
        entry["resource"]["presentedForm"][0]["url"] = url
    response = stack.call(request)
    assert response.status_code == 200
    leaked = [r for r, _ in httpserver.log if r.path.startswith("/auth/") and "Authorization" in r.headers]
    assert leaked == []


def test_packet_only_types_are_not_read_for_a_card(stack: Stack, fake_fhir: Any) -> None:
    fake = fake_fhir("demo-aml")
    request = aml_request(stack)
    del request["prefetch"]
    assert stack.call(request).status_code == 200
    assert "Specimen" not in searched_types(fake.calls)
    assert {"Condition", "DiagnosticReport", "Observation"} <= searched_types(fake.calls)
