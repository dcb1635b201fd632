"""Starlette adapter for Authlib's framework-neutral OAuth 2 server: the request objects it reads.

Authlib's server code is synchronous, so each route reads the body first (`parse_request`)
and hands Authlib an already-parsed request.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from authlib.oauth2.rfc6749 import JsonPayload, JsonRequest, OAuth2Payload, OAuth2Request
from starlette.requests import Request


@dataclass
class ParsedRequest:
    """An HTTP request whose body was already read, so Authlib's sync code can use it."""

    method: str
    uri: str
    headers: Mapping[str, str]  # case-insensitive (Starlette Headers): Authlib asks for "Authorization"
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]


async def parse_request(request: Request, origin: str) -> ParsedRequest:
    form: list[tuple[str, str]] = []
    if request.method == "POST" and "form" in request.headers.get("content-type", ""):
        body = await request.form()
        form = [(key, value) for key, value in body.multi_items() if isinstance(value, str)]
    # The URI is rebuilt on the configured origin: Authlib refuses non-TLS URIs unless loopback.
    uri = origin + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return ParsedRequest(request.method, uri, request.headers, list(request.query_params.multi_items()), form)


class StarletteOAuth2Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, parsed: ParsedRequest):
        self._parsed = parsed

    @cached_property
    def data(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for key, value in [*self._parsed.query, *self._parsed.form]:
            merged.setdefault(key, value)
        return merged

    @cached_property
    def datalist(self) -> defaultdict[str, list[str]]:
        values: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in [*self._parsed.query, *self._parsed.form]:
            values[key].append(value)
        return values


class StarletteOAuth2Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, parsed: ParsedRequest):
        super().__init__(method=parsed.method, uri=parsed.uri, headers=parsed.headers)
        self._parsed = parsed
        self.payload = StarletteOAuth2Payload(parsed)

    @property
    def args(self) -> dict[str, str]:
        return dict(self._parsed.query)

    @property
    def form(self) -> dict[str, str]:
        return dict(self._parsed.form)


class StarletteJsonPayload(JsonPayload):  # type: ignore[misc]
    def __init__(self, parsed: ParsedRequest):
        self._parsed = parsed

    @property
    def data(self) -> dict[str, str]:
        return dict(self._parsed.form)


class StarletteJsonRequest(JsonRequest):  # type: ignore[misc]
    def __init__(self, parsed: ParsedRequest):
        super().__init__(parsed.method, parsed.uri, parsed.headers)
        self.payload = StarletteJsonPayload(parsed)
