"""Requests to the token endpoint (code exchange and refresh) and their error handling."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx2
from authlib.oauth2.rfc6749.parameters import prepare_token_request as prepare_token_body

from launch.client_auth import prepare_token_request
from launch.errors import LaunchError
from launch.registry import Registration
from launch.sessions import TokenSet

RELAUNCH = "Please relaunch SecondLook from the EHR."


async def exchange_code(
    http: httpx2.AsyncClient,
    registration: Registration,
    token_endpoint: str,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> dict[str, Any]:
    body = prepare_token_body(
        "authorization_code", code=code, redirect_uri=redirect_uri, code_verifier=code_verifier
    )
    return await post_token_request(http, registration, token_endpoint, body)


async def refresh_tokens(
    http: httpx2.AsyncClient, registration: Registration, token_endpoint: str, refresh_token: str
) -> dict[str, Any]:
    body = prepare_token_body("refresh_token", refresh_token=refresh_token)
    return await post_token_request(http, registration, token_endpoint, body)


async def post_token_request(
    http: httpx2.AsyncClient, registration: Registration, token_endpoint: str, body: str
) -> dict[str, Any]:
    """POST a token request; returns the JSON response or raises LaunchError without token material."""
    headers, body = prepare_token_request(registration, token_endpoint, body)
    return await send_token_request(http, token_endpoint, headers, body)


async def send_token_request(
    http: httpx2.AsyncClient,
    token_endpoint: str,
    headers: dict[str, str],
    body: str,
    *,
    advice: str = RELAUNCH,
) -> dict[str, Any]:
    """POST an already authenticated token request. `advice` ends every error description."""
    try:
        response = await http.post(token_endpoint, content=body, headers=headers)
    except httpx2.TimeoutException as exc:
        raise _failed(
            "The EHR's sign-in service did not answer in time. Try again in a moment.", advice
        ) from exc
    except httpx2.HTTPError as exc:
        raise _failed(f"Could not reach the EHR's sign-in service ({type(exc).__name__}).", advice) from exc
    try:
        document = response.json()
    except ValueError:
        document = None
    if response.status_code >= 400 or not isinstance(document, dict) or "access_token" not in document:
        error = document.get("error") if isinstance(document, dict) else None
        if isinstance(error, str) and 400 <= response.status_code < 500:
            detail = document.get("error_description") if isinstance(document, dict) else None
            raise LaunchError(
                error,
                f"The EHR refused to issue an access token ({error}"
                + (f": {detail}" if isinstance(detail, str) and detail else "")
                + f"). {advice}",
                400,
            )
        if response.status_code >= 400:
            raise _failed(f"The EHR's sign-in service answered HTTP {response.status_code}.", advice)
        raise _failed("The EHR's sign-in service returned an unreadable answer (no access token).", advice)
    if str(document.get("token_type", "bearer")).lower() != "bearer":
        raise _failed(f"The EHR issued an unsupported token type {document.get('token_type')!r}.", advice)
    return document


def token_set_from(document: dict[str, Any], now: datetime, previous: TokenSet | None = None) -> TokenSet:
    """Token material from a token response. A refresh without a new refresh_token keeps the old one
    (Oracle Health never rotates it: fhir.cerner.com authorization.md, "Utilizing Refresh Tokens")."""
    expires_in = document.get("expires_in")
    expires_at = None
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        expires_at = now + timedelta(seconds=float(expires_in))
    elif isinstance(expires_in, str) and expires_in.isdigit():
        expires_at = now + timedelta(seconds=int(expires_in))
    refresh = document.get("refresh_token")
    scope = document.get("scope")
    return TokenSet(
        access_token=str(document["access_token"]),
        refresh_token=refresh
        if isinstance(refresh, str) and refresh
        else (previous.refresh_token if previous else None),
        expires_at=expires_at,
        scope=scope if isinstance(scope, str) else (previous.scope if previous else None),
    )


def _failed(what: str, advice: str) -> LaunchError:
    return LaunchError("token_request_failed", f"{what} {advice}", 502)
