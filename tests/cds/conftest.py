"""CDS Hooks test stack: the app on a loopback uvicorn, a key server for the CDS client's JWKS,
and a fake FHIR server (pytest-httpserver) that answers searches from a demo patient's bundle."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from launch.registry import Registry
from smartapp.config import Settings
from smartapp.web.app import create_app
from tests.support import free_port, serve_in_thread

AS_OF = date(2026, 11, 25)
ISS = "https://ehr.test/cds-client"
TENANT_ISS = "https://tenant.test/cds-client"
EHR_ORIGIN = "https://ehr.test"
SERVICE = "secondlook-patient-view"
HOOK_TOKEN = "hook-access-token"  # noqa: S105 - a fake token for the fake FHIR server
PATIENTS = Path(__file__).resolve().parents[2] / "demo" / "demo_ehr" / "fixtures" / "patients"


@dataclass
class Keys:
    rsa: RSAKey
    ec: ECKey
    p256: ECKey  # right family, wrong curve for ES384
    rogue: ECKey  # never published

    def public_set(self) -> dict[str, Any]:
        return KeySet([self.rsa, self.ec, self.p256]).as_dict(private=False)


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(
        RSAKey.generate_key(2048, parameters={"kid": "rs-1"}, private=True),
        ECKey.generate_key("P-384", parameters={"kid": "ec-1"}, private=True),
        ECKey.generate_key("P-256", parameters={"kid": "p256-1"}, private=True),
        ECKey.generate_key("P-384", parameters={"kid": "ec-1"}, private=True),
    )


@pytest.fixture(scope="session")
def key_server(keys: Keys) -> Iterator[str]:
    app = FastAPI()
    document = keys.public_set()

    @app.get("/jwks.json")
    def jwks() -> dict[str, Any]:
        return document

    @app.get("/unlisted-jwks.json")
    def unlisted() -> dict[str, Any]:
        return KeySet([keys.rogue]).as_dict(private=False)

    with serve_in_thread(app, free_port()) as url:
        yield url


@pytest.fixture(scope="session")
def fhir_base(make_httpserver: HTTPServer) -> str:
    return make_httpserver.url_for("/fhir")


@dataclass
class Stack:
    url: str
    app: FastAPI
    fhir_base: str
    key_server: str
    keys: Keys
    http: httpx2.Client = field(default_factory=lambda: httpx2.Client(timeout=30))

    def token(self, path: str, **options: Any) -> str:
        return mint(self.keys, self.url + path, **options)

    def call(
        self, body: dict[str, Any], *, token: str | None = None, path: str = f"/cds-services/{SERVICE}"
    ) -> httpx2.Response:
        bearer = token if token is not None else self.token(path)
        return self.http.post(self.url + path, json=body, headers={"Authorization": f"Bearer {bearer}"})


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, key_server: str, fhir_base: str, keys: Keys
) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("cds")
    clients = data / "cds-clients.toml"
    clients.write_text(
        f'[[client]]\niss = "{ISS}"\njwks_url = "{key_server}/jwks.json"\njku = ["{key_server}/jwks.json"]\n'
        f'fhir_servers = ["{fhir_base}"]\ncors_origins = ["{EHR_ORIGIN}"]\n\n'
        f'[[client]]\niss = "{TENANT_ISS}"\njwks_url = "{key_server}/jwks.json"\ntenant = "hospital-a"\n'
    )
    port = free_port()
    settings = Settings(
        public_url=f"http://127.0.0.1:{port}",
        database_url=f"sqlite+aiosqlite:///{data / 'app.db'}",
        cds_clients=clients,
    )
    app = create_app(settings, Registry([]))
    app.state.cds_today = lambda: AS_OF
    with serve_in_thread(app, port) as url:
        s = Stack(url, app, fhir_base, key_server, keys)
        yield s
        s.http.close()


def mint(
    keys: Keys,
    aud: str | list[str],
    *,
    alg: str = "ES384",
    iss: str = ISS,
    exp_in: int = 300,
    jti: str | None = None,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    key: RSAKey | ECKey | None = None,
) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "iat": now,
        "exp": now + exp_in,
        "jti": jti or str(uuid.uuid4()),
    }
    body.update(claims or {})
    signer = key or (keys.rsa if alg == "RS384" else keys.ec)
    head = {"alg": alg, "typ": "JWT", "kid": signer.kid, **(header or {})}
    return jwt.encode(head, body, signer, algorithms=[alg])


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


def patient_resources(patient_id: str) -> list[dict[str, Any]]:
    for path in sorted(PATIENTS.glob("[0-9]*.json")):
        resources = [e["resource"] for e in json.loads(path.read_text())["entry"]]
        if any(r["resourceType"] == "Patient" and r["id"] == patient_id for r in resources):
            return resources
    raise LookupError(patient_id)


@dataclass
class FakeFhir:
    """Answers reads, `patient=` searches and Binary downloads for one demo patient; records calls."""

    resources: list[dict[str, Any]]
    calls: list[tuple[str, str]] = field(default_factory=list)  # (path, Authorization header)
    status: int = 200  # force every search to answer this

    def handle(self, request: Request) -> Response:
        self.calls.append((request.path, request.headers.get("Authorization", "")))
        if request.headers.get("Authorization") != f"Bearer {HOOK_TOKEN}":
            return Response(status=401)
        parts = request.path.split("/")[2:]
        if self.status != 200 and len(parts) == 1:
            outcome = {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "forbidden"}],
            }
            return Response(json.dumps(outcome), status=self.status, content_type="application/fhir+json")
        if len(parts) == 2:
            found = [r for r in self.resources if r["resourceType"] == parts[0] and r["id"] == parts[1]]
            if not found:
                return Response(status=404)
            if parts[0] == "Binary":
                return Response(base64.b64decode(found[0]["data"]), content_type=found[0]["contentType"])
            return Response(json.dumps(found[0]), content_type="application/fhir+json")
        matches = [r for r in self.resources if r["resourceType"] == parts[0]]
        if "_id" in request.args:
            matches = [r for r in matches if r["id"] == request.args["_id"]]
        bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in matches]}
        return Response(json.dumps(bundle), content_type="application/fhir+json")


@pytest.fixture
def fake_fhir(httpserver: HTTPServer) -> Iterator[Any]:
    def serve(patient_id: str) -> FakeFhir:
        fake = FakeFhir(patient_resources(patient_id))
        httpserver.expect_request(re.compile(r"^/fhir/.*")).respond_with_handler(fake.handle)
        return fake

    yield serve
