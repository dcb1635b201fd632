"""Authorization code + PKCE through the launch page, consent form and token endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from .conftest import APP_ORIGIN, REDIRECT_URI, RunningEhr
from .smart_flow import (
    CONFIDENTIAL_CLIENT,
    FULL_SCOPE,
    AuthRequest,
    authorize,
    consent_form,
    exchange,
    new_launch,
)


@pytest.fixture
def client() -> Iterator[httpx2.Client]:
    with httpx2.Client() as http:
        yield http


def start(client: httpx2.Client, ehr: RunningEhr, **kwargs: object) -> AuthRequest:
    launch = new_launch(client, ehr.base_url, "alpha")
    return AuthRequest(ehr.fhir_base, REDIRECT_URI, launch=launch, **kwargs)  # type: ignore[arg-type]


def test_launch_page_redirects_to_app_with_iss_and_launch(client: httpx2.Client, ehr: RunningEhr) -> None:
    response = client.post(f"{ehr.base_url}/launch", data={"patient": "alpha"})
    assert response.status_code == 303
    target = urlsplit(response.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{APP_ORIGIN}/launch"
    query = parse_qs(target.query)
    assert query["iss"] == [ehr.fhir_base]
    assert len(query["launch"][0]) >= 20


def test_full_ehr_launch_returns_token_with_launch_context(client: httpx2.Client, ehr: RunningEhr) -> None:
    request = start(client, ehr)
    query = authorize(client, ehr.base_url, request)
    assert query["state"] == [request.state]
    response = exchange(client, ehr.base_url, request, query["code"][0])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token = response.json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert token["scope"].split() == FULL_SCOPE.split()
    assert token["patient"] == "alpha"
    assert token["encounter"] == "alpha-enc-new"  # the most recent encounter of the chart
    assert token["fhirContext"] == [{"reference": "Encounter/alpha-enc-new"}]
    assert token["need_patient_banner"] is True
    assert token["smart_style_url"] == f"{ehr.base_url}/smart-style.json"
    assert token["refresh_token"] and token["id_token"]


def test_banner_option_from_launch_page_reaches_token(client: httpx2.Client, ehr: RunningEhr) -> None:
    launch = new_launch(client, ehr.base_url, "beta", banner=False)
    request = AuthRequest(ehr.fhir_base, REDIRECT_URI, launch=launch)
    query = authorize(client, ehr.base_url, request)
    token = exchange(client, ehr.base_url, request, query["code"][0]).json()
    assert token["patient"] == "beta"
    assert token["need_patient_banner"] is False


def test_code_is_single_use(client: httpx2.Client, ehr: RunningEhr) -> None:
    request = start(client, ehr)
    code = authorize(client, ehr.base_url, request)["code"][0]
    assert exchange(client, ehr.base_url, request, code).status_code == 200
    second = exchange(client, ehr.base_url, request, code)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"


def test_wrong_pkce_verifier_is_rejected(client: httpx2.Client, ehr: RunningEhr) -> None:
    request = start(client, ehr)
    code = authorize(client, ehr.base_url, request)["code"][0]
    request.verifier = "x" * 50
    response = exchange(client, ehr.base_url, request, code)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_plain_pkce_method_is_refused_at_authorize(client: httpx2.Client, ehr: RunningEhr) -> None:
    request = start(client, ehr, method="plain")
    response = client.get(f"{ehr.base_url}/auth/authorize", params=request.params())
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"]
    assert query["state"] == [request.state]


def test_missing_code_challenge_is_refused(client: httpx2.Client, ehr: RunningEhr) -> None:
    params = start(client, ehr).params()
    del params["code_challenge"], params["code_challenge_method"]
    response = client.get(f"{ehr.base_url}/auth/authorize", params=params)
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["invalid_request"]


def test_wrong_aud_is_invalid_request(client: httpx2.Client, ehr: RunningEhr) -> None:
    request = start(client, ehr, aud="https://attacker.example/fhir")
    response = client.get(f"{ehr.base_url}/auth/authorize", params=request.params())
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI)
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == ["invalid_request"]
    assert query["state"] == [request.state]


def test_unknown_launch_is_refused(client: httpx2.Client, ehr: RunningEhr) -> None:
    request = AuthRequest(ehr.fhir_base, REDIRECT_URI, launch="not-a-launch-id")
    response = client.get(f"{ehr.base_url}/auth/authorize", params=request.params())
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["invalid_request"]


def test_unregistered_redirect_uri_is_not_redirected_to(client: httpx2.Client, ehr: RunningEhr) -> None:
    request = start(client, ehr)
    request.redirect_uri = "https://attacker.example/callback"
    response = client.get(f"{ehr.base_url}/auth/authorize", params=request.params())
    assert response.status_code == 400
    assert "location" not in response.headers


def test_deny_redirects_with_access_denied_and_state(client: httpx2.Client, ehr: RunningEhr) -> None:
    request = start(client, ehr)
    query = authorize(client, ehr.base_url, request, decision="deny")
    assert query["error"] == ["access_denied"]
    assert query["state"] == [request.state]
    assert "code" not in query


def test_launch_id_cannot_be_reused_after_consent(client: httpx2.Client, ehr: RunningEhr) -> None:
    request = start(client, ehr)
    authorize(client, ehr.base_url, request)
    again = AuthRequest(ehr.fhir_base, REDIRECT_URI, launch=request.launch)
    response = client.get(f"{ehr.base_url}/auth/authorize", params=again.params())
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["invalid_request"]


def test_concurrent_launches_keep_their_own_patient(client: httpx2.Client, ehr: RunningEhr) -> None:
    first = AuthRequest(ehr.fhir_base, REDIRECT_URI, launch=new_launch(client, ehr.base_url, "alpha"))
    second = AuthRequest(ehr.fhir_base, REDIRECT_URI, launch=new_launch(client, ehr.base_url, "beta"))
    page_one = client.get(f"{ehr.base_url}/auth/authorize", params=first.params())
    page_two = client.get(f"{ehr.base_url}/auth/authorize", params=second.params())
    tokens = {}
    for request, page in ((second, page_two), (first, page_one)):
        consent_id, scopes = consent_form(page.text)
        answer = client.post(
            f"{ehr.base_url}/auth/consent",
            data={"consent_id": consent_id, "decision": "allow", "scope": scopes},
        )
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        tokens[request.launch] = exchange(client, ehr.base_url, request, code).json()
    assert tokens[first.launch]["patient"] == "alpha"
    assert tokens[second.launch]["patient"] == "beta"


def test_confidential_client_authenticates_with_basic(client: httpx2.Client, ehr: RunningEhr) -> None:
    request = start(client, ehr, client_id=CONFIDENTIAL_CLIENT)
    code = authorize(client, ehr.base_url, request)["code"][0]
    response = exchange(client, ehr.base_url, request, code)
    assert response.status_code == 200, response.text
    assert response.json()["patient"] == "alpha"


def test_confidential_client_without_secret_is_rejected(client: httpx2.Client, ehr: RunningEhr) -> None:
    request = start(client, ehr, client_id=CONFIDENTIAL_CLIENT)
    code = authorize(client, ehr.base_url, request)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": request.verifier,
        "client_id": CONFIDENTIAL_CLIENT,
    }
    response = client.post(f"{ehr.base_url}/auth/token", data=form)
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"


def test_authorize_by_post_is_supported(client: httpx2.Client, ehr: RunningEhr) -> None:
    request = start(client, ehr)
    page = client.post(f"{ehr.base_url}/auth/authorize", data=request.params())
    assert page.status_code == 200
    consent_id, scopes = consent_form(page.text)
    assert scopes == FULL_SCOPE.split()
    assert consent_id


def test_standalone_launch_uses_patient_picker(client: httpx2.Client, ehr: RunningEhr) -> None:
    request = AuthRequest(
        ehr.fhir_base, REDIRECT_URI, scope="launch/patient openid fhirUser patient/Observation.rs"
    )
    page = client.get(f"{ehr.base_url}/auth/authorize", params=request.params())
    assert page.status_code == 200
    assert '<select id="patient" name="patient"' in page.text
    assert 'value="beta"' in page.text
    query = authorize(client, ehr.base_url, request, patient="beta")
    token = exchange(client, ehr.base_url, request, query["code"][0]).json()
    assert token["patient"] == "beta"
    assert "encounter" not in token


def test_unticked_scope_is_not_granted(client: httpx2.Client, ehr: RunningEhr) -> None:
    request = start(client, ehr)
    query = authorize(client, ehr.base_url, request, untick=("patient/Observation.rs",))
    token = exchange(client, ehr.base_url, request, query["code"][0]).json()
    granted = token["scope"].split()
    assert "patient/Observation.rs" not in granted
    assert "patient/DiagnosticReport.rs" in granted
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    forbidden = client.get(f"{ehr.fhir_base}/Observation", params={"patient": "alpha"}, headers=headers)
    assert forbidden.status_code == 403
    assert forbidden.json()["resourceType"] == "OperationOutcome"
    allowed = client.get(f"{ehr.fhir_base}/DiagnosticReport", params={"patient": "alpha"}, headers=headers)
    assert allowed.status_code == 200


def test_unticked_openid_means_no_id_token(client: httpx2.Client, ehr: RunningEhr) -> None:
    request = start(client, ehr)
    query = authorize(client, ehr.base_url, request, untick=("openid", "online_access"))
    token = exchange(client, ehr.base_url, request, query["code"][0]).json()
    assert "id_token" not in token
    assert "refresh_token" not in token


def test_intent_from_launch_reaches_token(client: httpx2.Client, ehr: RunningEhr) -> None:
    response = client.get(f"{ehr.base_url}/launch", params={"patient": "alpha", "intent": "referral-review"})
    launch = parse_qs(urlsplit(response.headers["location"]).query)["launch"][0]
    request = AuthRequest(ehr.fhir_base, REDIRECT_URI, launch=launch)
    token = exchange(
        client, ehr.base_url, request, authorize(client, ehr.base_url, request)["code"][0]
    ).json()
    assert token["intent"] == "referral-review"
    assert token["need_patient_banner"] is True
