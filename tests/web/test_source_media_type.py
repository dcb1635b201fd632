"""An attachment's declared content type comes from the EHR: it reaches a response header only as
`type/subtype` plus an optional charset (a CR/LF once dropped the connection with a traceback)."""

from __future__ import annotations

import pytest

from smartapp.web.routes.source import safe_media_type


@pytest.mark.parametrize(
    ("declared", "sent"),
    [
        ("application/pdf", "application/pdf"),
        ("TEXT/HTML;charset=iso-8859-1", "text/html; charset=iso-8859-1"),
        ("text/plain; charset=UTF-8", "text/plain; charset=UTF-8"),
        ("text/html\r\nX-Injected: 1", "application/octet-stream"),
        ("text/plain\n", "text/plain"),  # surrounding whitespace is dropped, not sent
        ("text/plain; charset=utf-8\r\nSet-Cookie: a=b", "text/plain"),
        ("", "application/octet-stream"),
        ("pdf", "application/octet-stream"),
    ],
)
def test_declared_content_types_become_safe_header_values(declared: str, sent: str) -> None:
    assert safe_media_type(declared) == sent
