from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx2
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from launch.errors import FatalFhirError, FhirAuthError, TemporaryFhirError
from launch.fhir_client import FhirClient
from launch.retry import RetryPolicy, parse_retry_after

from .fakes import RecordingSleep, StaticTokens, bundle, outcome, wait_until

FAST = RetryPolicy(tries=3, base_delay=0.01, max_delay=30.0)


@pytest.fixture
def tokens() -> StaticTokens:
    return StaticTokens()


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def client(
    httpserver: HTTPServer, http: httpx2.AsyncClient, tokens: StaticTokens, sleep: RecordingSleep
) -> FhirClient:
    return FhirClient(httpserver.url_for("/fhir"), http, tokens, retry=FAST, sleep=sleep)


def paths(server: HTTPServer) -> list[str]:
    return [request.full_path.rstrip("?") for request, _response in server.log]


async def test_read_sends_token_and_accept(httpserver: HTTPServer, client: FhirClient) -> None:
    httpserver.expect_request("/fhir/Patient/p1").respond_with_json({"resourceType": "Patient", "id": "p1"})
    assert (await client.read("Patient", "p1"))["id"] == "p1"
    request = httpserver.log[0][0]
    assert request.headers["Authorization"] == "Bearer token-0"
    assert request.headers["Accept"] == "application/fhir+json"


async def test_429_with_retry_after_then_success(
    httpserver: HTTPServer, client: FhirClient, sleep: RecordingSleep
) -> None:
    httpserver.expect_ordered_request("/fhir/Patient/p1").respond_with_json(
        outcome("slow down"), status=429, headers={"Retry-After": "2"}
    )
    httpserver.expect_ordered_request("/fhir/Patient/p1").respond_with_json(
        {"resourceType": "Patient", "id": "p1"}
    )
    assert (await client.read("Patient", "p1"))["id"] == "p1"
    assert sleep.delays == [2.0]


async def test_retry_after_is_capped(
    httpserver: HTTPServer, http: httpx2.AsyncClient, tokens: StaticTokens, sleep: RecordingSleep
) -> None:
    capped = FhirClient(
        httpserver.url_for("/fhir"), http, tokens, retry=RetryPolicy(3, 0.01, 5.0), sleep=sleep
    )
    httpserver.expect_ordered_request("/fhir/Patient/p1").respond_with_data(
        "", status=503, headers={"Retry-After": "600"}
    )
    httpserver.expect_ordered_request("/fhir/Patient/p1").respond_with_json(
        {"resourceType": "Patient", "id": "p1"}
    )
    await capped.read("Patient", "p1")
    assert sleep.delays == [5.0]


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=45), usegmt=True), now) == 45.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=45), usegmt=True), now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_503_twice_then_success(
    httpserver: HTTPServer, client: FhirClient, sleep: RecordingSleep
) -> None:
    for _ in range(2):
        httpserver.expect_ordered_request("/fhir/Condition").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/fhir/Condition").respond_with_json(
        bundle([{"resourceType": "Condition", "id": "c1"}])
    )
    result = await client.search("Condition", {"patient": "p1"})
    assert [r["id"] for r in result.resources] == ["c1"]
    assert sleep.delays == [0.01, 0.02]  # exponential backoff from the base delay


async def test_temporary_error_after_retries(httpserver: HTTPServer, client: FhirClient) -> None:
    httpserver.expect_request("/fhir/Condition").respond_with_json(
        outcome("Database is warming up"), status=503
    )
    with pytest.raises(TemporaryFhirError) as caught:
        await client.search("Condition", {"patient": "secret-mrn-123"})
    assert caught.value.status == 503
    assert caught.value.operation == "search Condition"
    assert "Database is warming up" in caught.value.message
    assert "secret-mrn-123" not in str(caught.value)
    assert len(httpserver.log) == 3


