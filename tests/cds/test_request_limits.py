"""Hostile CDS bodies: a body over the size ceiling is refused with 413 before it is buffered, and
JSON nested 100,000 deep is a 400 CDS error, not a server error."""

from __future__ import annotations

from tests.cds.conftest import SERVICE, Stack

PATH = f"/cds-services/{SERVICE}"


def _post(stack: Stack, content: bytes) -> object:
    return stack.http.post(
        stack.url + PATH,
        content=content,
        headers={
            "Authorization": f"Bearer {stack.token(PATH)}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )


def test_deeply_nested_body_is_a_bad_request(stack: Stack) -> None:
    response = _post(stack, b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "Traceback" not in response.text  # type: ignore[attr-defined]


def test_body_over_the_ceiling_is_refused_with_413(stack: Stack) -> None:
    limit = stack.app.state.services.settings.max_request_bytes
    padding = b" " * (limit + 1)
    response = _post(stack, b'{"hook": "patient-view"' + padding + b"}")
    assert response.status_code == 413  # type: ignore[attr-defined]
    assert response.json()["error"] == "request_too_large"  # type: ignore[attr-defined]


def test_body_under_the_ceiling_is_read(stack: Stack) -> None:
    response = _post(stack, b'{"hook": "patient-view"' + b" " * 1024 + b"}")
    assert response.status_code == 400  # read and found incomplete, not refused for size
    assert "patient-view" in response.text  # type: ignore[attr-defined]


def test_chunked_body_over_the_ceiling_is_refused_with_413(stack: Stack) -> None:
    limit = stack.app.state.services.settings.max_request_bytes

    def chunks():  # no Content-Length: sent chunked
        yield b'{"hook": "patient-view", "pad": "'
        for _ in range(limit // (1024 * 1024) + 2):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    response = stack.http.post(
        stack.url + PATH,
        content=chunks(),
        headers={
            "Authorization": f"Bearer {stack.token(PATH)}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    assert response.status_code == 413
    assert response.headers["content-security-policy"]
