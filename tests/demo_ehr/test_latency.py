"""Every response, auth endpoints included, is delayed by the configured latency."""

from __future__ import annotations

import time

import httpx2

from .conftest import run_demo_ehr


def test_latency_applies_to_fhir_and_auth_endpoints() -> None:
    with run_demo_ehr(latency_ms=200) as ehr, httpx2.Client() as client:
        client.get(f"{ehr.base_url}/smart-style.json")  # warm the connection
        for url in (f"{ehr.fhir_base}/.well-known/smart-configuration", f"{ehr.fhir_base}/metadata"):
            started = time.monotonic()
            assert client.get(url).status_code == 200
            assert time.monotonic() - started >= 0.19
        started = time.monotonic()
        assert client.post(f"{ehr.base_url}/auth/token", data={"grant_type": "password"}).status_code == 400
        assert time.monotonic() - started >= 0.19


def test_no_latency_by_default() -> None:
    with run_demo_ehr() as ehr, httpx2.Client() as client:
        client.get(f"{ehr.base_url}/smart-style.json")
        started = time.monotonic()
        client.get(f"{ehr.fhir_base}/metadata")
        assert time.monotonic() - started < 0.19
