"""The app's public key set at /.well-known/jwks.json: the current and next public key of every
private_key_jwt launch registration and every Backend Services registration. EHRs fetch it to
verify the app's client assertions (SMART Backend Services; Epic requires a JWKS URL)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from launch.jwks import JWKS_CACHE_CONTROL, build_jwks
from smartapp.web.deps import Services

router = APIRouter()


@router.get("/.well-known/jwks.json", tags=["keys"])
async def jwks(services: Services) -> JSONResponse:
    return JSONResponse(
        build_jwks(services.registry),
        headers={"Cache-Control": JWKS_CACHE_CONTROL},
        media_type="application/json",
    )