async def test_404_is_fatal_without_retry_and_carries_outcome(
    httpserver: HTTPServer, client: FhirClient, sleep: RecordingSleep
) -> None:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "not-found", "details": {"text": "Resource Patient/zz is gone"}}
        ],
    }
    httpserver.expect_request("/fhir/Patient/zz").respond_with_json(body, status=404)
    with pytest.raises(FatalFhirError) as caught:
        await client.read("Patient", "zz")
    assert caught.value.status == 404
    assert "Resource Patient/zz is gone" in str(caught.value)
    assert len(httpserver.log) == 1 and sleep.delays == []


async def test_401_reauthenticates_once_then_succeeds(
    httpserver: HTTPServer, client: FhirClient, tokens: StaticTokens
) -> None:
    httpserver.expect_ordered_request("/fhir/Patient/p1").respond_with_data("", status=401)
    httpserver.expect_ordered_request("/fhir/Patient/p1").respond_with_json(
        {"resourceType": "Patient", "id": "p1"}
    )
    await client.read("Patient", "p1")
    assert tokens.reauthentications == 1
    assert [r.headers["Authorization"] for r, _ in httpserver.log] == ["Bearer token-0", "Bearer token-1"]


async def test_401_does_not_spend_a_retry(
    httpserver: HTTPServer, client: FhirClient, tokens: StaticTokens
) -> None:
    httpserver.expect_ordered_request("/fhir/Patient/p1").respond_with_data("", status=503)
    httpserver.expect_ordered_request("/fhir/Patient/p1").respond_with_data("", status=401)
    httpserver.expect_ordered_request("/fhir/Patient/p1").respond_with_data("", status=503)
    httpserver.expect_ordered_request("/fhir/Patient/p1").respond_with_json(
        {"resourceType": "Patient", "id": "p1"}
    )
    assert (await client.read("Patient", "p1"))["id"] == "p1"
    assert tokens.reauthentications == 1


async def test_401_after_reauthentication_is_auth_error(
    httpserver: HTTPServer, client: FhirClient, tokens: StaticTokens
) -> None:
    httpserver.expect_request("/fhir/Patient/p1").respond_with_data("", status=401)
    with pytest.raises(FhirAuthError) as caught:
        await client.read("Patient", "p1")
    assert caught.value.status == 401
    assert tokens.reauthentications == 1
    assert len(httpserver.log) == 2


async def test_three_pages_via_opaque_next_links(httpserver: HTTPServer, client: FhirClient) -> None:
    page2 = httpserver.url_for("/fhir?_getpages=abc&_offset=1")
    page3 = httpserver.url_for("/fhir/Observation/_page/xyz")
    httpserver.expect_ordered_request(
        "/fhir/Observation", query_string="patient=p1&category=laboratory"
    ).respond_with_json(bundle([{"resourceType": "Observation", "id": "o1"}], page2))
    httpserver.expect_ordered_request("/fhir", query_string="_getpages=abc&_offset=1").respond_with_json(
        bundle([{"resourceType": "Observation", "id": "o2"}], page3)
    )
    httpserver.expect_ordered_request("/fhir/Observation/_page/xyz").respond_with_json(
        bundle([{"resourceType": "Observation", "id": "o3"}, outcome("Some results were withheld")])
    )
    result = await client.search("Observation", {"patient": "p1", "category": "laboratory"})
    assert [r["id"] for r in result.resources] == ["o1", "o2", "o3"]
    assert result.pages == 3 and not result.truncated
    assert result.outcomes == ["Some results were withheld"]
    httpserver.check_assertions()


@pytest.mark.parametrize(
    "foreign", ["http://127.0.0.1:9/fhir/Observation?page=2", "{server}/other/Observation?page=2"]
)
async def test_next_link_outside_base_is_not_followed(
    foreign: str, httpserver: HTTPServer, client: FhirClient, tokens: StaticTokens
) -> None:
    next_url = foreign.format(server=httpserver.url_for("").rstrip("/"))
    httpserver.expect_request("/fhir/Observation").respond_with_json(
        bundle([{"resourceType": "Observation", "id": "o1"}], next_url)
    )
    result = await client.search("Observation", {"patient": "p1"})
    assert [r["id"] for r in result.resources] == ["o1"]
    assert result.truncated
    assert len(httpserver.log) == 1


