"""The app against a pytest-httpserver EHR double that misbehaves: malformed JSON for one search,
an invalid resource among valid ones, a token endpoint failing. Nothing is lost silently and no
stack trace reaches the user."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from launch.registry import Registration, Registry
from smartapp.web.app import create_app
from tests.support import Browser, free_port, serve_in_thread
from tests.web.conftest import app_settings

AML = {
    "resourceType": "Condition",
    "id": "aml",
    "subject": {"reference": "Patient/p1"},
    "clinicalStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
    },
    "verificationStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
        ]
    },
    "code": {
        "coding": [
            {
                "system": "http://hl7.org/fhir/sid/icd-10-cm",
                "code": "C92.00",
                "display": "Acute myeloid leukemia, not having achieved remission",
            }
        ]
    },
    "onsetDateTime": "2026-11-10",
}
INVALID = {
    "resourceType": "Condition",
    "id": "broken",
    "subject": {"reference": "Patient/p1"},
    "clinicalStatus": "active",
    "code": {"text": 42},
}


def searchset(resources: list[dict]) -> Response:
    body = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}
    return Response(json.dumps(body), content_type="application/fhir+json")


class FaultyEhr:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.token_status = 200
        self.expires_in = 3600
        self.refreshes = 0
        self.down = False  # the Condition search answers 503 (the EHR is partly down)

    @property
    def iss(self) -> str:
        return self.server.url_for("/fhir")

    def install(self) -> None:
        s = self.server
        s.expect_request("/fhir/.well-known/smart-configuration").respond_with_json(
            {
                "authorization_endpoint": s.url_for("/authorize"),
                "token_endpoint": s.url_for("/token"),
                "capabilities": ["launch-ehr", "client-public", "permission-v2"],
                # no code_challenge_methods_supported (athenahealth style): PKCE S256 is still used
            }
        )
        s.expect_request("/authorize").respond_with_handler(self.authorize)
        s.expect_request("/token", method="POST").respond_with_handler(self.token)
        s.expect_request("/fhir/Patient/p1").respond_with_json({"resourceType": "Patient", "id": "p1"})
        s.expect_request("/fhir/Patient").respond_with_handler(
            lambda r: searchset([{"resourceType": "Patient", "id": "p1"}])
        )
        s.expect_request("/fhir/Condition").respond_with_handler(self.conditions)
        s.expect_request("/fhir/DiagnosticReport").respond_with_data(
            "{not json", content_type="application/fhir+json"
        )
        for rtype in (
            "DocumentReference",
            "Observation",
            "Procedure",
            "MedicationRequest",
            "MedicationAdministration",
            "ServiceRequest",
            "CarePlan",
            "Coverage",
            "Specimen",
        ):
            s.expect_request(f"/fhir/{rtype}").respond_with_handler(lambda r: searchset([]))

    def conditions(self, request: Request) -> Response:
        if self.down:
            return Response("<html>Service Unavailable</html>", status=503, content_type="text/html")
        return searchset([AML, INVALID])

    def authorize(self, request: Request) -> Response:
        args = request.args
        assert args["code_challenge_method"] == "S256" and args["aud"] == self.iss
        query = urlencode({"code": "c1", "state": args["state"]})
        return Response(status=302, headers={"Location": f"{args['redirect_uri']}?{query}"})

    def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
        if form["grant_type"] == "refresh_token":
            self.refreshes += 1
            return Response(
                json.dumps({"error": "invalid_grant"}), status=400, content_type="application/json"
            )
        assert form["code_verifier"]
        if self.token_status != 200:
            return Response("<html>Internal error</html>", status=self.token_status, content_type="text/html")
        body = {
            "access_token": "at-1",
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "patient": "p1",
            "refresh_token": "rt-1",
            "scope": "launch patient/*.rs",
            "need_patient_banner": False,
        }
        return Response(json.dumps(body), content_type="application/json")


@pytest.fixture
def faulty(httpserver: HTTPServer, tmp_path: Path) -> Iterator[tuple[FaultyEhr, str]]:
    ehr = FaultyEhr(httpserver)
    ehr.install()
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    registry = Registry([Registration(iss=ehr.iss, client_id="secondlook", client_auth="public")])
    with serve_in_thread(create_app(app_settings(app_url, tmp_path), registry), port):
        yield ehr, app_url


def launch(browser: Browser, ehr: FaultyEhr, app: str) -> httpx2.Response:
    return browser.get(f"{app}/launch", params={"iss": ehr.iss, "launch": "l1"})


def test_malformed_json_and_invalid_resource_do_not_hide_the_rest(faulty, browser: Browser) -> None:
    ehr, app = faulty
    page = launch(browser, ehr, app)
    assert page.status_code == 200
    sid = urlsplit(str(page.request.url)).path.split("/")[2]
    body = browser.get(f"{app}/api/s/{sid}/findings").json()
    result = body["patients"][0]
    # The valid AML condition still counts: time-critical, rare cancer.
    assert result["time_critical"] is not None
    assert any(e["reference"] == "Condition/aml" for e in result["time_critical"]["evidence"])
    assert "rare-cancer" in {f["trigger"] for f in result["findings"]}
    # The invalid one is reported as a data issue, not dropped silently.
    assert any("Condition/broken" in json.dumps(i) for i in result["data_issues"])
    # The malformed search is a gap saying what happened.
    gap = next(g for g in body["summary"]["gaps"] if g["resource_type"] == "DiagnosticReport")
    assert gap["reason"] == "fetch_failed" and "malformed" in gap["message"].lower()
    html = browser.get(f"{app}/s/{sid}/results").text
    assert "could not see" in html and "Traceback" not in html


def test_token_endpoint_failure_is_explained(faulty, browser: Browser) -> None:
    ehr, app = faulty
    ehr.token_status = 500
    page = launch(browser, ehr, app)
    assert page.status_code in (400, 502)
    assert "token_request_failed" in page.text
    assert "Traceback" not in page.text and "at-1" not in page.text


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def test_refused_refresh_ends_the_session_after_one_attempt(faulty, browser: Browser) -> None:
    """The token is within a minute of expiry and the EHR refuses the refresh: the dozen parallel
    reads of one page open share one refresh attempt, and the page says the session ended."""
    ehr, app = faulty
    ehr.expires_in = 30
    page = launch(browser, ehr, app)
    sid = urlsplit(str(page.request.url)).path.split("/")[2]
    results = browser.get(f"{app}/s/{sid}/results", params={"page": 1})
    assert results.status_code == 401 and "session has ended" in results.text.lower()
    assert "Traceback" not in results.text and "rt-1" not in results.text
    for _ in range(3):
        assert browser.get(f"{app}/api/s/{sid}/findings").status_code == 401
    assert ehr.refreshes == 1


def test_an_outage_is_not_kept_as_the_result_once_the_ehr_is_back(
    faulty, browser: Browser, monkeypatch
) -> None:
    from smartapp.web import results

    monkeypatch.setattr(results, "FAILED_TTL_SECONDS", 0.5)
    ehr, app = faulty
    ehr.down = True
    page = launch(browser, ehr, app)
    sid = urlsplit(str(page.request.url)).path.split("/")[2]
    during = browser.get(f"{app}/api/s/{sid}/findings").json()
    assert any(
        g["resource_type"] == "Condition" and g["reason"] == "fetch_failed" for g in during["summary"]["gaps"]
    )
    assert during["patients"][0]["time_critical"] is None
    ehr.down = False
    time.sleep(0.6)
    after = browser.get(f"{app}/api/s/{sid}/findings").json()
    assert not any(g["resource_type"] == "Condition" for g in after["summary"]["gaps"])
    assert after["patients"][0]["time_critical"] is not None  # the AML condition is read now
