"""Response headers and cookies that keep the app safe inside an EHR iframe."""

from __future__ import annotations

import re
from collections.abc import Iterable

from fastapi import Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request

from launch.registry import Registry
from smartapp.config import Settings

SESSION_COOKIE_PREFIX = "sl_s_"
BROWSER_COOKIE = "sl_browser"
_COOKIE_SAFE = re.compile(r"[A-Za-z0-9_-]{1,256}")


def frame_ancestors_header(origins: Iterable[str]) -> str:
    sources = " ".join(["'self'", *sorted(set(origins))])
    return (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"object-src 'none'; base-uri 'none'; frame-ancestors {sources}"
    )


def launch_frame_csp(registry: Registry, settings: Settings, iss: str) -> str:
    """CSP for a page of one launch: framed only by that launch's EHR (plus the site's extras)."""
    registration = registry.get(iss)
    return frame_ancestors_header(
        [*(registration.frame_ancestors if registration else []), *settings.frame_ancestors]
    )


def set_iframe_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    """HttpOnly, Secure, SameSite=None and Partitioned (CHIPS): the only combination that keeps a
    cookie inside a cross-site EHR iframe once third-party cookies are blocked. Written by hand:
    the standard library learns `Partitioned` only in Python 3.14."""
    if not _COOKIE_SAFE.fullmatch(name) or not _COOKIE_SAFE.fullmatch(value):
        raise ValueError("cookie names and values must be URL-safe tokens")
    response.headers.append(
        "set-cookie",
        f"{name}={value}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite=None; Partitioned",
    )


class SecurityHeadersMiddleware(BaseHTTPMiddleware):
    """Adds CSP (frame-ancestors limited to registered EHR origins), no-referrer and nosniff.
    A route that knows the launch's own EHR sets a narrower CSP itself; that one is kept."""

    def __init__(self, app, default_frame_ancestors: Iterable[str]) -> None:  # type: ignore[no-untyped-def]
        super().__init__(app)
        self._default_csp = frame_ancestors_header(default_frame_ancestors)

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", self._default_csp)
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.url.path not in ("/healthz",) and not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
