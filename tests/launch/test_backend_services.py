"""SMART Backend Services: the signed assertion, token caching and renewal, the published JWKS."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from launch.backend_services import BackendServicesClient
from launch.discovery import Discovery
from launch.errors import LaunchError
from launch.jwks import build_jwks
from launch.registry import Registration, Registry, RegistryError

from .conftest import FakeEhr

BACKEND_ID = "secondlook-backend"


def backend_registration(ehr: FakeEhr, keys: list[dict[str, Any]], **backend: Any) -> Registration:
    return Registration.model_validate(
        {
            "iss": ehr.base,
            "client_id": "launch-client",
            "backend_services": {"client_id": BACKEND_ID, "keys": keys, **backend},
        }
    )


def token_answer(token: str, expires_in: Any = 300) -> tuple[int, dict[str, Any]]:
    return 200, {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": "system/*.rs",
    }


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def decode_assertion(ehr: FakeEhr, registry: Registry, index: int = -1) -> jwt.Token:
    """Verify the client assertion the way an EHR would: with our published JWKS, by kid."""
    form = ehr.token_form(index)
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    keys = KeySet.import_key_set(build_jwks(registry))  # type: ignore[arg-type]
    return jwt.decode(form["client_assertion"], keys, algorithms=["RS384", "ES384"])


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
async def test_assertion_header_and_claims(
    alg: str, ehr: FakeEhr, http: httpx2.AsyncClient, discovery: Discovery, rsa_key: RSAKey, ec_key: ECKey
) -> None:
    key = ec_key if alg == "ES384" else rsa_key
    registration = backend_registration(ehr, [{"jwk": key.as_dict(private=True)}])
    ehr.token_responses.append(token_answer("AT-1"))
    client = BackendServicesClient(http, registration, discovery)
    assert await client.token() == "AT-1"
    token = decode_assertion(ehr, Registry([registration]))
    assert token.header == {"alg": alg, "kid": key.kid, "typ": "JWT"}
    claims = token.claims
    assert claims["iss"] == claims["sub"] == BACKEND_ID
    assert claims["aud"] == ehr.token_url
    assert 0 < claims["exp"] - time.time() <= 300
    assert len(claims["jti"]) >= 32
    assert ehr.token_form()["scope"] == "system/*.rs"
    assert client.granted_scope == "system/*.rs"


async def test_fresh_jti_and_v1_scopes_from_capabilities(
    ehr: FakeEhr, http: httpx2.AsyncClient, discovery: Discovery, ec_key: ECKey
) -> None:
    ehr.config_overrides["capabilities"] = ["permission-v1", "client-confidential-asymmetric"]
    registration = Registration.model_validate(
        {
            "iss": ehr.base,
            "client_id": "launch-client",
            "scope_syntax": "auto",
            "backend_services": {"client_id": BACKEND_ID, "keys": [{"jwk": ec_key.as_dict(private=True)}]},
        }
    )
    ehr.token_responses += [token_answer("AT-1"), token_answer("AT-2")]
    client = BackendServicesClient(http, registration, discovery)
    await client.fetch_access_token()
    await client.fetch_access_token()
    registry = Registry([registration])
    first, second = decode_assertion(ehr, registry, 0), decode_assertion(ehr, registry, 1)
    assert first.claims["jti"] != second.claims["jti"]
    assert ehr.token_form()["scope"] == "system/*.read"


async def test_kid_rotation_next_key_published_then_signs(
    ehr: FakeEhr, http: httpx2.AsyncClient, discovery: Discovery, rsa_key: RSAKey, ec_key: ECKey
) -> None:
    current = {"jwk": rsa_key.as_dict(private=True), "kid": "2026"}
    upcoming = {"jwk": ec_key.as_dict(private=True), "kid": "2027"}
    before = backend_registration(ehr, [current, upcoming])
    jwks = build_jwks(Registry([before]))
    assert [key["kid"] for key in jwks["keys"]] == ["2026", "2027"]
    assert all("d" not in key and key["use"] == "sig" for key in jwks["keys"])
    assert [key["alg"] for key in jwks["keys"]] == ["RS384", "ES384"]

    ehr.token_responses += [token_answer("AT-1"), token_answer("AT-2")]
    await BackendServicesClient(http, before, discovery).token()
    after = backend_registration(ehr, [upcoming, current])  # the next key becomes current
    await BackendServicesClient(http, after, discovery).token()
    assert decode_assertion(ehr, Registry([before]), 0).header["kid"] == "2026"
    # An EHR holding the JWKS published before the switch verifies the new assertions too.
    assert decode_assertion(ehr, Registry([before]), 1).header == {
        "alg": "ES384",
        "kid": "2027",
        "typ": "JWT",
    }


async def test_token_reused_then_renewed_before_expiry(
    ehr: FakeEhr, http: httpx2.AsyncClient, discovery: Discovery, ec_key: ECKey, clock: Clock
) -> None:
    registration = backend_registration(ehr, [{"jwk": ec_key.as_dict(private=True)}])
    ehr.token_responses += [token_answer("AT-1", 300), token_answer("AT-2", "300")]
    client = BackendServicesClient(http, registration, discovery, clock=clock)
    assert await client.token() == "AT-1"
    clock.now += 200
    assert await client.token() == "AT-1"
    assert len(ehr.token_requests) == 1
    clock.now += 50  # 50 s left: inside the renewal margin
    assert await client.token() == "AT-2"
    assert len(ehr.token_requests) == 2


async def test_reauthenticate_after_401_once_for_parallel_callers(
    ehr: FakeEhr, http: httpx2.AsyncClient, discovery: Discovery, ec_key: ECKey
) -> None:
    registration = backend_registration(ehr, [{"jwk": ec_key.as_dict(private=True)}])
    ehr.token_responses += [token_answer("AT-1"), token_answer("AT-2")]
    client = BackendServicesClient(http, registration, discovery)
    stale = await client.token()
    assert await client.reauthenticate(stale) == "AT-2"
    assert await client.reauthenticate(stale) == "AT-2"  # a second task that saw the same 401
    assert len(ehr.token_requests) == 2


async def test_token_error_carries_oauth_error(
    ehr: FakeEhr, http: httpx2.AsyncClient, discovery: Discovery, ec_key: ECKey
) -> None:
    registration = backend_registration(ehr, [{"jwk": ec_key.as_dict(private=True)}])
    ehr.token_responses.append((400, {"error": "invalid_client", "error_description": "unknown kid"}))
    with pytest.raises(LaunchError) as caught:
        await BackendServicesClient(http, registration, discovery).token()
    assert caught.value.error == "invalid_client"
    assert "unknown kid" in caught.value.description
    assert "backend_services" in caught.value.description


def test_registry_file_with_backend_block(tmp_path: Path, rsa_key: RSAKey, ec_key: ECKey) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "current.pem").write_bytes(rsa_key.as_pem(private=True))
    (tmp_path / "next.json").write_text(__import__("json").dumps(ec_key.as_dict(private=True)))
    (tmp_path / "ehrs.toml").write_text(
        """
