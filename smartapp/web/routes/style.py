"""SMART styling: the EHR's `smart_style_url` turned into CSS custom properties, so the app
takes the EHR's colours and fonts. Fetched only from the launch's own EHR origin."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx2
import structlog
from fastapi import APIRouter
from fastapi.responses import Response

from smartapp.web.deps import Services, SmartSession

router = APIRouter()
log = structlog.get_logger(__name__)

# SMART style keys → our CSS variables.
STYLE_VARIABLES = {
    "color_background": "--bg",
    "color_text": "--fg",
    "color_highlight": "--accent",
    "color_error": "--crit",
    "font_family_body": "--font-body",
    "font_family_heading": "--font-heading",
    "dim_border_radius": "--radius",
}
SAFE_VALUE = re.compile(r"^[#A-Za-z0-9 ,.'\"()%-]{1,120}$")
_cache: dict[str, str] = {}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def style_css(style: dict[str, object]) -> str:
    lines = []
    for key, variable in STYLE_VARIABLES.items():
        value = style.get(key)
        # Values go into a stylesheet: accept only plain colours, sizes and font names.
        if isinstance(value, str) and SAFE_VALUE.match(value) and ";" not in value and "}" not in value:
            lines.append(f"  {variable}: {value};")
    return ":root {\n" + "\n".join(lines) + "\n}\n" if lines else ""


@router.get("/s/{sid}/style.css", include_in_schema=False)
async def smart_style(services: Services, session: SmartSession) -> Response:
    url = session.smart_style_url
    css = ""
    if url and _origin(url) == _origin(session.iss):
        if url not in _cache:
            try:
                response = await services.http.get(url, headers={"Accept": "application/json"})
                response.raise_for_status()
                body = response.json()
                _cache[url] = style_css(body if isinstance(body, dict) else {})
            except (httpx2.HTTPError, ValueError):
                log.info("smart_style_unavailable")
                _cache[url] = ""
        css = _cache[url]
    return Response(css, media_type="text/css", headers={"Cache-Control": "private, max-age=300"})
