"""The per-EHR in-flight limit: the registry's `max_concurrency`, back-off on 429/503, recovery.

The server is a real local HTTP server (pytest-httpserver, threaded) that counts the requests it
has in flight at once, so the limits are checked as the EHR sees them."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from launch.fetch import SearchSpec, fetch_searches
from launch.fhir_client import BULK, DEFAULT_MAX_CONCURRENCY, URGENT, EhrLimit, FhirClient
from launch.registry import Registry
from launch.retry import RetryPolicy
from launch.scopes import GrantedScopes

from .fakes import RecordingSleep, StaticTokens, bundle

APP_DEFAULT = 48  # the app's SECONDLOOK_FHIR_MAX_CONCURRENCY default
FAST = RetryPolicy(tries=4, base_delay=0.01, max_delay=30.0)


class CountingEhr:
    """Handlers that record how many requests the server is answering at the same moment."""

    def __init__(self, hold: float = 0.05) -> None:
        self.hold = hold
        self.lock = threading.Lock()
        self.current = 0
        self.peak = 0
        self.requests = 0
        self.peaks_after_throttle: list[int] = []  # peak in flight once a 429 has been sent
        self.throttled = False

    def handler(self, answer: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            with self.lock:
                self.current += 1
                self.requests += 1
                self.peak = max(self.peak, self.current)
                if self.throttled:
                    self.peaks_after_throttle.append(self.current)
            try:
                time.sleep(self.hold)
                return answer(request)
            finally:
                with self.lock:
                    self.current -= 1

        return handle


@pytest.fixture
def threaded_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def registry_with(tmp_path: Path, base: str, extra: str = "") -> Registry:
    path = tmp_path / "ehrs.toml"
    path.write_text(f'[[ehr]]\niss = "{base}"\nclient_id = "secondlook"\n{extra}', encoding="utf-8")
    return Registry.from_file(path)


def patient(_request: Request) -> Response:
    return Response(json.dumps({"resourceType": "Patient", "id": "p1"}), content_type="application/fhir+json")


def test_registry_value_and_default(tmp_path: Path) -> None:
    limited = registry_with(tmp_path, "https://ehr.example.org/fhir", "max_concurrency = 4\n")
    assert limited.require("https://ehr.example.org/fhir").concurrency(APP_DEFAULT) == 4
    plain = registry_with(tmp_path, "https://ehr.example.org/fhir")
    assert plain.require("https://ehr.example.org/fhir").concurrency(APP_DEFAULT) == APP_DEFAULT
    assert DEFAULT_MAX_CONCURRENCY == APP_DEFAULT


@pytest.mark.parametrize("value", ["0", "-3", '"many"'])
def test_registry_refuses_a_bad_limit(tmp_path: Path, value: str) -> None:
    from launch.registry import RegistryError

    with pytest.raises(RegistryError, match="max_concurrency"):
        registry_with(tmp_path, "https://ehr.example.org/fhir", f"max_concurrency = {value}\n")


async def test_peak_concurrency_seen_by_the_ehr_is_the_registry_value(
    tmp_path: Path, threaded_server: HTTPServer, http: httpx2.AsyncClient
) -> None:
    ehr = CountingEhr()
    threaded_server.expect_request("/fhir/Patient/p1").respond_with_handler(ehr.handler(patient))
    base = threaded_server.url_for("/fhir")
    registration = registry_with(tmp_path, base, "max_concurrency = 3\n").require(base)
    clients = [
        FhirClient(base, http, StaticTokens(), max_concurrency=registration.concurrency(APP_DEFAULT))
        for _ in range(2)  # two launches of the same EHR share its limit
    ]
    await asyncio.gather(*(clients[i % 2].read("Patient", "p1") for i in range(12)))
    assert ehr.requests == 12
    assert ehr.peak == 3


def paged_observations(ehr: CountingEhr, server: HTTPServer, pages: int, throttle_first: int) -> list[str]:
    """`pages` chains of Observation pages (one chain per `code`); the first `throttle_first`
    requests get 429 with Retry-After: 0. Returns every id the server holds."""
    base = server.url_for("/fhir")
    ids: list[str] = []
    answered = [0]

    def answer(request: Request) -> Response:
        with ehr.lock:
            answered[0] += 1
            throttle = answered[0] <= throttle_first
            if throttle:
                ehr.throttled = True
        if throttle:
            return Response(
                "{}", status=429, headers={"Retry-After": "0"}, content_type="application/fhir+json"
            )
        chain = request.args.get("code", "")
        page = int(request.args.get("page", "0"))
        resources: list[dict[str, Any]] = [
            {"resourceType": "Observation", "id": f"{chain}-{page}-{i}"} for i in range(3)
        ]
        following = f"{base}/Observation?code={chain}&page={page + 1}" if page + 1 < pages else None
        return Response(json.dumps(bundle(resources, following)), content_type="application/fhir+json")

    server.expect_request("/fhir/Observation").respond_with_handler(ehr.handler(answer))
    for chain in range(8):
        ids += [f"c{chain}-{page}-{i}" for page in range(pages) for i in range(3)]
    return ids


async def test_a_throttling_ehr_still_yields_the_complete_record_with_the_limit_halved(
    threaded_server: HTTPServer, http: httpx2.AsyncClient
) -> None:
    ehr = CountingEhr(hold=0.03)
    expected = paged_observations(ehr, threaded_server, pages=3, throttle_first=8)
    base = threaded_server.url_for("/fhir")
    client = FhirClient(base, http, StaticTokens(), max_concurrency=8, retry=FAST, sleep=RecordingSleep())
    searches = [SearchSpec("Observation", {"code": f"c{n}"}, f"observations {n}") for n in range(8)]
    result = await fetch_searches(client, searches, GrantedScopes.parse("patient/Observation.rs"))
    assert result.gaps == []
    assert sorted(r["id"] for r in result.resources) == sorted(expected)
    # One burst of 429s halves the limit once (8 → 4), and it stays down during the cool-down.
    assert client.limit.limit == 4
    assert ehr.peak == 8
    assert max(ehr.peaks_after_throttle) <= 8
    # The retries and the later pages were sent within the halved limit.
    assert ehr.peaks_after_throttle[-12:] and max(ehr.peaks_after_throttle[-12:]) <= 4


async def test_an_ehr_that_keeps_refusing_becomes_an_explicit_gap(
    threaded_server: HTTPServer, http: httpx2.AsyncClient
) -> None:
    ehr = CountingEhr(hold=0.0)

    def unavailable(_request: Request) -> Response:
        return Response("{}", status=503, headers={"Retry-After": "0"}, content_type="application/fhir+json")

    threaded_server.expect_request("/fhir/Condition").respond_with_handler(ehr.handler(unavailable))
    threaded_server.expect_request("/fhir/Patient/p1").respond_with_handler(ehr.handler(patient))
    base = threaded_server.url_for("/fhir")
    client = FhirClient(base, http, StaticTokens(), max_concurrency=4, retry=FAST, sleep=RecordingSleep())
    searches = [
        SearchSpec("Patient", {"_id": "p1"}, "patient"),
        SearchSpec("Condition", {"patient": "p1"}, "conditions"),
    ]
    result = await fetch_searches(
        client, searches, GrantedScopes.parse("patient/Patient.r patient/Condition.rs")
    )
    assert [r["id"] for r in result.resources] == ["p1"]
    assert [(g.resource_type, g.reason) for g in result.gaps] == [("Condition", "fetch_failed")]
    assert "503" in result.gaps[0].message
    assert client.limit.limit == 1  # every try was sent after the previous halving: 4 → 2 → 1


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_limit_halves_once_per_burst_and_recovers_gradually_after_the_cooldown() -> None:
    clock = Clock()
    limit = EhrLimit(8, cooldown=30.0, clock=clock)
    epochs = [await limit.acquire() for _ in range(8)]
    for epoch in epochs:  # the whole burst is refused: halved once
        limit.release(epoch, 429)
    assert limit.limit == 4
    limit.release(await limit.acquire(), 429)  # a request sent after the halving halves again
    assert limit.limit == 2
    for _ in range(10):  # successes during the cool-down do not raise it
        limit.release(await limit.acquire(), 200)
    assert limit.limit == 2
    clock.now += 31
    for _ in range(2):  # one step up per `limit` successes: about one per round trip
        limit.release(await limit.acquire(), 200)
    assert limit.limit == 3
    for _ in range(3 + 4 + 5 + 6 + 7 + 8):
        limit.release(await limit.acquire(), 200)
    assert limit.limit == 8  # back at the ceiling, never above
    limit.throttle_for(60)  # a long Retry-After keeps it down for longer than the cool-down
    limit.release(await limit.acquire(), 503)
    clock.now += 31
    for _ in range(10):
        limit.release(await limit.acquire(), 200)
    assert limit.limit == 4


async def test_a_cancelled_waiter_hands_its_slot_on() -> None:
    limit = EhrLimit(1)
    first = await limit.acquire()
    waiting = asyncio.ensure_future(limit.acquire())
    queued = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0)
    limit.release(first, 200)  # wakes `waiting` …
    waiting.cancel()  # … which is cancelled before it runs
    epoch = await asyncio.wait_for(queued, 1)
    limit.release(epoch, 200)
    assert limit.in_flight == 0


async def test_searches_go_before_attachment_downloads_that_wait() -> None:
    limit = EhrLimit(1)
    first = await limit.acquire()
    order: list[str] = []

    async def request(name: str, priority: int) -> None:
        epoch = await limit.acquire(priority)
        order.append(name)
        await asyncio.sleep(0)
        limit.release(epoch, 200)

    waiting = [
        asyncio.ensure_future(request("attachment 1", BULK)),
        asyncio.ensure_future(request("attachment 2", BULK)),
    ]
    await asyncio.sleep(0)
    waiting.append(asyncio.ensure_future(request("next page", URGENT)))
    await asyncio.sleep(0)
    limit.release(first, 200)
    await asyncio.gather(*waiting)
    assert order == ["next page", "attachment 1", "attachment 2"]


async def test_attachment_downloads_leave_a_quarter_of_the_slots_to_searches() -> None:
    limit = EhrLimit(8)
    downloads = [asyncio.ensure_future(limit.acquire(BULK)) for _ in range(10)]
    await asyncio.sleep(0)
    assert sum(d.done() for d in downloads) == 6  # 8 - 8 // 4: two slots stay free for searches
    searches = [asyncio.ensure_future(limit.acquire(URGENT)) for _ in range(3)]
    await asyncio.sleep(0)
    assert [s.done() for s in searches] == [True, True, False]  # searches take the free two at once
    limit.release(downloads[0].result(), 200)
    await asyncio.sleep(0)
    assert searches[2].done()  # the waiting search goes first, although downloads waited longer
    assert sum(d.done() for d in downloads) == 6
    for search in searches:
        limit.release(search.result(), 200)
    await asyncio.sleep(0)
    assert sum(d.done() for d in downloads) == 7  # the freed slots return to downloads, up to six
    assert limit.in_flight == 6


async def test_a_throttled_limit_of_one_still_serves_attachment_downloads() -> None:
    limit = EhrLimit(1)
    epoch = await asyncio.wait_for(limit.acquire(BULK), 1)
    limit.release(epoch, 200)
    assert limit.in_flight == 0