[[ehr]]
iss = "https://ehr.example.org/fhir/"
client_id = "launch"

[ehr.backend_services]
client_id = "backend"
scopes = "system/Group.rs system/Patient.read"
keys = [
  { kid = "k-current", private_key_path = "keys/current.pem" },
  { private_key_path = "next.json" },
]
"""
    )
    registration = Registry.from_file(tmp_path / "ehrs.toml").require("https://ehr.example.org/fhir")
    backend = registration.backend_services
    assert backend is not None
    assert [(key.key_id, key.signing_alg) for key in backend.keys] == [
        ("k-current", "RS384"),
        ("ec-1", "ES384"),
    ]
    assert backend.signing_key.key_id == "k-current"


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ({"client_id": "b", "keys": []}, "keys"),
        ({"client_id": "b", "keys": [{"kid": "x"}]}, "exactly one of private_key_path or jwk"),
        ({"client_id": "b", "keys": [{"private_key_path": "missing.pem", "kid": "x"}]}, "cannot read"),
        ({"client_id": "b", "scopes": "patient/*.read", "keys": "EC"}, "system scopes"),
        ({"client_id": "b", "keys": "EC", "extra": 1}, "extra"),
        ({"client_id": "b", "keys": "EC-RS384"}, "cannot sign RS384"),
        ({"client_id": "b", "keys": "EC-public"}, "public key"),
        ({"client_id": "b", "keys": "EC-twice"}, "unique"),
    ],
)
def test_backend_block_errors_are_clear(
    tmp_path: Path, ec_key: ECKey, backend: dict[str, Any], message: str
) -> None:
    private = ec_key.as_dict(private=True)
    keys = {
        "EC": [{"jwk": private}],
        "EC-RS384": [{"jwk": private, "alg": "RS384"}],
        "EC-public": [{"jwk": ec_key.as_dict(private=False)}],
        "EC-twice": [{"jwk": private}, {"jwk": private}],
    }
    if isinstance(backend["keys"], str):
        backend = {**backend, "keys": keys[backend["keys"]]}
    with pytest.raises(ValueError, match=message):
        Registration.model_validate(
            {"iss": "https://ehr.example.org/fhir", "client_id": "c", "backend_services": backend}
        )


def test_jwks_refuses_one_kid_for_two_keys(rsa_key: RSAKey, ec_key: ECKey) -> None:
    registrations = [
        Registration.model_validate(
            {
                "iss": iss,
                "client_id": "c",
                "backend_services": {"client_id": "b", "keys": [{"jwk": jwk, "kid": "same"}]},
            }
        )
        for iss, jwk in (
            ("https://a.example/fhir", rsa_key.as_dict(private=True)),
            ("https://b.example/fhir", ec_key.as_dict(private=True)),
        )
    ]
    with pytest.raises(RegistryError, match="two different keys"):
        build_jwks(Registry(registrations))
