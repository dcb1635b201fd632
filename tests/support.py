"""Test helpers shared across test packages: real loopback servers and a cookie-keeping browser."""

from __future__ import annotations

import functools
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx2
import pytest
import uvicorn

from launch.crypto import TokenCipher
from smartapp.config import Settings
from smartapp.keyring import token_keys

POSTGRES_ENV = "SECONDLOOK_TEST_POSTGRES_URL"


def database_params() -> list[Any]:
    """pytest parameters: "sqlite" (the test makes a file URL), and the PostgreSQL URL that CI sets
    (skipped, saying so, where it is not set)."""
    postgres = os.environ.get(POSTGRES_ENV)
    reason = f"{POSTGRES_ENV} is not set (CI sets it)"
    return [
        "sqlite",
        pytest.param(postgres, id="postgresql", marks=pytest.mark.skipif(not postgres, reason=reason)),
    ]


def app_cipher(database_url: str) -> TokenCipher:
    """The keys an app with this database uses in tests (no SECONDLOOK_SECRET_KEY): the development
    key in the temporary config folder of tests/conftest.py."""
    return TokenCipher(token_keys(Settings(database_url=database_url)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any, port: int) -> Iterator[str]:
    """Runs an ASGI app under uvicorn on 127.0.0.1:port in a background thread."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    checkboxes: list[tuple[str, str]] = field(default_factory=list)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._select: str | None = None
        self._select_value: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif not self.forms:
            return
        elif tag == "input":
            kind = a.get("type", "text").lower()
            if kind == "checkbox":
                if "checked" in a:
                    self.forms[-1].checkboxes.append((a.get("name", ""), a.get("value", "on")))
            elif kind == "submit":
                self.forms[-1].buttons.append((a.get("name", ""), a.get("value", "")))
            elif "name" in a:
                self.forms[-1].fields.append((a["name"], a.get("value", "")))
        elif tag == "button" and a.get("name"):
            self.forms[-1].buttons.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._select_value = a.get("name", ""), None
        elif tag == "option" and self._select is not None:
            if self._select_value is None or "selected" in a:
                self._select_value = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None and self.forms:
            if self._select_value is not None:
                self.forms[-1].fields.append((self._select, self._select_value))
            self._select = None


def parse_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class Browser:
    """A minimal browser over httpx2: follows redirects itself and keeps cookies per host the way
    Chromium does on loopback (Secure cookies are kept on http://127.0.0.1, ports share cookies),
    which the stdlib cookie jar would not do."""

    def __init__(self) -> None:
        # One TLS context for every Browser: building one costs ~80 ms of CPU (the CA bundle),
        # which a load benchmark's client would otherwise take from the servers it measures.
        self.client = httpx2.Client(follow_redirects=False, timeout=30, verify=shared_tls_context())
        self.cookies: dict[str, dict[str, str]] = {}
        self.history: list[httpx2.Response] = []

    def close(self) -> None:
        self.client.close()

    def _store_cookies(self, response: httpx2.Response) -> None:
        host = urlsplit(str(response.request.url)).hostname or ""
        jar = self.cookies.setdefault(host, {})
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if "max-age=0" in header.lower() or not value:
                jar.pop(name.strip(), None)
            else:
                jar[name.strip()] = value

    def request(self, method: str, url: str, *, follow: bool = True, **kwargs: Any) -> httpx2.Response:
        for _ in range(20):
            host = urlsplit(url).hostname or ""
            cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.get(host, {}).items())
            headers = dict(kwargs.pop("headers", {}) or {})
            if cookie:
                headers["cookie"] = cookie
            response = self.client.request(method, url, headers=headers, **kwargs)
            self._store_cookies(response)
            self.history.append(response)
            if not follow or response.status_code not in (301, 302, 303, 307, 308):
                return response
            url = urljoin(url, response.headers["location"])
            if response.status_code in (301, 302, 303):
                method, kwargs = "GET", {}
        raise RuntimeError("too many redirects")

    def get(self, url: str, **kwargs: Any) -> httpx2.Response:
        return self.request("GET", url, **kwargs)

    def submit(
        self,
        page: httpx2.Response,
        *,
        button: tuple[str, str] | None = None,
        uncheck: set[str] = frozenset(),
        values: dict[str, str] | None = None,
        follow: bool = True,
        form_index: int = 0,
    ) -> httpx2.Response:
        """Submits the page's form as a user would: hidden fields, the checkboxes left checked,
        and the pressed button."""
        form = parse_forms(page.text)[form_index]
        values = values or {}
        data = [(n, values.get(n, v)) for n, v in form.fields]
        data += [(n, v) for n, v in form.checkboxes if v not in uncheck and n not in uncheck]
        if button:
            data.append(button)
        url = urljoin(str(page.request.url), form.action or str(page.request.url))
        if form.method == "post":
            return self.request(
                "POST",
                url,
                content=urlencode(data),
                follow=follow,
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        return self.request("GET", url, params=data, follow=follow)
