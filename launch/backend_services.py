"""SMART Backend Services: a system-level access token by client credentials and a signed assertion.

There is no refresh token (the spec says servers SHOULD NOT issue one), so a new token is asked for
shortly before the current one expires, and once more when the EHR answers 401 to a token we still
thought valid. Every request carries a freshly signed assertion (new `jti`, `exp` ≤ 5 minutes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx2
from authlib.oauth2.rfc6749.parameters import prepare_token_request as prepare_token_body

from launch.backend_keys import BackendServices
from launch.client_auth import prepare_private_key_jwt
from launch.discovery import Discovery
from launch.errors import LaunchError
from launch.registry import Registration
from launch.scopes import uses_v1
from launch.token_endpoint import send_token_request

# Used when the token response has no expires_in: the longest lifetime the spec recommends.
DEFAULT_LIFETIME = 300.0
REFRESH_MARGIN = 60.0
ADVICE = (
    "Check this EHR's backend_services registration (client id, key id, scopes) and that the EHR "
    "trusts the keys SecondLook publishes at /.well-known/jwks.json."
)


@dataclass(frozen=True)
class BackendToken:
    access_token: str
    expires_at: float  # on the client's clock
    lifetime: float
    scope: str | None  # what was granted; may differ from what was asked for


class BackendServicesClient:
    """A TokenSource for one EHR's backend registration; share one instance between tasks."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        registration: Registration,
        discovery: Discovery,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if registration.backend_services is None:
            raise LaunchError(
                "backend_services_not_configured",
                f"The EHR {registration.iss} has no backend_services block in the registry, so "
                "SecondLook cannot use system-level access (Bulk Data) with it.",
                500,
            )
        self.registration = registration
        self.backend: BackendServices = registration.backend_services
        self._http = http
        self._discovery = discovery
        self._clock = clock
        self._current: BackendToken | None = None
        self._lock = asyncio.Lock()

    @property
    def granted_scope(self) -> str | None:
        return self._current.scope if self._current else None

    async def token(self) -> str:
        """A valid access token: the cached one, or a new one when it is about to expire."""
        current = self._current
        if current is not None and self._fresh(current):
            return current.access_token
        async with self._lock:
            current = self._current  # another task may have fetched one while we waited
            if current is None or not self._fresh(current):
                current = await self._obtain()
            return current.access_token

    async def reauthenticate(self, stale: str | None = None) -> str:
        """A new token after the EHR refused `stale` (or the current one); parallel callers that
        saw the same refusal share one new token."""
        stale = stale if stale is not None else (self._current.access_token if self._current else None)
        async with self._lock:
            current = self._current
            if current is not None and current.access_token != stale and self._fresh(current):
                return current.access_token
            return (await self._obtain()).access_token

    async def fetch_access_token(self) -> BackendToken:
        """Ask the token endpoint for a new token now (cached for later `token()` calls)."""
        async with self._lock:
            return await self._obtain()

    async def scope_to_request(self) -> str:
        if self.backend.scopes:
            return self.backend.scopes
        config = await self._discovery.get(self.registration.iss, require_authorize=False)
        return "system/*.read" if uses_v1(self.registration, config) else "system/*.rs"

    def _fresh(self, token: BackendToken) -> bool:
        margin = min(REFRESH_MARGIN, token.lifetime / 2)
        return token.expires_at - self._clock() > margin

    async def _obtain(self) -> BackendToken:
        config = await self._discovery.get(self.registration.iss, require_authorize=False)
        scope = await self.scope_to_request()
        key = self.backend.signing_key
        body = prepare_token_body("client_credentials", scope=scope)
        headers, body = prepare_private_key_jwt(
            self.backend.client_id,
            key.key,
            alg=key.signing_alg,
            kid=key.key_id,
            token_endpoint=config.token_endpoint,
            body=body,
        )
        issued = self._clock()
        document = await send_token_request(
            http=self._http, token_endpoint=config.token_endpoint, headers=headers, body=body, advice=ADVICE
        )
        lifetime = _lifetime(document.get("expires_in"))
        granted = document.get("scope")
        self._current = BackendToken(
            access_token=str(document["access_token"]),
            expires_at=issued + lifetime,
            lifetime=lifetime,
            scope=granted if isinstance(granted, str) else None,
        )
        return self._current


def _lifetime(expires_in: object) -> float:
    if isinstance(expires_in, bool):
        return DEFAULT_LIFETIME
    if isinstance(expires_in, int | float) and expires_in > 0:
        return float(expires_in)
    if isinstance(expires_in, str) and expires_in.strip().isdigit() and int(expires_in) > 0:
        return float(expires_in)
    return DEFAULT_LIFETIME
