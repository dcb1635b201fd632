"""A minimal SMART client for tests: drives the demo EHR's launch, consent and token steps
with plain HTTP, the way a browser plus an app backend would."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2

PUBLIC_CLIENT = "secondlook-demo"
CONFIDENTIAL_CLIENT = "secondlook-demo-confidential"
CONFIDENTIAL_SECRET = "demo-secret-not-for-production"
FULL_SCOPE = (
    "launch openid fhirUser online_access patient/Patient.rs patient/Observation.rs "
    "patient/DiagnosticReport.rs patient/Binary.r patient/Condition.rs patient/Encounter.rs "
    "patient/ServiceRequest.cruds patient/Practitioner.r"
)


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class AuthRequest:
    fhir_base: str
    redirect_uri: str
    scope: str = FULL_SCOPE
    client_id: str = PUBLIC_CLIENT
    launch: str | None = None
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    state: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    method: str = "S256"
    aud: str | None = None

    def params(self) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "aud": self.aud if self.aud is not None else self.fhir_base,
            "code_challenge": s256(self.verifier) if self.method == "S256" else self.verifier,
            "code_challenge_method": self.method,
        }
        if self.launch:
            params["launch"] = self.launch
        return params


def new_launch(client: httpx2.Client, base_url: str, patient: str, banner: bool = True) -> str:
    form = {"patient": patient, "need_patient_banner": "true" if banner else "false"}
    response = client.post(f"{base_url}/launch", data=form)
    assert response.status_code == 303, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return query["launch"][0]


def consent_form(html: str) -> tuple[str, list[str]]:
    consent_id = re.search(r'name="consent_id" value="([^"]+)"', html)
    assert consent_id, html
    scopes = re.findall(r'name="scope" value="([^"]+)"', html)
    return consent_id.group(1), scopes


def authorize(
    client: httpx2.Client,
    base_url: str,
    request: AuthRequest,
    *,
    untick: tuple[str, ...] = (),
    decision: str = "allow",
    patient: str | None = None,
) -> dict[str, list[str]]:
    """Runs authorize + consent; returns the query of the redirect back to the app."""
    page = client.get(f"{base_url}/auth/authorize", params=request.params())
    assert page.status_code == 200, page.text
    consent_id, scopes = consent_form(page.text)
    form: dict[str, Any] = {"consent_id": consent_id, "decision": decision}
    form["scope"] = [item for item in scopes if item not in untick]
    if patient:
        form["patient"] = patient
    answer = client.post(f"{base_url}/auth/consent", data=form)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(request.redirect_uri)
    return parse_qs(urlsplit(location).query)


def exchange(client: httpx2.Client, base_url: str, request: AuthRequest, code: str) -> httpx2.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "code_verifier": request.verifier,
    }
    auth: Any = None
    if request.client_id == CONFIDENTIAL_CLIENT:
        auth = (CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET)
    else:
        form["client_id"] = request.client_id
    return client.post(f"{base_url}/auth/token", data=form, auth=auth)


def ehr_launch_token(
    client: httpx2.Client, base_url: str, fhir_base: str, redirect_uri: str, patient: str, **kwargs: Any
) -> dict[str, Any]:
    """The whole EHR launch for one patient; returns the token response JSON."""
    scope = kwargs.pop("scope", FULL_SCOPE)
    request = AuthRequest(fhir_base, redirect_uri, scope=scope, launch=new_launch(client, base_url, patient))
    query = authorize(client, base_url, request, **kwargs)
    response = exchange(client, base_url, request, query["code"][0])
    assert response.status_code == 200, response.text
    token: dict[str, Any] = response.json()
    return token
