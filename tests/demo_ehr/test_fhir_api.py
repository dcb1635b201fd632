"""The FHIR endpoint: bearer checks, scopes, patient compartment, search, paging, Binary,
batch and conditional create — all over real HTTP against the test fixture bundles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from .conftest import REDIRECT_URI, RunningEhr, run_demo_ehr
from .smart_flow import ehr_launch_token

CEA = "http://loinc.org|2039-6"


@pytest.fixture(scope="module")
def client() -> Iterator[httpx2.Client]:
    with httpx2.Client() as http:
        yield http


@pytest.fixture(scope="module")
def alpha(client: httpx2.Client, ehr: RunningEhr) -> dict[str, str]:
    token = ehr_launch_token(client, ehr.base_url, ehr.fhir_base, REDIRECT_URI, "alpha")
    return {"Authorization": f"Bearer {token['access_token']}"}


def bearer_for(client: httpx2.Client, ehr: RunningEhr, scope: str, patient: str = "alpha") -> dict[str, str]:
    token = ehr_launch_token(client, ehr.base_url, ehr.fhir_base, REDIRECT_URI, patient, scope=scope)
    return {"Authorization": f"Bearer {token['access_token']}"}


def search(client: httpx2.Client, ehr: RunningEhr, headers: dict[str, str], rtype: str, **params: Any) -> Any:
    response = client.get(f"{ehr.fhir_base}/{rtype}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    return response.json()


def matched(bundle: Any) -> list[Any]:
    return [entry["resource"] for entry in bundle["entry"] if entry["search"]["mode"] == "match"]


def test_missing_or_unknown_token_is_401(client: httpx2.Client, ehr: RunningEhr) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
        response = client.get(f"{ehr.fhir_base}/Patient/alpha", headers=headers)
        assert response.status_code == 401
        assert response.json()["resourceType"] == "OperationOutcome"


def test_read_own_patient_and_shared_practitioner(
    client: httpx2.Client, ehr: RunningEhr, alpha: dict[str, str]
) -> None:
    patient = client.get(f"{ehr.fhir_base}/Patient/alpha", headers=alpha)
    assert patient.status_code == 200
    assert patient.json()["name"][0]["family"] == "Alpha"
    assert client.get(f"{ehr.fhir_base}/Practitioner/shared-doc", headers=alpha).status_code == 200


def test_patient_compartment_is_enforced(
    client: httpx2.Client, ehr: RunningEhr, alpha: dict[str, str]
) -> None:
    assert client.get(f"{ehr.fhir_base}/Patient/beta", headers=alpha).status_code == 403
    assert client.get(f"{ehr.fhir_base}/Observation/beta-obs-0", headers=alpha).status_code == 403
    assert client.get(f"{ehr.fhir_base}/Binary/beta-path-text", headers=alpha).status_code == 403
    other = client.get(f"{ehr.fhir_base}/Observation", params={"patient": "Patient/beta"}, headers=alpha)
    assert other.status_code == 403
    unfiltered = search(client, ehr, alpha, "Observation", _count=100)
    assert {res["subject"]["reference"] for res in matched(unfiltered)} == {"Patient/alpha"}
    patients = search(client, ehr, alpha, "Patient")
    assert [res["id"] for res in matched(patients)] == ["alpha"]


def test_user_scope_reaches_beyond_the_launch_patient(client: httpx2.Client, ehr: RunningEhr) -> None:
    headers = bearer_for(client, ehr, "launch user/Observation.rs")
    bundle = search(client, ehr, headers, "Observation", patient="beta")
    assert bundle["total"] == 3


def test_unknown_type_and_id_are_404(client: httpx2.Client, ehr: RunningEhr, alpha: dict[str, str]) -> None:
    for path in ("Observation/does-not-exist", "NotAType/1", "NotAType"):
        response = client.get(f"{ehr.fhir_base}/{path}", headers=alpha)
        assert response.status_code == 404, path
        assert response.json()["resourceType"] == "OperationOutcome"


def test_search_by_category_code_status_and_id(
    client: httpx2.Client, ehr: RunningEhr, alpha: dict[str, str]
) -> None:
    vitals = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"
    assert search(client, ehr, alpha, "Observation", patient="alpha", category="laboratory")["total"] == 30
    assert search(client, ehr, alpha, "Observation", patient="alpha", category=vitals)["total"] == 3
    assert search(client, ehr, alpha, "Observation", category="vital-signs,laboratory")["total"] == 33
    assert search(client, ehr, alpha, "Observation", subject="Patient/alpha", code=CEA)["total"] == 30
    assert search(client, ehr, alpha, "Observation", code="8867-4")["total"] == 3
    assert search(client, ehr, alpha, "Observation", code="http://loinc.org|9999-9")["total"] == 0
    assert search(client, ehr, alpha, "Observation", status="amended")["total"] == 0
    by_id = search(client, ehr, alpha, "Observation", _id="alpha-obs-3,alpha-obs-4")
    assert sorted(res["id"] for res in matched(by_id)) == ["alpha-obs-3", "alpha-obs-4"]
    pathology = search(
        client, ehr, alpha, "DiagnosticReport", patient="alpha", category="http://loinc.org|LP7839-6"
    )
    assert [res["id"] for res in matched(pathology)] == ["alpha-path"]


def test_search_by_date_prefixes(client: httpx2.Client, ehr: RunningEhr, alpha: dict[str, str]) -> None:
    # Fixture CEA values are dated the 1st, 10th and 19th of each month from January to October 2026.
    window = client.get(
        f"{ehr.fhir_base}/Observation",
        params=[("code", CEA), ("date", "ge2026-04-01"), ("date", "lt2026-07-01")],
        headers=alpha,
    ).json()
    assert window["total"] == 9
    assert search(client, ehr, alpha, "Observation", code=CEA, date="2026-02")["total"] == 3
    assert search(client, ehr, alpha, "Observation", code=CEA, date="eq2026-01-10")["total"] == 1
    assert search(client, ehr, alpha, "Observation", code=CEA, date="gt2026-10-10")["total"] == 1
    assert search(client, ehr, alpha, "Observation", code=CEA, date="le2026-01-10")["total"] == 2


def test_sort_by_date(client: httpx2.Client, ehr: RunningEhr, alpha: dict[str, str]) -> None:
    newest = matched(search(client, ehr, alpha, "Observation", code=CEA, _sort="-date", _count=3))
    assert [res["valueQuantity"]["value"] for res in newest] == [29.0, 28.0, 27.0]
    oldest = matched(search(client, ehr, alpha, "Observation", code=CEA, _sort="date", _count=2))
    assert [res["valueQuantity"]["value"] for res in oldest] == [0.0, 1.0]
    updated = matched(search(client, ehr, alpha, "Observation", code=CEA, _sort="-_lastUpdated", _count=1))
    assert updated[0]["id"] == "alpha-obs-29"


def test_paging_through_opaque_next_links(
    client: httpx2.Client, ehr: RunningEhr, alpha: dict[str, str]
) -> None:
    bundle = search(client, ehr, alpha, "Observation", patient="alpha", code=CEA, _count=7)
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        assert bundle["type"] == "searchset" and bundle["total"] == 30
        for entry in bundle["entry"]:
            assert entry["search"]["mode"] == "match"
            assert entry["fullUrl"] == f"{ehr.fhir_base}/Observation/{entry['resource']['id']}"
            seen.append(entry["resource"]["id"])
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        if "next" not in links:
            break
        parts = urlsplit(links["next"])
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == ehr.fhir_base
        assert "_getpages" in parse_qs(parts.query)
        response = client.get(links["next"], headers=alpha)
        assert response.status_code == 200
        bundle = response.json()
    assert pages == 5
    assert sorted(seen) == sorted(f"alpha-obs-{i}" for i in range(30))


def test_next_link_requires_a_bearer(client: httpx2.Client, ehr: RunningEhr, alpha: dict[str, str]) -> None:
    bundle = search(client, ehr, alpha, "Observation", code=CEA, _count=5)
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    assert client.get(next_url).status_code == 401


def test_page_size_default_and_cap() -> None:
    with run_demo_ehr(page_size_default=4, page_size_max=10) as ehr, httpx2.Client() as client:
        headers = bearer_for(client, ehr, "launch patient/Observation.rs")
        assert len(matched(search(client, ehr, headers, "Observation", code=CEA))) == 4
        assert len(matched(search(client, ehr, headers, "Observation", code=CEA, _count=50))) == 10


def test_post_search_with_form_body(client: httpx2.Client, ehr: RunningEhr, alpha: dict[str, str]) -> None:
    response = client.post(
        f"{ehr.fhir_base}/Observation/_search", data={"patient": "alpha", "code": "8867-4"}, headers=alpha
    )
    assert response.status_code == 200
    assert response.json()["total"] == 3


def test_unsupported_parameter_is_ignored_and_reported(
    client: httpx2.Client, ehr: RunningEhr, alpha: dict[str, str]
) -> None:
    bundle = search(client, ehr, alpha, "Observation", code="8867-4", **{"_elements": "id"})
    assert bundle["total"] == 3
    outcomes = [entry for entry in bundle["entry"] if entry["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1
    assert "_elements" in outcomes[0]["resource"]["issue"][0]["diagnostics"]
    modified = search(client, ehr, alpha, "Observation", code="8867-4", **{"code:text": "pulse"})
    assert modified["total"] == 3
    notice = [entry for entry in modified["entry"] if entry["search"]["mode"] == "outcome"]
    assert "code:text" in notice[0]["resource"]["issue"][0]["diagnostics"]


def test_binary_raw_or_json_by_accept(client: httpx2.Client, ehr: RunningEhr, alpha: dict[str, str]) -> None:
    url = f"{ehr.fhir_base}/Binary/alpha-path-text"
    raw = client.get(url, headers={**alpha, "Accept": "text/plain"})
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("text/plain")
    assert raw.text == "FINAL DIAGNOSIS: Invasive ductal carcinoma.\n"
    assert client.get(url, headers={**alpha, "Accept": "*/*"}).text == raw.text
    as_json = client.get(url, headers={**alpha, "Accept": "application/fhir+json"})
    assert as_json.headers["content-type"].startswith("application/fhir+json")
    assert as_json.json()["resourceType"] == "Binary"
    assert as_json.json()["contentType"] == "text/plain"
    assert client.get(url, headers={**alpha, "Accept": "application/pdf"}).status_code == 406


def test_binary_needs_its_own_scope(client: httpx2.Client, ehr: RunningEhr) -> None:
    headers = bearer_for(client, ehr, "launch patient/DiagnosticReport.rs")
    response = client.get(
        f"{ehr.fhir_base}/Binary/alpha-path-text", headers={**headers, "Accept": "text/plain"}
    )
    assert response.status_code == 403
    v1 = bearer_for(client, ehr, "launch patient/Binary.read")
    assert client.get(f"{ehr.fhir_base}/Binary/alpha-path-text", headers=v1).status_code == 200


def test_batch_of_reads_and_searches(client: httpx2.Client, ehr: RunningEhr, alpha: dict[str, str]) -> None:
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient/alpha"}},
            {"request": {"method": "GET", "url": "Observation?code=8867-4&patient=alpha"}},
            {"request": {"method": "GET", "url": f"{ehr.fhir_base}/Condition/alpha-cond"}},
            {"request": {"method": "GET", "url": "Patient/beta"}},
            {"request": {"method": "GET", "url": "Observation/missing"}},
        ],
    }
    response = client.post(f"{ehr.fhir_base}", json=batch, headers=alpha)
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "batch-response"
    statuses = [entry["response"]["status"] for entry in body["entry"]]
    assert statuses == ["200 OK", "200 OK", "200 OK", "403 Forbidden", "404 Not Found"]
    assert body["entry"][0]["resource"]["id"] == "alpha"
    assert body["entry"][1]["resource"]["total"] == 3
    assert body["entry"][3]["response"]["outcome"]["resourceType"] == "OperationOutcome"


def test_conditional_create_is_idempotent(
    client: httpx2.Client, ehr: RunningEhr, alpha: dict[str, str]
) -> None:
    referral = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": "Patient/alpha"},
        "identifier": [{"system": "urn:secondlook:packet", "value": "packet-77"}],
        "code": {"text": "Second opinion referral"},
    }
    headers = {**alpha, "If-None-Exist": "identifier=urn:secondlook:packet|packet-77"}
    created = client.post(f"{ehr.fhir_base}/ServiceRequest", json=referral, headers=headers)
    assert created.status_code == 201
    new_id = created.json()["id"]
    assert created.headers["location"].startswith(f"{ehr.fhir_base}/ServiceRequest/{new_id}")
    again = client.post(f"{ehr.fhir_base}/ServiceRequest", json=referral, headers=headers)
    assert again.status_code == 200
    assert again.json()["id"] == new_id
    found = search(client, ehr, alpha, "ServiceRequest", identifier="urn:secondlook:packet|packet-77")
    assert found["total"] == 1
    existing = client.post(
        f"{ehr.fhir_base}/ServiceRequest",
        json=referral,
        headers={**alpha, "If-None-Exist": "identifier=urn:test:sr|existing-1"},
    )
    assert existing.status_code == 200 and existing.json()["id"] == "alpha-sr"


def test_create_checks_scope_patient_and_type(
    client: httpx2.Client, ehr: RunningEhr, alpha: dict[str, str]
) -> None:
    for_beta = {"resourceType": "ServiceRequest", "status": "draft", "intent": "proposal",
                "subject": {"reference": "Patient/beta"}}  # fmt: skip
    assert client.post(f"{ehr.fhir_base}/ServiceRequest", json=for_beta, headers=alpha).status_code == 403
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": "Patient/alpha"},
    }
    assert client.post(f"{ehr.fhir_base}/Observation", json=observation, headers=alpha).status_code == 405
    read_only = bearer_for(client, ehr, "launch patient/*.read")
    own = {**for_beta, "subject": {"reference": "Patient/alpha"}}
    assert client.post(f"{ehr.fhir_base}/ServiceRequest", json=own, headers=read_only).status_code == 403
    assert client.get(f"{ehr.fhir_base}/Observation/alpha-obs-1", headers=read_only).status_code == 200
    document = {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": "Patient/alpha"},
    }
    writer = bearer_for(client, ehr, "launch patient/DocumentReference.write")
    assert client.post(f"{ehr.fhir_base}/DocumentReference", json=document, headers=writer).status_code == 201
