"""The packet page's send buttons (File in the EHR, Send to the center) as form posts: CSRF, the
send, then back to the packet page with a notice. A send the other side refused is shown on the page
(the failed attempt, its reason and time, and a button to try again), not as an error page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from smartapp.web.csrf import check_csrf
from smartapp.web.errors import AppError


async def send_from_form(
    request: Request, sid: str, send: Callable[[], Awaitable[Any]], *, refused: str, notices: tuple[str, str]
) -> Response:
    """`refused`: the AppError code of a refused send; `notices`: (after success, after a refusal)."""
    check_csrf(request, sid, str((await request.form()).get("csrf") or ""))
    done, failed = notices
    try:
        await send()
    except AppError as error:
        if error.error != refused:
            raise
        return RedirectResponse(f"/s/{sid}/packet?notice={failed}", status_code=303)
    return RedirectResponse(f"/s/{sid}/packet?notice={done}", status_code=303)
