"""Dependency aliases so routes read as declarations."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Path, Request

from launch.errors import LaunchError
from launch.sessions import LaunchSession
from smartapp.web.errors import AppError
from smartapp.web.security import SESSION_COOKIE_PREFIX
from smartapp.web.services import AppServices
from smartapp.worklist.access import selected_patient, user_allowed


def get_services(request: Request) -> AppServices:
    services: AppServices = request.app.state.services
    return services


Services = Annotated[AppServices, Depends(get_services)]


async def get_smart_session(
    request: Request,
    services: Services,
    sid: Annotated[str, Path(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")],
) -> LaunchSession:
    """The launch session named in the URL, proven by its own cookie. The URL handle alone grants
    nothing, and one launch's cookie never opens another launch (two tabs, two patients)."""
    secret = request.cookies.get(SESSION_COOKIE_PREFIX + sid)
    session = await services.store.get_session(sid, secret) if secret else None
    if session is None:
        raise AppError(
            401,
            "session_not_found",
            "Your SecondLook session has ended",
            "This launch is unknown, has expired, or belongs to another browser.",
            "Launch SecondLook again from the patient's chart in the EHR.",
        )
    if session.patient is None:
        # A coordinator's session has no launch patient; its pages show the patient the coordinator
        # opened from the worklist (stored server-side, checked against the worklist at opening).
        selected = await selected_patient(services.engine, session.id)
        registration = services.registry.get(session.iss)
        still_allowed = (
            registration is not None
            and session.fhir_user is not None
            and (bool(registration.worklist_roles) or user_allowed(registration, session.fhir_user))
        )
        if selected is not None and still_allowed:
            request.state.worklist_patient = True
            session = replace(session, patient=selected)
    return session


SmartSession = Annotated[LaunchSession, Depends(get_smart_session)]

__all__ = ["LaunchError", "Services", "SmartSession", "get_services", "get_smart_session"]
