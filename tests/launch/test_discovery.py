from __future__ import annotations

import httpx2
import pytest
from pytest_httpserver import HTTPServer

from launch.discovery import Discovery
from launch.errors import LaunchError

from .conftest import FakeEhr


async def test_fetches_with_accept_json_and_keeps_fields(ehr: FakeEhr, discovery: Discovery) -> None:
    config = await discovery.get(ehr.base + "/")
    assert config.token_endpoint == ehr.token_url
    assert config.authorization_endpoint == ehr.server.url_for("/auth/authorize")
    assert config.has_capability("permission-v2")
    assert config.missing_fields == []
    request = ehr.server.log[0][0]
    assert request.path == "/fhir/.well-known/smart-configuration"
    assert request.headers["Accept"] == "application/json"


async def test_relative_endpoints_resolve_against_fhir_base(ehr: FakeEhr, discovery: Discovery) -> None:
    ehr.config_overrides = {"token_endpoint": "auth/token", "authorization_endpoint": "/oauth/authorize"}
    config = await discovery.get(ehr.base)
    assert config.token_endpoint == ehr.base + "/auth/token"
    assert config.authorization_endpoint == ehr.server.url_for("/oauth/authorize")


async def test_missing_token_endpoint_names_field_and_url(ehr: FakeEhr, discovery: Discovery) -> None:
    ehr.config_overrides = {"token_endpoint": None}
    with pytest.raises(LaunchError) as caught:
        await discovery.get(ehr.base)
    assert caught.value.error == "invalid_smart_configuration"
    assert "token_endpoint" in caught.value.description
    assert ehr.base + "/.well-known/smart-configuration" in caught.value.description


async def test_missing_authorize_endpoint_only_matters_for_user_launches(
    ehr: FakeEhr, discovery: Discovery
) -> None:
    ehr.config_overrides = {"authorization_endpoint": None, "capabilities": "not-a-list"}
    with pytest.raises(LaunchError) as caught:
        await discovery.get(ehr.base)
    assert "capabilities" in caught.value.description
    ehr.config_overrides = {"authorization_endpoint": None}
    config = await discovery.get(ehr.base, require_authorize=False)
    assert config.authorization_endpoint is None
    with pytest.raises(LaunchError, match="authorization_endpoint"):
        await discovery.get(ehr.base)


async def test_tolerated_missing_fields_are_recorded(ehr: FakeEhr, discovery: Discovery) -> None:
    ehr.config_overrides = {
        "capabilities": None,
        "grant_types_supported": None,
        "code_challenge_methods_supported": None,
    }
    config = await discovery.get(ehr.base)
    assert set(config.missing_fields) == {
        "capabilities",
        "grant_types_supported",
        "code_challenge_methods_supported",
    }
    assert config.code_challenge_methods_supported is None


async def test_list_without_s256_is_refused(ehr: FakeEhr, discovery: Discovery) -> None:
    ehr.config_overrides = {"code_challenge_methods_supported": ["plain"]}
    with pytest.raises(LaunchError) as caught:
        await discovery.get(ehr.base)
    assert caught.value.error == "invalid_smart_configuration"
    assert "S256" in caught.value.description


async def test_cache_ttl_with_injected_clock(ehr: FakeEhr, http: httpx2.AsyncClient) -> None:
    now = [1000.0]
    discovery = Discovery(http, ttl_seconds=300, clock=lambda: now[0])
    await discovery.get(ehr.base)
    now[0] += 299
    await discovery.get(ehr.base)
    assert len(ehr.server.log) == 1
    now[0] += 2
    await discovery.get(ehr.base)
    assert len(ehr.server.log) == 2


async def test_server_error_is_discovery_failed(httpserver: HTTPServer, discovery: Discovery) -> None:
    httpserver.expect_request("/fhir/.well-known/smart-configuration").respond_with_data("oops", status=500)
    with pytest.raises(LaunchError) as caught:
        await discovery.get(httpserver.url_for("/fhir"))
    assert caught.value.error == "discovery_failed"
    assert "500" in caught.value.description


async def test_non_json_is_discovery_failed(httpserver: HTTPServer, discovery: Discovery) -> None:
    httpserver.expect_request("/fhir/.well-known/smart-configuration").respond_with_data("<html>", status=200)
    with pytest.raises(LaunchError) as caught:
        await discovery.get(httpserver.url_for("/fhir"))
    assert caught.value.error == "discovery_failed"
    assert "JSON" in caught.value.description


async def test_unreachable_server_is_discovery_failed(discovery: Discovery) -> None:
    # Port 9 on loopback (discard) is closed on test machines: the connection is refused.
    with pytest.raises(LaunchError) as caught:
        await discovery.get("http://127.0.0.1:9/fhir")
    assert caught.value.error == "discovery_failed"
    assert "Could not reach" in caught.value.description
