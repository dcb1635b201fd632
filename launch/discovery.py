"""SMART discovery: `GET {iss}/.well-known/smart-configuration`, validated and cached per issuer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

import httpx2
from pydantic import BaseModel, Field

from launch.errors import LaunchError
from launch.registry import normalize_issuer

WELL_KNOWN = "/.well-known/smart-configuration"


class SmartConfiguration(BaseModel):
    """The parts of a smart-configuration document the client uses, endpoints made absolute."""

    fhir_base: str
    token_endpoint: str
    authorization_endpoint: str | None = None
    issuer: str | None = None
    jwks_uri: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    grant_types_supported: list[str] = Field(default_factory=list)
    code_challenge_methods_supported: list[str] | None = None
    token_endpoint_auth_methods_supported: list[str] | None = None
    scopes_supported: list[str] | None = None
    revocation_endpoint: str | None = None
    # Fields the spec requires that this server left out; tolerated, kept for diagnostics.
    missing_fields: list[str] = Field(default_factory=list)

    def has_capability(self, capability: str) -> bool:
        return capability in self.capabilities


class Discovery:
    """Fetches and caches smart-configuration documents; `clock` is injectable for tests."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        ttl_seconds: float = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, SmartConfiguration]] = {}

    async def get(self, iss: str, *, require_authorize: bool = True) -> SmartConfiguration:
        base = normalize_issuer(iss)
        cached = self._cache.get(base)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            config = cached[1]
        else:
            config = await self._fetch(base)
            self._cache[base] = (self._clock(), config)
        if require_authorize and not config.authorization_endpoint:
            raise _invalid(base + WELL_KNOWN, ["authorization_endpoint"])
        return config

    async def _fetch(self, base: str) -> SmartConfiguration:
        url = base + WELL_KNOWN
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx2.HTTPError as exc:
            raise LaunchError(
                "discovery_failed",
                f"Could not reach the EHR's SMART configuration at {url} ({type(exc).__name__}). "
                "The EHR may be down; try launching again in a few minutes.",
                502,
            ) from exc
        if response.status_code != 200:
            raise LaunchError(
                "discovery_failed",
                f"The EHR answered HTTP {response.status_code} for its SMART configuration at {url}. "
                "Try launching again later; if it persists, contact your EHR administrator.",
                502,
            )
        try:
            document = response.json()
        except ValueError as exc:
            raise LaunchError(
                "discovery_failed",
                f"The EHR's SMART configuration at {url} is not valid JSON.",
                502,
            ) from exc
        if not isinstance(document, dict):
            raise LaunchError(
                "discovery_failed", f"The SMART configuration at {url} is not a JSON object.", 502
            )
        return parse_configuration(document, base, url)


def parse_configuration(document: dict[str, Any], base: str, url: str) -> SmartConfiguration:
    """Validate a smart-configuration document and resolve relative endpoint URLs against `base`."""
    bad: list[str] = []
    resolved: dict[str, Any] = {"fhir_base": base}
    for field in ("token_endpoint", "authorization_endpoint", "jwks_uri", "revocation_endpoint", "issuer"):
        value = document.get(field)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            bad.append(field)
            continue
        # SAL 2.1 requires absolute URLs but asks clients to resolve relative ones against the FHIR base.
        resolved[field] = value if field == "issuer" else urljoin(base + "/", value)
    if "token_endpoint" not in resolved and "token_endpoint" not in bad:
        bad.append("token_endpoint")
    missing: list[str] = []
    for field in (
        "capabilities",
        "grant_types_supported",
        "code_challenge_methods_supported",
        "token_endpoint_auth_methods_supported",
        "scopes_supported",
    ):
        value = document.get(field)
        if value is None:
            if field in ("capabilities", "grant_types_supported", "code_challenge_methods_supported"):
                missing.append(field)
            continue
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            bad.append(field)
            continue
        resolved[field] = value
    if bad:
        raise _invalid(url, bad)
    methods = resolved.get("code_challenge_methods_supported")
    # Some servers (athenahealth, client-js#174) omit the list while supporting PKCE, so a missing
    # list still gets S256; a list that excludes S256 is a server we must not downgrade for.
    if methods is not None and "S256" not in methods:
        raise LaunchError(
            "invalid_smart_configuration",
            f"The EHR's SMART configuration at {url} does not support PKCE with S256 "
            f"(code_challenge_methods_supported = {methods}); SecondLook requires it. "
            "Contact your EHR administrator.",
            502,
        )
    resolved["missing_fields"] = missing
    return SmartConfiguration.model_validate(resolved)


def _invalid(url: str, fields: list[str]) -> LaunchError:
    return LaunchError(
        "invalid_smart_configuration",
        f"The EHR's SMART configuration at {url} is missing or has an invalid "
        f"{', '.join(fields)}. SecondLook cannot continue the launch; contact your EHR administrator.",
        502,
    )
