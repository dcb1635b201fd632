"""`secondlook demo` registers the app as a backend services client of the demo EHR: the app's
registry gets a backend_services block with an in-memory key, the EHR trusts the JWKS built from
that registry, so the app's own Backend Services client obtains a system token with no setup."""

from __future__ import annotations

from pathlib import Path

import httpx2
from demo_ehr.backend_auth import generate_backend_key
from demo_ehr.stack import DEMO_BACKEND_CLIENT_ID, build_demo, demo_backend_client, demo_registry

from launch.backend_services import BackendServicesClient
from launch.discovery import Discovery

from .conftest import run_demo_ehr


async def test_demo_registry_backend_client_gets_a_system_token() -> None:
    key = generate_backend_key("ES384")
    # The EHR trusts the JWKS the app would publish (it does not depend on the issuer).
    trusted = demo_backend_client(demo_registry("http://127.0.0.1:1", key))
    with run_demo_ehr(backend_clients=(trusted,)) as ehr:
        registration = demo_registry(ehr.base_url, key).require(ehr.fhir_base)
        assert registration.backend_services is not None
        assert registration.backend_services.client_id == DEMO_BACKEND_CLIENT_ID
        async with httpx2.AsyncClient() as http:
            token = await BackendServicesClient(http, registration, Discovery(http)).fetch_access_token()
    assert token.scope == "system/*.rs"
    assert token.lifetime <= 300


def test_build_demo_wires_backend_services_and_population(tmp_path: Path) -> None:
    stack = build_demo("127.0.0.1", 18000, 18001, 0, tmp_path, patients=12)
    demo = stack.ehr.app.state.demo_ehr
    assert stack.registration.backend_services is not None
    assert DEMO_BACKEND_CLIENT_ID in demo.memory.clients
    assert demo.config.synthetic_patients == 12
    assert demo.resources.get("Patient", "syn-00011") is not None
    assert demo.resources.get("Group", "oncology-clinic") is not None
