"""The one factory for the HTTP client used for every EHR call (discovery, token, FHIR).

httpx2 is the client Authlib >= 1.8 is built on, so OAuth and FHIR traffic share one library and
one connection pool. Redirects are not followed: a redirect could carry our bearer token to
another host, so callers decide what to do with a 3xx.

Connections are shared: an EHR that offers HTTP/2 (negotiated by ALPN during the TLS handshake)
gets every request of every launch as a stream on one connection per origin; one that does not,
and any plain-HTTP server (the demo EHR, tests), gets HTTP/1.1 with keep-alive connections reused
across requests. The per-EHR request limit (`launch.fhir_client.EhrLimit`) applies either way.
"""

from __future__ import annotations

import ssl

import httpx2

USER_AGENT = "SecondLook-launch/0.1"


def create_http_client(timeout: float = 20.0, *, verify: ssl.SSLContext | bool = True) -> httpx2.AsyncClient:
    """Return a new async client with a per-request timeout of `timeout` seconds. `verify` is for
    tests that serve TLS with their own certificate authority; the app always verifies."""
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(timeout),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        http2=True,
        verify=verify,
        # Keep more idle connections than requests may be in flight to one EHR by default
        # (`fhir_client.DEFAULT_MAX_CONCURRENCY`), so a launch's bursts reuse them, not reconnect.
        limits=httpx2.Limits(max_connections=128, max_keepalive_connections=64),
    )
