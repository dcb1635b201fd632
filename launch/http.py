"""The one factory for the HTTP client used for every EHR call (discovery, token, FHIR).

httpx2 is the client Authlib >= 1.8 is built on, so OAuth and FHIR traffic share one library and
one connection pool. Redirects are not followed: a redirect could carry our bearer token to
another host, so callers decide what to do with a 3xx.
"""

from __future__ import annotations

import httpx2

USER_AGENT = "SecondLook-launch/0.1"


def create_http_client(timeout: float = 20.0) -> httpx2.AsyncClient:
    """Return a new async client with a per-request timeout of `timeout` seconds."""
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(timeout),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )
