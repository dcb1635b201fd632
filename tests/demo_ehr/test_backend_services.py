"""SMART Backend Services on the demo authorization server: client_credentials with a signed
assertion, and every refusal with its own error description."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from demo_ehr.backend_auth import generate_backend_key, public_jwks
from demo_ehr.config import BackendClientConfig
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from pytest_httpserver import HTTPServer

from .conftest import REDIRECT_URI, RunningEhr, run_demo_ehr
from .smart_flow import ehr_launch_token

BACKEND = "secondlook-backend-test"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ES_KEY = generate_backend_key("ES384")
RS_KEY = generate_backend_key("RS384")
OTHER_KEY = generate_backend_key("ES384")  # never registered
# The registered RSA key without its `alg` binding, so it can sign RS256 (which must be refused).
RS_UNBOUND = RSAKey.import_key({k: v for k, v in RS_KEY.as_dict(private=True).items() if k != "alg"})


def backend_config(**extra: Any) -> tuple[BackendClientConfig, ...]:
    return (
        BackendClientConfig(BACKEND, jwks=public_jwks(ES_KEY, RS_KEY), **extra),
        BackendClientConfig("v1-only-backend", jwks=public_jwks(ES_KEY), scopes=("system/*.read",)),
    )


@pytest.fixture(scope="module")
def ehr() -> Iterator[RunningEhr]:
    with run_demo_ehr(backend_clients=backend_config()) as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx2.Client]:
    with httpx2.Client() as http:
        yield http


def assertion(
    ehr: RunningEhr,
    key: RSAKey | ECKey = ES_KEY,
    *,
    alg: str | None = None,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    alg = alg or ("ES384" if isinstance(key, ECKey) else "RS384")
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": BACKEND,
        "sub": BACKEND,
        "aud": f"{ehr.base_url}/auth/token",
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
    }
    payload.update(claims)
    headers = {"alg": alg, "kid": key.kid, "typ": "JWT", **(header or {})}
    headers = {name: value for name, value in headers.items() if value is not None}
    return jwt.encode(headers, payload, key, algorithms=[alg])


def request_token(
    client: httpx2.Client, ehr: RunningEhr, signed: str, scope: str | None = "system/*.rs"
) -> httpx2.Response:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
    }
    if scope is not None:
        form["scope"] = scope
    return client.post(f"{ehr.base_url}/auth/token", data=form)


def refused(response: httpx2.Response, error: str = "invalid_client") -> str:
    assert response.status_code in (400, 401), response.text
    body = response.json()
    assert body["error"] == error, body
    return str(body["error_description"])


@pytest.mark.parametrize("key", [ES_KEY, RS_KEY], ids=["ES384", "RS384"])
def test_valid_assertion_gets_a_short_lived_system_token(
    client: httpx2.Client, ehr: RunningEhr, key: RSAKey | ECKey
) -> None:
    response = request_token(client, ehr, assertion(ehr, key))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"].lower() == "bearer"
    assert 0 < body["expires_in"] <= 300
    assert body["scope"] == "system/*.rs"
    assert "refresh_token" not in body and "patient" not in body
    # The token reads any patient's data.
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    found = client.get(f"{ehr.fhir_base}/Patient", headers=headers)
    assert found.status_code == 200
    assert found.json()["total"] >= 2


def test_scope_is_narrowed_to_what_was_registered(client: httpx2.Client, ehr: RunningEhr) -> None:
    granted = request_token(client, ehr, assertion(ehr), scope="system/Patient.rs system/Observation.read")
    assert granted.json()["scope"] == "system/Patient.rs system/Observation.read"
    default = request_token(client, ehr, assertion(ehr), scope=None)
    assert default.json()["scope"] == "system/*.rs"
    patient_level = request_token(client, ehr, assertion(ehr), scope="patient/*.rs")
    assert "not a system scope" in refused(patient_level, "invalid_scope")
    signed = assertion(ehr, iss="v1-only-backend", sub="v1-only-backend")
    too_wide = request_token(client, ehr, signed, scope="system/*.cruds")
    assert "Not registered" in refused(too_wide, "invalid_scope")


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            lambda ehr: assertion(ehr, aud="https://elsewhere.example/token"),
            "aud must be this token endpoint",
        ),
        (lambda ehr: assertion(ehr, exp=int(time.time()) - 120), "expired"),
        (lambda ehr: assertion(ehr, exp=int(time.time()) + 3600), "more than 5 minutes"),
        (lambda ehr: assertion(ehr, header={"kid": "no-such-kid"}), "kid 'no-such-kid'"),
        (lambda ehr: assertion(ehr, OTHER_KEY, header={"kid": ES_KEY.kid}), "does not verify"),
        (lambda ehr: assertion(ehr, RS_UNBOUND, alg="RS256"), "alg 'RS256'"),
        (lambda ehr: assertion(ehr, header={"typ": "JOSE"}), "typ"),
        (lambda ehr: assertion(ehr, iss="someone-else"), "iss and sub"),
        (
            lambda ehr: assertion(ehr, iss="unknown", sub="unknown"),
            "not a registered backend services client",
        ),
        (lambda ehr: assertion(ehr, header={"jku": "https://attacker.example/jwks"}), "jku"),
    ],
    ids=[
        "wrong-aud",
        "expired",
        "exp-too-far",
        "unknown-kid",
        "wrong-key",
        "wrong-alg",
        "wrong-typ",
        "iss-not-sub",
        "unknown-client",
        "foreign-jku",
    ],  # fmt: skip
)
def test_rejected_assertions_say_why(
    client: httpx2.Client, ehr: RunningEhr, build: Any, expected: str
) -> None:
    description = refused(request_token(client, ehr, build(ehr)))
    assert expected in description


def test_replayed_jti_is_refused(client: httpx2.Client, ehr: RunningEhr) -> None:
    signed = assertion(ehr)
    assert request_token(client, ehr, signed).status_code == 200
    assert "already used" in refused(request_token(client, ehr, signed))


def test_secret_clients_cannot_use_client_credentials(client: httpx2.Client, ehr: RunningEhr) -> None:
    response = client.post(
        f"{ehr.base_url}/auth/token",
        data={"grant_type": "client_credentials", "scope": "system/*.rs"},
        auth=("secondlook-demo-confidential", "demo-secret-not-for-production"),
    )
    assert response.json()["error"] in ("invalid_client", "unauthorized_client")


def test_jwks_url_registration(client: httpx2.Client, httpserver: HTTPServer) -> None:
    """A client registered by JWKS URL (the preferred way): the demo fetches the key set."""
    httpserver.expect_request("/good/jwks.json").respond_with_json(
        public_jwks(ES_KEY), headers={"Cache-Control": "max-age=60"}
    )
    httpserver.expect_request("/other/jwks.json").respond_with_json(public_jwks(OTHER_KEY))
    configs = (
        BackendClientConfig(BACKEND, jwks_url=httpserver.url_for("/good/jwks.json")),
        BackendClientConfig("other-backend", jwks_url=httpserver.url_for("/other/jwks.json")),
    )
    with run_demo_ehr(backend_clients=configs) as by_url:
        assert request_token(client, by_url, assertion(by_url)).status_code == 200
        assert request_token(client, by_url, assertion(by_url)).status_code == 200  # cached key set
        signed = assertion(by_url, iss="other-backend", sub="other-backend")
        assert f"kid {ES_KEY.kid!r}" in refused(request_token(client, by_url, signed))
    fetched = [entry[0].path for entry in httpserver.log]
    assert fetched.count("/good/jwks.json") == 1


def test_discovery_advertises_backend_services(client: httpx2.Client, ehr: RunningEhr) -> None:
    body = client.get(f"{ehr.fhir_base}/.well-known/smart-configuration").json()
    assert "client-confidential-asymmetric" in body["capabilities"]
    assert "client_credentials" in body["grant_types_supported"]
    assert "private_key_jwt" in body["token_endpoint_auth_methods_supported"]
    assert {"RS384", "ES384"} <= set(body["token_endpoint_auth_signing_alg_values_supported"])
    assert {"system/*.rs", "system/*.read"} <= set(body["scopes_supported"])


def test_patient_token_is_not_a_system_token(client: httpx2.Client, ehr: RunningEhr) -> None:
    token = ehr_launch_token(client, ehr.base_url, ehr.fhir_base, REDIRECT_URI, "alpha")
    assert "system/" not in token["scope"]
