"""A ceiling on request bodies (CDS Hooks prefetch, packet edits, forms). The declared
Content-Length is checked first; a body without one is read up to the ceiling and then replayed to
the app, so a huge or endless body is refused with 413 without ever being held whole."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartapp.web.errors import AppError, error_response


def too_large(limit: int) -> AppError:
    return AppError(
        413,
        "request_too_large",
        "The request is too large",
        f"SecondLook accepts request bodies of up to {limit // (1024 * 1024)} MiB; this one is larger "
        "and was not read.",
        "Send less data (for CDS Hooks, a narrower prefetch), or ask the administrator to raise "
        "SECONDLOOK_MAX_REQUEST_BYTES.",
    )


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees an empty body and the disconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(Request(scope, receive), too_large(self.max_bytes))
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
