"""Authorization endpoints of the demo EHR: authorize (GET or POST), consent, token, keys.

Consent form (`POST /auth/consent`, `application/x-www-form-urlencoded`), which tests and
benchmarks drive with an HTTP client:
  consent_id  hidden per-request id from the consent page (`<input name="consent_id">`)
  scope       repeated; each scope the user leaves ticked (unticked scopes are not granted)
  patient     standalone launches only: the chosen Patient id
  decision    `allow` or `deny` (deny redirects with `error=access_denied` and the state)
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from fastapi import APIRouter, Request
from starlette.responses import Response

from .backend_auth import prefetch_jwks
from .deps import AuthServer, Config, Ehr
from .discovery import openid_configuration, smart_configuration
from .records import LaunchContext, PendingConsent, new_id
from .runtime import DemoEhr, render, render_error
from .scopes import split_scope
from .starlette_adapter import ParsedRequest, parse_request

router = APIRouter()


def _as_response(response: Any) -> Response:
    if not isinstance(response, Response):
        raise TypeError("the authorization server must answer with a Starlette Response")
    return response


def _redirectable(ehr: DemoEhr, parsed: ParsedRequest, error: OAuth2Error) -> Response:
    if error.redirect_uri:
        return _as_response(ehr.server.handle_error_response(ehr.server.create_oauth2_request(parsed), error))
    # Never redirect to a URI that was not validated against the client: show the error here.
    return render_error("Authorization request refused", f"{error.error}: {error.description}")


def _needs_patient_pick(scopes: list[str]) -> bool:
    return "launch/patient" in scopes or any(item.startswith("patient/") for item in scopes)


def begin_consent(ehr: DemoEhr, parsed: ParsedRequest) -> Response:
    try:
        grant = ehr.server.get_consent_grant(parsed, end_user=None)
    except OAuth2Error as error:
        return _redirectable(ehr, parsed, error)
    data = grant.request.payload.data
    scopes = split_scope(grant.request.scope)

    def fail(description: str) -> Response:
        error = InvalidRequestError(description, redirect_uri=grant.redirect_uri, state=data.get("state"))
        return _as_response(ehr.server.handle_error_response(grant.request, error))

    if str(data.get("aud", "")).rstrip("/") != ehr.config.fhir_base:
        return fail("'aud' must be the FHIR base URL of this server.")
    launch_id = data.get("launch")
    if launch_id:
        launch = ehr.memory.live_launch(launch_id)
        if launch is None:
            return fail("Unknown or expired 'launch'.")
        context, pick = replace(launch.context), False
    else:
        context, pick = LaunchContext(), _needs_patient_pick(scopes)
    consent_id = new_id(18)
    params = [(key, value) for key, value in [*parsed.query, *parsed.form] if key != "consent_id"]
    ehr.memory.consents[consent_id] = PendingConsent(params, launch_id, context, pick)
    listing = ehr.resources.listing(context.patient_id) if context.patient_id else None
    return render(
        "consent.html",
        client_id=grant.request.client.client_id,
        consent_id=consent_id,
        scopes=scopes,
        patient=listing,
        patients=ehr.resources.listings if pick else [],
    )


def finish_consent(ehr: DemoEhr, form: list[tuple[str, str]]) -> Response:
    fields: dict[str, str] = dict(form)
    pending = ehr.memory.consents.pop(fields.get("consent_id", ""), None)
    if pending is None or pending.expires_at < time.time():
        return render_error("Authorization expired", "Start the launch again from the EHR.")
    requested = split_scope(next((value for key, value in pending.params if key == "scope"), ""))
    ticked = {value for key, value in form if key == "scope"}
    granted = " ".join(item for item in requested if item in ticked)
    params = [(key, value) for key, value in pending.params if key != "scope"] + [("scope", granted)]
    parsed = ParsedRequest("GET", f"{ehr.config.origin}/auth/authorize", {}, params, [])
    allow = fields.get("decision") == "allow"
    context = pending.context
    if allow and pending.needs_patient_pick:
        chosen = fields.get("patient", "")
        if ehr.resources.get("Patient", chosen) is None:
            return render_error("Choose a patient", "A standalone launch needs a patient from the list.")
        context = replace(context, patient_id=chosen, encounter_id=None)
    try:
        grant = ehr.server.get_consent_grant(parsed, end_user=context)
    except OAuth2Error as error:
        return _redirectable(ehr, parsed, error)
    if pending.launch_id:
        launch = ehr.memory.live_launch(pending.launch_id)
        if launch is None:
            expired = InvalidRequestError(
                "Unknown or expired 'launch'.",
                redirect_uri=grant.redirect_uri,
                state=grant.request.payload.state,
            )
            return _as_response(ehr.server.handle_error_response(grant.request, expired))
        launch.used = True
    response: Response = ehr.server.create_authorization_response(
        parsed, grant_user=context if allow else None, grant=grant
    )
    return response


@router.get("/fhir/.well-known/smart-configuration")
async def smart_config(config: Config) -> dict[str, Any]:
    return smart_configuration(config)


@router.get("/fhir/.well-known/openid-configuration")
async def openid_config(config: Config) -> dict[str, Any]:
    return openid_configuration(config)


@router.get("/auth/jwks")
async def jwks(server: AuthServer) -> dict[str, Any]:
    return {"keys": [server.key.as_dict(private=False)]}


@router.api_route("/auth/authorize", methods=["GET", "POST"], include_in_schema=False)
async def authorize(request: Request, ehr: Ehr) -> Response:
    return begin_consent(ehr, await parse_request(request, ehr.config.origin))


@router.post("/auth/consent", include_in_schema=False)
async def consent(request: Request, ehr: Ehr) -> Response:
    form = await request.form()
    return finish_consent(ehr, [(k, v) for k, v in form.multi_items() if isinstance(v, str)])


@router.post("/auth/token")
async def token(request: Request, ehr: Ehr) -> Response:
    parsed = await parse_request(request, ehr.config.origin)
    await prefetch_jwks(ehr.memory, dict(parsed.form))
    response: Response = ehr.server.create_token_response(parsed)
    response.headers["Cache-Control"] = "no-store"
    return response
