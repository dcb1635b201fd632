"""Authorization endpoints of the demo EHR: authorize (GET or POST), consent, token, keys, and the
SMART and OpenID discovery documents. The consent step itself, and its form, is in `consent.py`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from .backend_auth import prefetch_jwks
from .consent import begin_consent, finish_consent
from .deps import AuthServer, Config, Ehr
from .discovery import openid_configuration, smart_configuration
from .starlette_adapter import parse_request

router = APIRouter()


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
async def give_consent(request: Request, ehr: Ehr) -> Response:
    form = await request.form()
    return finish_consent(ehr, [(k, v) for k, v in form.multi_items() if isinstance(v, str)])


@router.post("/auth/token")
async def token(request: Request, ehr: Ehr) -> Response:
    parsed = await parse_request(request, ehr.config.origin)
    await prefetch_jwks(ehr.memory, dict(parsed.form))
    response: Response = ehr.server.create_token_response(parsed)
    response.headers["Cache-Control"] = "no-store"
    return response
