"""SMART styling: the EHR's `smart_style_url` turned into CSS custom properties, so the app
takes the EHR's colours and fonts. Fetched only from the launch's own EHR origin.

The fetch starts at the OAuth callback (`prefetch_style`), alongside the record read: the page's
stylesheet blocks its script, so a style fetched only when the browser asks for it delayed the
findings of every first launch after start-up by an EHR round trip. A style is kept for
STYLE_TTL_SECONDS, a failed fetch for a minute."""

from __future__ import annotations

import asyncio
import re
import time
from urllib.parse import urlsplit

import httpx2
import structlog

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
STYLE_TTL_SECONDS = 3600.0
FAILED_STYLE_TTL_SECONDS = 60.0
# smart_style_url -> (when fetched, the fetch: CSS, "" when unavailable)
_cache: dict[str, tuple[float, asyncio.Task[str]]] = {}


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


def prefetch_style(http: httpx2.AsyncClient, url: str | None, iss: str) -> asyncio.Task[str] | None:
    """Start (or reuse) the fetch of a launch's style; None when it is not the EHR's own."""
    if not url or _origin(url) != _origin(iss):
        return None
    now = time.monotonic()
    loop = asyncio.get_running_loop()
    entry = _cache.get(url)
    if entry is not None and entry[1].get_loop() is loop and now - entry[0] < _kept_for(entry[1]):
        return entry[1]
    task = loop.create_task(_fetch_style(http, url))
    _cache[url] = (now, task)
    return task


def _kept_for(task: asyncio.Task[str]) -> float:
    """A fetch under way or a style: an hour; no style (unavailable, or nothing we use): a minute;
    a fetch that broke (cancelled at shutdown, an unexpected error): fetched again now."""
    if not task.done():
        return STYLE_TTL_SECONDS
    if task.cancelled() or task.exception() is not None:
        return 0.0
    return STYLE_TTL_SECONDS if task.result() else FAILED_STYLE_TTL_SECONDS


async def _fetch_style(http: httpx2.AsyncClient, url: str) -> str:
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        body = response.json()
    except (httpx2.HTTPError, ValueError):
        log.info("smart_style_unavailable")
        return ""
    return style_css(body if isinstance(body, dict) else {})
