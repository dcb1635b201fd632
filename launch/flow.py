"""The SMART launch sequence: authorize redirect (EHR or standalone launch) and the callback."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence

import httpx2
import structlog
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from launch.discovery import Discovery
from launch.errors import LaunchError
from launch.id_token import validate_id_token, warm_jwks
from launch.registry import Registry
from launch.scopes import GrantedScopes, ResourceRead, requested_scopes
from launch.sessions import PENDING_TTL, LaunchSession, PendingLaunch, SessionStore, utc_now
from launch.token_endpoint import exchange_code, token_set_from

log = structlog.get_logger(__name__)
_ERROR_CODE = re.compile(r"[a-z_]{1,64}")
_RELAUNCH = " Please relaunch SecondLook from the EHR."
# A fixed sentence per RFC 6749 §4.1.2.1 error code. `error_description` is never shown: the
# callback's query can be crafted by anyone, and its text would appear on the app's own origin.
_OAUTH_ERRORS = {
    "access_denied": "Access to the patient record was declined at the EHR's consent screen, so "
    "SecondLook cannot open. Relaunch and approve access, or ask the EHR administrator.",
    "invalid_request": "The EHR found the sign-in request malformed." + _RELAUNCH,
    "unauthorized_client": "The EHR does not allow SecondLook to sign in this way; an administrator "
    "must check SecondLook's registration at the EHR.",
    "unsupported_response_type": "The EHR does not support SecondLook's sign-in method; an administrator "
    "must check SecondLook's registration at the EHR.",
    "invalid_scope": "The EHR refused the access SecondLook asked for; an administrator must check "
    "which scopes SecondLook may request.",
    "server_error": "The EHR's sign-in service had an internal error." + _RELAUNCH,
    "temporarily_unavailable": "The EHR's sign-in service is temporarily unavailable. Wait a minute, then "
    "relaunch SecondLook from the EHR.",
}


# `iss` and `launch` are stored with the pending launch before the user signs in: bound them.
MAX_PARAMETER_CHARS = 2048


async def begin_launch(
    *,
    registry: Registry,
    discovery: Discovery,
    store: SessionStore,
    iss: str,
    launch: str | None,
    redirect_uri: str,
    browser_nonce: str,
    reads: Sequence[ResourceRead],
    user_level: bool = False,
    http: httpx2.AsyncClient | None = None,
) -> str:
    """Record a pending launch and return the EHR authorize URL to redirect the browser to.

    `reads` are the resource types the app reads and their permissions (the app's read plan).
    `launch=None` is a standalone launch; with `user_level` it asks for no patient at all, only the
    user's identity and `user/` read scopes (see `launch.scopes.requested_scopes`). The issuer is
    checked against the registry before any network call: an unknown `iss` could be an attacker's
    server collecting our credentials.
    """
    if len(iss) > MAX_PARAMETER_CHARS or (launch is not None and len(launch) > MAX_PARAMETER_CHARS):
        raise LaunchError(
            "invalid_request",
            f"The launch parameters are longer than {MAX_PARAMETER_CHARS:,} characters, which no EHR sends; "
            "the launch was refused and nothing was stored. Launch again from the EHR.",
        )
    registration = registry.require(iss)
    config = await discovery.get(registration.iss)
    standalone = launch is None
    scope = requested_scopes(
        registration, config, standalone, reads=reads, user_level=user_level and standalone
    )
    if http is not None and "openid" in scope.split():
        warm_jwks(http, config)  # the callback will check an id_token against these keys
    state = secrets.token_urlsafe(32)  # 256 bits
    verifier = secrets.token_urlsafe(64)  # 86 characters: inside RFC 7636's 43..128
    now = utc_now()
    await store.add_pending(
        PendingLaunch(
            state=state,
            iss=registration.iss,
            launch=launch,
            redirect_uri=redirect_uri,
            code_verifier=verifier,
            requested_scope=scope,
            token_endpoint=config.token_endpoint,
            created_at=now,
            expires_at=now + PENDING_TTL,
        ),
        browser_nonce,
    )
    extra: dict[str, str] = {
        "aud": registration.iss,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    if launch is not None:
        extra["launch"] = launch
    assert config.authorization_endpoint is not None  # noqa: S101 - Discovery.get checked it
    url: str = prepare_grant_uri(
        config.authorization_endpoint,
        client_id=registration.client_id,
        response_type="code",
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        **extra,
    )
    return url


async def complete_launch(
    *,
    registry: Registry,
    discovery: Discovery,
    store: SessionStore,
    http: httpx2.AsyncClient,
    params: Mapping[str, str],
    browser_nonce: str,
    redirect_uri: str,
) -> tuple[LaunchSession, str]:
    """Handle the authorize redirect: check state, exchange the code, validate the id_token.

    Returns the new launch session and the secret for the web layer's HttpOnly cookie.
    """
    state = params.get("state")
    if "error" in params:
        if state:
            # Spend the pending record so the state cannot be replayed; its own errors don't matter here.
            try:
                await store.take_pending(state, browser_nonce)
            except LaunchError:
                pass
        # The redirect's query is attacker-reachable: keep only a well-formed OAuth error code.
        error = params["error"] if _ERROR_CODE.fullmatch(params["error"]) else "authorization_failed"
        text = _OAUTH_ERRORS.get(error, "The EHR did not authorize SecondLook." + _RELAUNCH)
        # Only the code is logged: the description is free text that may carry PHI or tokens.
        log.info("authorization_refused", error=error, known=error in _OAUTH_ERRORS)
        raise LaunchError(error, text, 403 if error == "access_denied" else 400)
    if not state:
        raise LaunchError(
            "invalid_state", "The EHR's answer carried no state. Please open SecondLook again from the EHR."
        )
    pending = await store.take_pending(state, browser_nonce)
    if pending.redirect_uri != redirect_uri:
        raise LaunchError(
            "invalid_state", "The sign-in returned to an unexpected address. Please relaunch from the EHR."
        )
    code = params.get("code")
    if not code:
        raise LaunchError(
            "invalid_request", "The EHR's answer carried no authorization code. Please relaunch from the EHR."
        )
    registration = registry.require(pending.iss)
    config = await discovery.get(pending.iss, require_authorize=False)
    returned_iss = params.get("iss")
    # RFC 9207: when the server names itself, it must be the one we sent the browser to.
    if returned_iss and config.issuer and returned_iss.rstrip("/") != config.issuer.rstrip("/"):
        raise LaunchError(
            "invalid_state", "The sign-in answer came from a different server. Please relaunch from the EHR."
        )
    document = await exchange_code(
        http,
        registration,
        pending.token_endpoint,
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=pending.code_verifier,
    )
    tokens = token_set_from(document, utc_now())
    if tokens.scope is None:
        # SMART requires `scope` in the response; without it assume what was requested was granted.
        tokens = token_set_from({**document, "scope": pending.requested_scope}, utc_now())
    context = dict(document)
    id_token = document.get("id_token")
    if GrantedScopes.parse(tokens.scope).has("openid") and isinstance(id_token, str):
        claims = await validate_id_token(http, config, id_token, client_id=registration.client_id)
        fhir_user = claims.get("fhirUser") or claims.get("profile")
        context["fhirUser"] = fhir_user if isinstance(fhir_user, str) else None
    else:
        context["fhirUser"] = None
    return await store.create_session(
        iss=registration.iss,
        client_id=registration.client_id,
        token_endpoint=pending.token_endpoint,
        tokens=tokens,
        context=context,
    )
