"""Refresh (with and without rotation), access-token expiry and the OpenID Connect id_token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from .conftest import REDIRECT_URI, RunningEhr, run_demo_ehr
from .smart_flow import PUBLIC_CLIENT, AuthRequest, consent_form, ehr_launch_token, exchange, new_launch


@pytest.fixture
def client() -> Iterator[httpx2.Client]:
    with httpx2.Client() as http:
        yield http


def refresh(client: httpx2.Client, ehr: RunningEhr, refresh_token: str, **extra: str) -> httpx2.Response:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": PUBLIC_CLIENT,
        **extra,
    }
    return client.post(f"{ehr.base_url}/auth/token", data=form)


def test_refresh_rotates_and_retires_the_old_refresh_token(client: httpx2.Client, ehr: RunningEhr) -> None:
    token = ehr_launch_token(client, ehr.base_url, ehr.fhir_base, REDIRECT_URI, "alpha")
    first = refresh(client, ehr, token["refresh_token"])
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["access_token"] != token["access_token"]
    assert body["refresh_token"] and body["refresh_token"] != token["refresh_token"]
    assert body["scope"] == token["scope"]
    assert body["patient"] == "alpha"
    reused = refresh(client, ehr, token["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert refresh(client, ehr, body["refresh_token"]).status_code == 200


def test_refresh_may_narrow_but_not_widen_scope(client: httpx2.Client, ehr: RunningEhr) -> None:
    token = ehr_launch_token(client, ehr.base_url, ehr.fhir_base, REDIRECT_URI, "alpha")
    narrowed = refresh(client, ehr, token["refresh_token"], scope="online_access patient/Observation.rs")
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "online_access patient/Observation.rs"
    widened = refresh(client, ehr, narrowed.json()["refresh_token"], scope="user/*.cruds")
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_scope"


def test_refresh_without_rotation_keeps_the_original_refresh_token(client: httpx2.Client) -> None:
    with run_demo_ehr(rotate_refresh_tokens=False) as ehr:
        token = ehr_launch_token(client, ehr.base_url, ehr.fhir_base, REDIRECT_URI, "alpha")
        first = refresh(client, ehr, token["refresh_token"])
        assert first.status_code == 200
        assert "refresh_token" not in first.json()
        second = refresh(client, ehr, token["refresh_token"])
        assert second.status_code == 200
        assert second.json()["access_token"] != first.json()["access_token"]


def test_expired_access_token_gets_401_and_refresh_recovers(client: httpx2.Client) -> None:
    with run_demo_ehr(access_token_ttl=1) as ehr:
        token = ehr_launch_token(client, ehr.base_url, ehr.fhir_base, REDIRECT_URI, "alpha")
        assert token["expires_in"] == 1
        url = f"{ehr.fhir_base}/Patient/alpha"
        assert (
            client.get(url, headers={"Authorization": f"Bearer {token['access_token']}"}).status_code == 200
        )
        time.sleep(1.3)
        expired = client.get(url, headers={"Authorization": f"Bearer {token['access_token']}"})
        assert expired.status_code == 401
        assert expired.json()["resourceType"] == "OperationOutcome"
        assert expired.headers["www-authenticate"].startswith("Bearer")
        renewed = refresh(client, ehr, token["refresh_token"]).json()
        assert (
            client.get(url, headers={"Authorization": f"Bearer {renewed['access_token']}"}).status_code == 200
        )


def test_id_token_verifies_against_published_jwks(client: httpx2.Client, ehr: RunningEhr) -> None:
    token = ehr_launch_token(client, ehr.base_url, ehr.fhir_base, REDIRECT_URI, "alpha")
    config = client.get(f"{ehr.fhir_base}/.well-known/openid-configuration").json()
    keys = KeySet.import_key_set(client.get(config["jwks_uri"]).json())
    decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    assert decoded.header["alg"] == "RS256"
    claims = decoded.claims
    assert claims["iss"] == ehr.fhir_base
    assert claims["aud"] == PUBLIC_CLIENT
    assert claims["fhirUser"].startswith("Practitioner/")
    assert claims["exp"] > time.time() > claims["iat"] - 5
    practitioner_id = claims["fhirUser"].split("/", 1)[1]
    assert claims["sub"] == practitioner_id


def test_id_token_signed_by_another_key_does_not_verify(client: httpx2.Client, ehr: RunningEhr) -> None:
    token = ehr_launch_token(client, ehr.base_url, ehr.fhir_base, REDIRECT_URI, "alpha")
    with run_demo_ehr() as other:
        foreign_keys = KeySet.import_key_set(client.get(f"{other.base_url}/auth/jwks").json())
    with pytest.raises(Exception):  # noqa: B017 - joserfc raises a key/signature error here
        jwt.decode(token["id_token"], foreign_keys, algorithms=["RS256"])


def test_nonce_is_echoed_and_cannot_be_replayed(client: httpx2.Client, ehr: RunningEhr) -> None:
    launch = new_launch(client, ehr.base_url, "alpha")
    request = AuthRequest(ehr.fhir_base, REDIRECT_URI, launch=launch)
    params = {**request.params(), "nonce": "n-0S6_WzA2Mj"}
    page = client.get(f"{ehr.base_url}/auth/authorize", params=params)
    consent_id, scopes = consent_form(page.text)
    answer = client.post(
        f"{ehr.base_url}/auth/consent", data={"consent_id": consent_id, "decision": "allow", "scope": scopes}
    )
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    id_token = exchange(client, ehr.base_url, request, code).json()["id_token"]
    keys = KeySet.import_key_set(client.get(f"{ehr.base_url}/auth/jwks").json())
    assert jwt.decode(id_token, keys, algorithms=["RS256"]).claims["nonce"] == "n-0S6_WzA2Mj"
    replay = AuthRequest(ehr.fhir_base, REDIRECT_URI, launch=new_launch(client, ehr.base_url, "alpha"))
    again = client.get(f"{ehr.base_url}/auth/authorize", params={**replay.params(), "nonce": "n-0S6_WzA2Mj"})
    assert again.status_code == 302
    assert parse_qs(urlsplit(again.headers["location"]).query)["error"] == ["invalid_request"]
