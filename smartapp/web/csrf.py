"""CSRF tokens for form posts. SameSite=None cookies (needed inside EHR iframes) give no
SameSite protection, so every state-changing form carries a token derived from the launch's own
cookie secret, which a cross-site page cannot read."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from smartapp.web.errors import AppError
from smartapp.web.security import SESSION_COOKIE_PREFIX

# JSON writes carry the token in this header (forms carry it as the field `csrf`).
CSRF_HEADER = "X-CSRF-Token"


def csrf_token(request: Request, sid: str) -> str:
    secret = request.cookies.get(SESSION_COOKIE_PREFIX + sid, "")
    return hmac.new(secret.encode(), f"csrf:{sid}".encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, sid: str, submitted: str | None) -> None:
    if not submitted or not hmac.compare_digest(submitted, csrf_token(request, sid)):
        raise AppError(
            403,
            "csrf_failed",
            "The form could not be accepted",
            "This form was not sent from this SecondLook page (or the page is too old).",
            "Reload the page and try again.",
        )
