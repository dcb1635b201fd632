"""The launch's stylesheet: the EHR's SMART style as CSS custom properties (smartapp.web.smart_style)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response

from smartapp.web.deps import Services, SmartSession
from smartapp.web.smart_style import prefetch_style

router = APIRouter()


@router.get("/s/{sid}/style.css", include_in_schema=False)
async def smart_style(services: Services, session: SmartSession) -> Response:
    task = prefetch_style(services.http, session.smart_style_url, session.iss)
    css = await asyncio.shield(task) if task is not None else ""
    return Response(css, media_type="text/css", headers={"Cache-Control": "private, max-age=300"})
