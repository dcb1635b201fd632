"""The consent step of the demo EHR's authorization endpoint: the consent page for an authorization
request (launch context, or a patient to pick in a standalone launch), and the user's answer,
which Authlib turns into the redirect back to the app.

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
from starlette.responses import Response

from .records import LaunchContext, PendingConsent, new_id
from .runtime import DemoEhr, render, render_error
from .scopes import split_scope
from .starlette_adapter import ParsedRequest


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
