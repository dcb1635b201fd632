"""SMART App Launch entry points: EHR launch, standalone launch, and the OAuth callback."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from launch.flow import begin_launch, complete_launch
from smartapp.read_plan import SCOPE_READS
from smartapp.web.deps import Services
from smartapp.web.errors import AppError
from smartapp.web.security import (
    BROWSER_COOKIE,
    SESSION_COOKIE_PREFIX,
    launch_frame_csp,
    set_iframe_cookie,
)
from smartapp.web.services import AppServices
from smartapp.web.smart_style import prefetch_style

router = APIRouter()

BROWSER_COOKIE_MAX_AGE = 24 * 3600


def _browser_nonce(request: Request) -> str:
    return request.cookies.get(BROWSER_COOKIE) or secrets.token_urlsafe(32)


async def _redirect_to_authorize(
    request: Request, services: Services, iss: str, launch: str | None, *, user_level: bool = False
) -> Response:
    nonce = _browser_nonce(request)
    url = await begin_launch(
        registry=services.registry,
        discovery=services.discovery,
        store=services.store,
        iss=iss,
        launch=launch,
        redirect_uri=services.settings.redirect_uri,
        browser_nonce=nonce,
        reads=SCOPE_READS,
        user_level=user_level,
        http=services.http,
    )
    response = RedirectResponse(url, status_code=302)
    # The pending launch is bound to this browser through the nonce; the state alone is not enough.
    set_iframe_cookie(response, BROWSER_COOKIE, nonce, BROWSER_COOKIE_MAX_AGE)
    response.headers["Content-Security-Policy"] = launch_frame_csp(services.registry, services.settings, iss)
    return response


@router.get("/launch", include_in_schema=False)
async def ehr_launch(
    request: Request,
    services: Services,
    iss: Annotated[str | None, Query()] = None,
    launch: Annotated[str | None, Query()] = None,
) -> Response:
    if not iss or not launch:
        raise AppError(
            400,
            "invalid_launch",
            "SecondLook was opened without launch context",
            "An EHR launch must carry both `iss` (the FHIR server) and `launch` parameters.",
            "Open SecondLook from the patient's chart in the EHR, or use the standalone launch page.",
        )
    return await _redirect_to_authorize(request, services, iss, launch)


@router.get("/standalone", include_in_schema=False, response_class=HTMLResponse)
async def standalone_page(request: Request, services: Services) -> Response:
    ehrs = [r for r in services.registry.all() if r.standalone]
    coordinator_ehrs = [r for r in ehrs if r.worklist_users or r.worklist_roles]
    return services.templates.TemplateResponse(
        request, "standalone.html", {"ehrs": ehrs, "coordinator_ehrs": coordinator_ehrs}
    )


@router.get("/standalone/start", include_in_schema=False)
async def standalone_start(
    request: Request, services: Services, iss: Annotated[str | None, Query()] = None
) -> Response:
    if not iss:
        raise AppError(
            400,
            "missing_iss",
            "No EHR was chosen",
            "The standalone launch needs an EHR to sign in to.",
            "Go back to the standalone launch page and choose an EHR.",
        )
    return await _redirect_to_authorize(request, services, iss, None)


@router.get("/worklist", include_in_schema=False)
async def worklist_entry() -> Response:
    # The worklist itself lives in a signed-in session (/s/<handle>/worklist); sign in first.
    return RedirectResponse("/standalone#coordinators", status_code=303)


@router.get("/worklist/signin", include_in_schema=False)
async def worklist_signin(
    request: Request, services: Services, iss: Annotated[str | None, Query()] = None
) -> Response:
    """Standalone sign-in of a tumor-board coordinator: identity plus `user/` read scopes, no patient."""
    if not iss:
        raise AppError(
            400,
            "missing_iss",
            "No EHR was chosen",
            "The coordinator sign-in needs an EHR to sign in to.",
            "Go back to the standalone launch page and choose an EHR.",
        )
    return await _redirect_to_authorize(request, services, iss, None, user_level=True)


@router.get("/callback", include_in_schema=False)
async def callback(request: Request, services: Services) -> Response:
    session, secret = await complete_launch(
        registry=services.registry,
        discovery=services.discovery,
        store=services.store,
        http=services.http,
        params=dict(request.query_params),
        browser_nonce=request.cookies.get(BROWSER_COOKIE, ""),
        redirect_uri=services.settings.redirect_uri,
    )
    if session.patient:
        # Start reading the record (and the EHR's style) now; the browser is still following the
        # redirect.
        services.results.start(services.fhir, session)
        prefetch_style(services.http, session.smart_style_url, session.iss)
        target = f"/s/{session.id}/"
    else:
        # No patient in context: a coordinator signing in; the worklist checks who it is.
        target = f"/s/{session.id}/worklist"
    # 303 to a clean URL: the code and state do not stay in the browser history.
    response = RedirectResponse(target, status_code=303)
    await _drop_stale_launch_cookies(request, services, response)
    set_iframe_cookie(
        response, SESSION_COOKIE_PREFIX + session.id, secret, int(services.settings.session_ttl_hours * 3600)
    )
    return response


# Launch cookies kept per browser besides the new one: each launch adds one, and past ~100 a
# proxy's 8 kB header limit would refuse every request.
MAX_LAUNCH_COOKIES = 20


async def _drop_stale_launch_cookies(request: Request, services: AppServices, response: Response) -> None:
    """Expires the cookies of ended launches, and of the oldest launches beyond the cap (one read)."""
    cookies = {
        name: secret for name, secret in request.cookies.items() if name.startswith(SESSION_COOKIE_PREFIX)
    }
    handles = {name.removeprefix(SESSION_COOKIE_PREFIX): secret for name, secret in cookies.items()}
    created = await services.store.live_sessions(handles)
    live: list[tuple[datetime, str]] = []
    for name in cookies:
        when = created.get(name.removeprefix(SESSION_COOKIE_PREFIX))
        if when is None:
            set_iframe_cookie(response, name, "ended", 0)
        else:
            live.append((when, name))
    for _, name in sorted(live, reverse=True)[MAX_LAUNCH_COOKIES - 1 :]:
        set_iframe_cookie(response, name, "ended", 0)


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
async def index(request: Request, services: Services) -> Response:
    return services.templates.TemplateResponse(request, "index.html", {})
