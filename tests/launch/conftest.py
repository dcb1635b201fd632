"""Fixtures for launch tests: a fake EHR on pytest-httpserver, signing keys, SQL stores."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from pytest_httpserver import HTTPServer
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from werkzeug import Request, Response

from launch.crypto import TokenCipher, generate_key
from launch.discovery import Discovery
from launch.fhir_client import FhirClient
from launch.registry import Registration, Registry
from launch.retry import RetryPolicy
from launch.sessions import SessionStore, metadata
from tests.launch.fakes import RecordingSleep, StaticTokens

POSTGRES_ENV = "SECONDLOOK_TEST_POSTGRES_URL"
CLIENT_ID = "secondlook-test"


@pytest.fixture(scope="session")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True)


@pytest.fixture(scope="session")
def ec_key() -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": "ec-1"}, private=True)


@pytest.fixture(scope="session")
def ehr_signing_key() -> RSAKey:
    """The fake EHR's id_token signing key."""
    return RSAKey.generate_key(2048, parameters={"kid": "ehr-1"}, private=True)


@dataclass
class FakeEhr:
    """A SMART EHR double: smart-configuration, JWKS, and a token endpoint answering from a queue."""

    server: HTTPServer
    signing_key: RSAKey | ECKey
    id_token_alg: str = "RS256"
    base_path: str = "/fhir"
    token_responses: list[tuple[int, Any]] = field(default_factory=list)
    token_requests: list[Request] = field(default_factory=list)
    config_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.server.url_for(self.base_path)

    @property
    def token_url(self) -> str:
        return self.server.url_for("/auth/token")

    def smart_configuration(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "issuer": self.base,
            "authorization_endpoint": self.server.url_for("/auth/authorize"),
            "token_endpoint": self.token_url,
            "jwks_uri": self.server.url_for("/auth/jwks"),
            "capabilities": ["launch-ehr", "launch-standalone", "permission-v2", "sso-openid-connect"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
        }
        config.update(self.config_overrides)
        return {k: v for k, v in config.items() if v is not None}

    def install(self) -> None:
        self.server.expect_request(self.base_path + "/.well-known/smart-configuration").respond_with_handler(
            lambda _request: Response(json.dumps(self.smart_configuration()), content_type="application/json")
        )
        self.server.expect_request("/auth/jwks").respond_with_handler(
            lambda _request: Response(
                json.dumps({"keys": [self.signing_key.as_dict(private=False)]}),
                content_type="application/json",
            )
        )
        self.server.expect_request("/auth/token", method="POST").respond_with_handler(self._token)

    def _token(self, request: Request) -> Response:
        self.token_requests.append(request)
        status, body = (
            self.token_responses.pop(0) if self.token_responses else (500, {"error": "no answer queued"})
        )
        text = body if isinstance(body, str) else json.dumps(body)
        return Response(text, status=status, content_type="application/json")

    def token_form(self, index: int = -1) -> dict[str, str]:
        request = self.token_requests[index]
        return {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}

    def id_token(self, **claims: Any) -> str:
        now = int(__import__("time").time())
        payload = {"iss": self.base, "aud": CLIENT_ID, "sub": "u1", "iat": now, "exp": now + 300}
        payload.update(claims)
        alg = "ES384" if isinstance(self.signing_key, ECKey) else self.id_token_alg
        return jwt.encode(
            {"alg": alg, "kid": self.signing_key.kid}, payload, self.signing_key, algorithms=[alg]
        )


@pytest.fixture
def ehr(httpserver: HTTPServer, ehr_signing_key: RSAKey) -> FakeEhr:
    fake = FakeEhr(httpserver, ehr_signing_key)
    fake.install()
    return fake


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    from launch.http import create_http_client

    client = create_http_client(timeout=5.0)
    yield client
    await client.aclose()


@pytest.fixture
def client(httpserver: HTTPServer, http: httpx2.AsyncClient) -> FhirClient:
    """A FHIR client of the test server that tries twice and never waits (a module's own `client`
    fixture takes its place)."""
    return FhirClient(
        httpserver.url_for("/fhir"),
        http,
        StaticTokens(),
        retry=RetryPolicy(2, 0.0, 0.0),
        sleep=RecordingSleep(),
    )


@pytest.fixture
def cipher() -> TokenCipher:
    return TokenCipher([generate_key()])


def make_registry(ehr: FakeEhr, **overrides: Any) -> Registry:
    fields: dict[str, Any] = {"iss": ehr.base, "client_id": CLIENT_ID, "client_auth": "public"}
    fields.update(overrides)
    return Registry([Registration.model_validate(fields)])


@pytest.fixture
def registry(ehr: FakeEhr) -> Registry:
    return make_registry(ehr)


@pytest.fixture
def discovery(http: httpx2.AsyncClient) -> Discovery:
    return Discovery(http)


def _database_urls() -> list[Any]:
    postgres = os.environ.get(POSTGRES_ENV)
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param(
            postgres,
            id="postgresql",
            marks=pytest.mark.skipif(not postgres, reason=f"{POSTGRES_ENV} is not set (CI sets it)"),
        ),
    ]


@pytest.fixture(params=_database_urls())
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = request.param
    if url == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'launch.db'}"
    created = create_async_engine(url)
    async with created.begin() as conn:
        await conn.run_sync(metadata.drop_all)
    yield created
    async with created.begin() as conn:
        await conn.run_sync(metadata.drop_all)
    await created.dispose()


@pytest.fixture
async def store(engine: AsyncEngine, cipher: TokenCipher) -> SessionStore:
    created = SessionStore(engine, cipher)
    await created.create_tables()
    return created


@pytest.fixture
def no_env_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("EPIC_SECRET", raising=False)
    yield


@pytest.fixture
async def lite_store(tmp_path: Path, cipher: TokenCipher) -> AsyncIterator[SessionStore]:
    """A SQLite-only store for tests whose subject is not the store itself."""
    created_engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'flow.db'}")
    created = SessionStore(created_engine, cipher)
    await created.create_tables()
    yield created
    await created_engine.dispose()