async def test_max_pages_truncates(httpserver: HTTPServer, client: FhirClient) -> None:
    httpserver.expect_request("/fhir/Condition").respond_with_json(
        bundle([{"resourceType": "Condition", "id": "c"}], httpserver.url_for("/fhir/Condition?page=again"))
    )
    result = await client.search("Condition", {}, max_pages=2)
    assert result.pages == 2 and result.truncated
    assert len(httpserver.log) == 2


async def test_malformed_json_is_fatal(httpserver: HTTPServer, client: FhirClient) -> None:
    httpserver.expect_request("/fhir/Patient/p1").respond_with_data(
        '{"resourceType": "Pat', content_type="application/fhir+json"
    )
    with pytest.raises(FatalFhirError, match="malformed JSON"):
        await client.read("Patient", "p1")


async def test_batch_posts_a_batch_bundle(httpserver: HTTPServer, client: FhirClient) -> None:
    httpserver.expect_request("/fhir", method="POST").respond_with_json(
        {"resourceType": "Bundle", "type": "batch-response", "entry": [{"response": {"status": "200"}}]}
    )
    entries = [{"request": {"method": "GET", "url": "Patient/p1"}}]
    assert await client.batch(entries) == [{"response": {"status": "200"}}]
    sent = json.loads(httpserver.log[0][0].get_data())
    assert sent == {"resourceType": "Bundle", "type": "batch", "entry": entries}


async def test_fetch_attachment(httpserver: HTTPServer, client: FhirClient) -> None:
    httpserver.expect_request("/fhir/Binary/b1").respond_with_data(
        b"%PDF-1.4 ...", content_type="application/pdf"
    )
    data, content_type = await client.fetch_attachment("Binary/b1", "application/pdf")
    assert data == b"%PDF-1.4 ..." and content_type == "application/pdf"
    request = httpserver.log[0][0]
    assert request.headers["Accept"] == "application/pdf"
    assert request.headers["Authorization"] == "Bearer token-0"


async def test_foreign_attachment_is_refused(httpserver: HTTPServer, client: FhirClient) -> None:
    with pytest.raises(FatalFhirError, match="different server"):
        await client.fetch_attachment("https://files.example.com/Binary/b1", "application/pdf")
    assert httpserver.log == []


async def test_read_timeout_is_retried(
    httpserver: HTTPServer, tokens: StaticTokens, sleep: RecordingSleep
) -> None:
    def slow(_request: Request) -> Response:
        time.sleep(0.2)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/fhir/Patient/p1").respond_with_handler(slow)
    async with httpx2.AsyncClient(timeout=10) as patient_client:
        # The client's own timeout is generous; the FhirClient's per-request timeout is what trips.
        client = FhirClient(
            httpserver.url_for("/fhir"), patient_client, tokens, retry=FAST, timeout=0.05, sleep=sleep
        )
        with pytest.raises(TemporaryFhirError, match="in time"):
            await client.read("Patient", "p1")
    assert sleep.delays == [0.01, 0.02]
    # The single-threaded server still owes the abandoned requests: let it drain so they don't leak into the
    # next test's request log.
    await wait_until(lambda: len(httpserver.log) >= 3)
    assert len(httpserver.log) == 3


@pytest.fixture
def threaded_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


async def test_concurrency_limit_per_ehr(
    threaded_server: HTTPServer, http: httpx2.AsyncClient, tokens: StaticTokens
) -> None:
    lock = threading.Lock()
    in_flight = [0, 0]  # current, maximum

    def counting(_request: Request) -> Response:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        time.sleep(0.1)
        with lock:
            in_flight[0] -= 1
        return Response('{"resourceType": "Patient"}', content_type="application/json")

    threaded_server.expect_request("/fhir/Patient/p1").respond_with_handler(counting)
    base = threaded_server.url_for("/fhir")
    clients = [FhirClient(base, http, tokens, max_concurrency=2) for _ in range(2)]  # the limit is per EHR
    await asyncio.gather(*(clients[i % 2].read("Patient", "p1") for i in range(6)))
    assert in_flight[1] == 2


