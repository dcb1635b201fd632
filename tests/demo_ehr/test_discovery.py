"""Discovery documents a SMART client reads before launching."""

from __future__ import annotations

import httpx2

from .conftest import RunningEhr


def test_smart_configuration_advertises_endpoints_pkce_and_capabilities(ehr: RunningEhr) -> None:
    response = httpx2.get(f"{ehr.fhir_base}/.well-known/smart-configuration")
    assert response.status_code == 200
    body = response.json()
    assert body["issuer"] == ehr.fhir_base
    assert body["authorization_endpoint"] == f"{ehr.base_url}/auth/authorize"
    assert body["token_endpoint"] == f"{ehr.base_url}/auth/token"
    assert body["jwks_uri"] == f"{ehr.base_url}/auth/jwks"
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert "authorization_code" in body["grant_types_supported"]
    assert body["response_types_supported"] == ["code"]
    assert {"none", "client_secret_basic"} <= set(body["token_endpoint_auth_methods_supported"])
    expected = {
        "launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
        "context-ehr-patient", "context-ehr-encounter", "context-standalone-patient", "context-banner",
        "context-style", "permission-patient", "permission-user", "permission-v1", "permission-v2",
        "permission-offline", "permission-online", "sso-openid-connect", "authorize-post",
    }  # fmt: skip
    assert expected <= set(body["capabilities"])
    assert "launch" in body["scopes_supported"]


def test_openid_configuration_and_jwks(ehr: RunningEhr) -> None:
    config = httpx2.get(f"{ehr.fhir_base}/.well-known/openid-configuration").json()
    assert config["issuer"] == ehr.fhir_base
    assert "RS256" in config["id_token_signing_alg_values_supported"]
    keys = httpx2.get(config["jwks_uri"]).json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA" and keys[0]["kid"]
    assert "d" not in keys[0], "the JWKS must not publish the private exponent"


def test_capability_statement_carries_oauth_uris_for_older_clients(ehr: RunningEhr) -> None:
    response = httpx2.get(f"{ehr.fhir_base}/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "CapabilityStatement"
    extension = body["rest"][0]["security"]["extension"][0]
    assert extension["url"].endswith("/oauth-uris")
    uris = {item["url"]: item["valueUri"] for item in extension["extension"]}
    assert uris == {"authorize": f"{ehr.base_url}/auth/authorize", "token": f"{ehr.base_url}/auth/token"}
    types = {item["type"] for item in body["rest"][0]["resource"]}
    assert {"Patient", "Observation", "DiagnosticReport", "Binary"} <= types


def test_smart_style_document(ehr: RunningEhr) -> None:
    style = httpx2.get(f"{ehr.base_url}/smart-style.json").json()
    assert style["color_background"].startswith("#")
    assert "font_family_body" in style
