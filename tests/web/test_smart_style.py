"""The EHR's SMART style: fetched once per URL from the launch's own EHR, a failure retried later."""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from pytest_httpserver import HTTPServer

from smartapp.web import smart_style
from smartapp.web.smart_style import prefetch_style


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    smart_style._cache.clear()


async def test_one_fetch_serves_every_launch_of_the_ehr(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/smart-style.json").respond_with_json({"color_highlight": "#005a9e"})
    iss, url = httpserver.url_for("/fhir"), httpserver.url_for("/smart-style.json")
    async with httpx2.AsyncClient() as http:
        tasks = [prefetch_style(http, url, iss) for _ in range(3)]
        assert all(task is tasks[0] for task in tasks)
        assert tasks[0] is not None and "--accent: #005a9e;" in await tasks[0]
    assert len(httpserver.log) == 1


async def test_a_style_elsewhere_than_the_ehr_is_not_fetched(httpserver: HTTPServer) -> None:
    async with httpx2.AsyncClient() as http:
        assert (
            prefetch_style(http, "https://elsewhere.example/style.json", httpserver.url_for("/fhir")) is None
        )
        assert prefetch_style(http, None, httpserver.url_for("/fhir")) is None
    assert httpserver.log == []


async def test_a_failed_style_is_empty_and_asked_again_later(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request("/smart-style.json").respond_with_data("down", status=503)
    iss, url = httpserver.url_for("/fhir"), httpserver.url_for("/smart-style.json")
    async with httpx2.AsyncClient() as http:
        first = prefetch_style(http, url, iss)
        assert first is not None and await first == ""
        assert prefetch_style(http, url, iss) is first  # within the minute: not asked again
        monkeypatch.setattr(smart_style, "FAILED_STYLE_TTL_SECONDS", 0.0)
        second = prefetch_style(http, url, iss)
        assert second is not None and second is not first
        await asyncio.wait_for(second, 5)
    assert len(httpserver.log) == 2
