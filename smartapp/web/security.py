"""Response headers and cookies that keep the app safe inside an EHR iframe."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request

SESSION_COOKIE_PREFIX = "sl_s_"
BROWSER_COOKIE = "sl_browser"


def frame_ancestors_header(origins: Iterable[str]) -> str:
    sources = " ".join(["'self'", *sorted(set(origins))])
    return (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"object-src 'none'; base-uri 'none'; frame-ancestors {sources}"
    )


def set_iframe_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    """HttpOnly, Secure, SameSite=None and Partitioned (CHIPS): the only combination that keeps a
    cookie inside a cross-site EHR iframe once third-party cookies are blocked."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=True,
        httponly=True,
        samesite="none",
        partitioned=True,
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
