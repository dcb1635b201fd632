"""Requests must name this app in their Host header: the public URL's host, the configured extra
hosts, and in development the loopback names. A forged Host would otherwise flow into redirects
(the trailing-slash redirect reflected it). Health checks from a load balancer pass whatever host."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from smartapp.config import Settings

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
EXEMPT_PATHS = frozenset({"/healthz"})


def allowed_hosts(settings: Settings) -> frozenset[str]:
    public = (urlsplit(settings.public_url).hostname or "").lower()
    hosts = {public, *(h.lower() for h in settings.allowed_hosts)}
    if settings.environment == "development" and public in LOOPBACK:
        hosts |= LOOPBACK
    return frozenset(hosts)


def host_of(value: str) -> str:
    """Host header -> host name: port dropped, IPv6 brackets removed, lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else ""
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class TrustedHostMiddleware:
    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), "")
        if host_of(header) in self.hosts:
            await self.app(scope, receive, send)
            return
        response = PlainTextResponse("This request names a host SecondLook does not serve.", status_code=400)
        await response(scope, receive, send)
