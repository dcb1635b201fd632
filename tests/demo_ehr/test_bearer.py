"""One bearer check for every FHIR and Bulk Data route: without a token, with an unknown or expired
one, and with a token for another patient, each route refuses the same way. The route table is
checked against the app's own routes, each of which must take the one bearer dependency, so a new
route cannot skip the check unnoticed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from demo_ehr.app import ROUTERS
from demo_ehr.bearer import get_grant
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from .conftest import REDIRECT_URI, RunningEhr, run_demo_ehr
from .smart_flow import ehr_launch_token

LOGIN_REQUIRED = {
    "resourceType": "OperationOutcome",
    "issue": [
        {"severity": "error", "code": "login", "diagnostics": "A valid Bearer access token is required."}
    ],
}
# Routes anyone may read: discovery and the CapabilityStatement.
PUBLIC_ROUTES = {
    ("GET", "/fhir/metadata"),
    ("GET", "/fhir/.well-known/smart-configuration"),
    ("GET", "/fhir/.well-known/openid-configuration"),
}
FOR_BETA = {
    "resourceType": "ServiceRequest",
    "status": "draft",
    "intent": "proposal",
    "subject": {"reference": "Patient/beta"},
}
ASYNC = {"Prefer": "respond-async"}


@dataclass(frozen=True)
class Call:
    """One request on one route (`route` as the app declares it), reaching for patient beta's data."""

    method: str
    route: str
    path: str
    json: Any = None
    data: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    bulk: bool = False

    def send(
        self, client: httpx2.Client, fhir_base: str, pages: str, auth: dict[str, str]
    ) -> httpx2.Response:
        return client.request(
            self.method,
            fhir_base + self.path.format(pages=pages),
            json=self.json,
            data=self.data,
            headers={**self.headers, **auth},
        )


FHIR_CALLS = [
    Call("GET", "/fhir", "?_getpages={pages}&_offset=0&_count=1"),
    Call(
        "POST",
        "/fhir",
        "",
        json={
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [{"request": {"method": "GET", "url": "Patient/beta"}}],
        },
    ),
    Call("GET", "/fhir/Binary/{rid}", "/Binary/beta-path-text", headers={"Accept": "text/plain"}),
    Call("GET", "/fhir/{rtype}/{rid}", "/Patient/beta"),
    Call("GET", "/fhir/{rtype}", "/Observation?patient=beta"),
    Call("POST", "/fhir/{rtype}/_search", "/Observation/_search", data={"patient": "beta"}),
    Call("POST", "/fhir/{rtype}", "/ServiceRequest", json=FOR_BETA),
]
BULK_CALLS = [
    *(
        Call(method, route, path, headers=ASYNC, bulk=True)
        for method in ("GET", "POST")
        for route, path in (
            ("/fhir/$export", "/$export"),
            ("/fhir/Patient/$export", "/Patient/$export"),
            ("/fhir/Group/{group_id}/$export", "/Group/oncology-clinic/$export"),
        )
    ),
    Call("GET", "/fhir/$export-status/{job_id}", "/$export-status/some-job", bulk=True),
    Call("DELETE", "/fhir/$export-status/{job_id}", "/$export-status/some-job", bulk=True),
    Call("GET", "/fhir/$export-file/{job_id}/{name}", "/$export-file/some-job/Patient.ndjson", bulk=True),
    Call("GET", "/fhir/$export-manifest/{job_id}/{page}", "/$export-manifest/some-job/1", bulk=True),
]
CALLS = FHIR_CALLS + BULK_CALLS
CALL_IDS = [f"{call.method} {call.route}" for call in CALLS]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx2.Client]:
    with httpx2.Client() as http:
        yield http


@pytest.fixture(scope="module")
def alpha(client: httpx2.Client, ehr: RunningEhr) -> dict[str, str]:
    return bearer(
        ehr_launch_token(client, ehr.base_url, ehr.fhir_base, REDIRECT_URI, "alpha")["access_token"]
    )


@pytest.fixture(scope="module")
def beta_pages(client: httpx2.Client, ehr: RunningEhr) -> str:
    """The `_getpages` key of a search beta's token ran (its pages hold beta's Observations)."""
    beta = bearer(ehr_launch_token(client, ehr.base_url, ehr.fhir_base, REDIRECT_URI, "beta")["access_token"])
    bundle = client.get(f"{ehr.fhir_base}/Observation", params={"_count": 1}, headers=beta).json()
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    return parse_qs(urlsplit(next_url).query)["_getpages"][0]


@pytest.fixture(scope="module")
def expired(client: httpx2.Client) -> Iterator[tuple[RunningEhr, dict[str, str]]]:
    with run_demo_ehr(access_token_ttl=1) as short:
        token = ehr_launch_token(client, short.base_url, short.fhir_base, REDIRECT_URI, "alpha")
        time.sleep(1.3)
        yield short, bearer(token["access_token"])


def protected_routes() -> dict[tuple[str, str], APIRoute]:
    """(method, path) -> route, for every non-public route under /fhir the demo EHR serves."""
    routes = {
        (method, route.path): route
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and route.path.startswith("/fhir")
        for method in route.methods
    }
    return {key: route for key, route in routes.items() if key not in PUBLIC_ROUTES}


def depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(item.call is call or depends_on(item, call) for item in dependant.dependencies)


def test_the_table_names_every_protected_route() -> None:
    assert set(protected_routes()) == {(call.method, call.route) for call in CALLS}


def test_every_protected_route_takes_the_bearer_grant() -> None:
    for key, route in protected_routes().items():
        assert depends_on(route.dependant, get_grant), key


def assert_login_required(response: httpx2.Response) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.headers["www-authenticate"] == 'Bearer realm="demo-ehr"'
    assert response.json() == LOGIN_REQUIRED


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
@pytest.mark.parametrize(
    "auth",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic YWxwaGE6YmV0YQ=="},
        {"Authorization": "Bearer"},
    ],
    ids=["none", "unknown", "basic", "empty"],
)
def test_no_valid_token_is_401(
    client: httpx2.Client, ehr: RunningEhr, call: Call, auth: dict[str, str]
) -> None:
    assert_login_required(call.send(client, ehr.fhir_base, "no-such-pages", auth))


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
def test_expired_token_is_401(
    client: httpx2.Client, expired: tuple[RunningEhr, dict[str, str]], call: Call
) -> None:
    short, auth = expired
    assert_login_required(call.send(client, short.fhir_base, "no-such-pages", auth))


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
def test_another_patients_token_is_403(
    client: httpx2.Client, ehr: RunningEhr, alpha: dict[str, str], beta_pages: str, call: Call
) -> None:
    response = call.send(client, ehr.fhir_base, beta_pages, alpha)
    body = response.json()
    if call.method == "POST" and call.route == "/fhir":
        # A batch answers 200 and refuses entry by entry.
        assert response.status_code == 200 and body["type"] == "batch-response"
        [entry] = body["entry"]
        assert entry["response"]["status"] == "403 Forbidden" and "resource" not in entry
        body = entry["response"]["outcome"]
    else:
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/fhir+json")
        assert "www-authenticate" not in response.headers
    assert body["resourceType"] == "OperationOutcome"
    [issue] = body["issue"]
    assert (issue["severity"], issue["code"]) == ("error", "forbidden")
    if call.bulk:
        assert "system-level token" in issue["diagnostics"]
