"""JWKS cache: keys are fetched once per TTL, an unknown kid refetches (rotation), and a client's
JWKS outage does not drop keys that were already trusted."""

from __future__ import annotations

import httpx2
import pytest
from joserfc.jwk import ECKey, KeySet
from pytest_httpserver import HTTPServer

from smartapp.cds import jwt_auth
from smartapp.cds.jwt_auth import CdsAuthError, KeySetCache


def kids(keys: KeySet) -> set[str]:
    return {str(k.kid) for k in keys.keys}


async def test_rotation_outage_and_ttl(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jwt_auth, "JWKS_MIN_REFRESH_SECONDS", 0.0)
    old = ECKey.generate_key("P-384", parameters={"kid": "old"})
    new = ECKey.generate_key("P-384", parameters={"kid": "new"})
    url = httpserver.url_for("/jwks.json")
    httpserver.expect_oneshot_request("/jwks.json").respond_with_json(KeySet([old]).as_dict(private=False))
    httpserver.expect_oneshot_request("/jwks.json").respond_with_json(
        KeySet([old, new]).as_dict(private=False)
    )
    async with httpx2.AsyncClient() as http:
        cache = KeySetCache(http)
        assert kids(await cache.key_set(url)) == {"old"}
        assert kids(await cache.key_set(url)) == {"old"}  # cached: no second request
        assert len(httpserver.log) == 1
        assert kids(await cache.key_set(url, refresh=True)) == {"old", "new"}
        # The server is gone now (no handler left): the last good set is kept.
        assert kids(await cache.key_set(url, refresh=True)) == {"old", "new"}


async def test_unreachable_jwks_without_a_cached_set_is_an_auth_failure(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/jwks.json").respond_with_data("nope", status=500)
    async with httpx2.AsyncClient() as http:
        with pytest.raises(CdsAuthError) as failure:
            await KeySetCache(http).key_set(httpserver.url_for("/jwks.json"))
    assert failure.value.reason == "jwks_unavailable"
