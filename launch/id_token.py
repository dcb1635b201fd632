"""OpenID Connect id_token validation against the EHR's JWKS (OIDC Core §3.1.3.7, via joserfc)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx2
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from launch.discovery import SmartConfiguration
from launch.errors import LaunchError

ID_TOKEN_ALGS = ["RS256", "RS384", "ES384"]
LEEWAY_SECONDS = 60
JWKS_TTL_SECONDS = 300.0

# Key sets by URL: fetching them on every launch costs a round trip to the EHR on the path from
# the callback to the clinician's screen. A token signed with a key we have not seen (rotation)
# triggers one fresh fetch.
_JWKS_CACHE: dict[str, tuple[float, dict[str, Any]]] = {}


# Background key-set fetches started by `warm_jwks` (held so they are not garbage-collected).
_WARMING: set[asyncio.Task[None]] = set()


def warm_jwks(http: httpx2.AsyncClient, config: SmartConfiguration) -> None:
    """Fetch the EHR's key set in the background when a launch begins, unless a recent one is
    held: the authorize step (the EHR's own pages) takes far longer than the fetch, and the
    callback, which is on the path to the clinician's screen, then finds the keys."""
    task = asyncio.get_running_loop().create_task(_warm(http, config))
    _WARMING.add(task)
    task.add_done_callback(_WARMING.discard)


async def _warm(http: httpx2.AsyncClient, config: SmartConfiguration) -> None:
    try:
        jwks_uri = await find_jwks_uri(http, config)
        cached = _JWKS_CACHE.get(jwks_uri)
        if cached is not None and time.monotonic() - cached[0] < JWKS_TTL_SECONDS / 2:
            return
        _JWKS_CACHE[jwks_uri] = (time.monotonic(), await _get_json(http, jwks_uri))
    except LaunchError:
        return  # the callback fetches the keys itself and reports a failure in words


async def find_jwks_uri(http: httpx2.AsyncClient, config: SmartConfiguration) -> str:
    if config.jwks_uri:
        return config.jwks_uri
    issuer = (config.issuer or config.fhir_base).rstrip("/")
    document = await _get_json(http, issuer + "/.well-known/openid-configuration")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri:
        raise _invalid("the EHR publishes no key set (jwks_uri) to check it with")
    return jwks_uri


async def validate_id_token(
    http: httpx2.AsyncClient,
    config: SmartConfiguration,
    id_token: str,
    *,
    client_id: str,
    now: int | None = None,
) -> dict[str, Any]:
    """Check signature, `iss`, `aud`, `exp`, `iat`; returns the claims."""
    jwks_uri = await find_jwks_uri(http, config)
    cached = _JWKS_CACHE.get(jwks_uri)
    fresh = cached is None or time.monotonic() - cached[0] > JWKS_TTL_SECONDS
    document = await _get_json(http, jwks_uri) if fresh or cached is None else cached[1]
    try:
        token = _decode(id_token, document)
    except (JoseError, ValueError) as exc:
        if fresh:
            raise _invalid(f"its signature could not be verified ({type(exc).__name__})") from exc
        document = await _get_json(http, jwks_uri)  # the EHR may have rotated its keys
        try:
            token = _decode(id_token, document)
        except (JoseError, ValueError) as again:
            raise _invalid(f"its signature could not be verified ({type(again).__name__})") from again
    _JWKS_CACHE[jwks_uri] = (time.monotonic(), document)
    claims = dict(token.claims)
    expected_iss = (config.issuer or config.fhir_base).rstrip("/")
    registry = jwt.JWTClaimsRegistry(
        now=now if now is not None else int(time.time()),
        leeway=LEEWAY_SECONDS,
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise _invalid(f"it is expired or not yet valid ({exc.error})") from exc
    if not isinstance(claims.get("iss"), str) or claims["iss"].rstrip("/") != expected_iss:
        raise _invalid("it was issued by a different server than the one you launched from")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        raise _invalid("it was issued for a different application")
    return claims


def _decode(id_token: str, document: dict[str, Any]) -> jwt.Token:
    keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
    return jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGS)


async def _get_json(http: httpx2.AsyncClient, url: str) -> dict[str, Any]:
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
        document = response.json() if response.status_code == 200 else None
    except (httpx2.HTTPError, ValueError) as exc:
        raise _invalid(f"its key set could not be fetched ({type(exc).__name__})") from exc
    if not isinstance(document, dict):
        raise _invalid("its key set could not be fetched")
    return document


def _invalid(why: str) -> LaunchError:
    return LaunchError(
        "invalid_id_token",
        f"The EHR's identity token could not be trusted: {why}. Please relaunch SecondLook from the EHR.",
        400,
    )