@pytest.mark.parametrize("bad_id", ["../Observation", "p1?x=1", "", "a" * 65])
async def test_read_refuses_ids_that_change_the_path(
    bad_id: str, httpserver: HTTPServer, client: FhirClient
) -> None:
    with pytest.raises(FatalFhirError, match="not a valid FHIR id"):
        await client.read("Patient", bad_id)
    assert httpserver.log == []


# Dot segments: the check and the request must see the same URL. The base is /fhir/tenantA, so
# both the EHR's own endpoints (/auth/...) and another tenant's data sit just outside it.
ESCAPES = [
    "{base}/../../auth/jwks",
    "{base}/../tenantB/Binary/b1",
    "{base}/%2e%2e/tenantB/Binary/b1",
    "{base}/%2E%2e/tenantB/Binary/b1",
    "{base}/Binary/%2e%2e/%2E%2E/%2e%2E/auth/jwks",
    "{base}/./../tenantB/Binary/b1",
    "{base}/..;/tenantB/Binary/b1",
    "{base}/Binary%2f..%2f..%2ftenantB/b1",
    "{base}/Binary%5C..%5C..%5CtenantB/b1",
    "{base}\\..\\tenantB/Binary/b1",
]


@pytest.fixture
def tenant_client(
    httpserver: HTTPServer, http: httpx2.AsyncClient, tokens: StaticTokens, sleep: RecordingSleep
) -> FhirClient:
    return FhirClient(httpserver.url_for("/fhir/tenantA"), http, tokens, retry=FAST, sleep=sleep)


def tokens_sent(server: HTTPServer) -> list[str]:
    return [request.path for request, _response in server.log if "Authorization" in request.headers]


@pytest.mark.parametrize("escape", ESCAPES)
async def test_attachment_escaping_the_base_by_dot_segments_gets_no_token(
    escape: str, httpserver: HTTPServer, tenant_client: FhirClient
) -> None:
    httpserver.expect_request("/auth/jwks").respond_with_json({"keys": []})
    httpserver.expect_request("/fhir/tenantB/Binary/b1").respond_with_data(b"other tenant")
    with pytest.raises(FatalFhirError):
        await tenant_client.fetch_attachment(escape.format(base=tenant_client.base_url), "text/plain")
    assert tokens_sent(httpserver) == []


@pytest.mark.parametrize("escape", ESCAPES[:6])
async def test_next_link_escaping_the_base_by_dot_segments_is_not_followed(
    escape: str, httpserver: HTTPServer, tenant_client: FhirClient
) -> None:
    httpserver.expect_request("/fhir/tenantA/Observation").respond_with_json(
        bundle([{"resourceType": "Observation", "id": "o1"}], escape.format(base=tenant_client.base_url))
    )
    httpserver.expect_request("/fhir/tenantB/Binary/b1").respond_with_json(bundle([]))
    httpserver.expect_request("/auth/jwks").respond_with_json(bundle([]))
    result = await tenant_client.search("Observation", {"patient": "p1"})
    assert result.truncated
    assert tokens_sent(httpserver) == ["/fhir/tenantA/Observation"]


async def test_dot_segments_inside_the_base_are_requested_normalised(
    httpserver: HTTPServer, tenant_client: FhirClient
) -> None:
    """A harmless `x/../` stays under the base; the URL sent is the resolved one, not the raw text."""
    httpserver.expect_request("/fhir/tenantA/Binary/b1").respond_with_data(b"ok", content_type="text/plain")
    data, _type = await tenant_client.fetch_attachment(
        tenant_client.base_url + "/Binary/x/%2e%2E/b1", "text/plain"
    )
    assert data == b"ok"
    assert [request.path for request, _response in httpserver.log] == ["/fhir/tenantA/Binary/b1"]
