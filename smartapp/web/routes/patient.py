"""The launch's first page and its JSON twin: who the patient is, what was read, what could not
be read, and what the engine found. Every route is bound to the launch session in the URL."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from smartapp.web.deps import Services, SmartSession
from smartapp.web.patient_data import evaluate_snapshot, load_snapshot, record_summary
from smartapp.web.security import frame_ancestors_header

router = APIRouter()


@router.get("/s/{sid}/", include_in_schema=False, response_class=HTMLResponse)
async def patient_page(request: Request, services: Services, session: SmartSession) -> Response:
    snapshot = await load_snapshot(services, session)
    context = {
        "session": session,
        "summary": record_summary(session, snapshot),
        "patient": snapshot.patient(),
        "evaluation": evaluate_snapshot(snapshot),
    }
    response = services.templates.TemplateResponse(request, "patient.html", context)
    registration = services.registry.get(session.iss)
    ancestors = [*(registration.frame_ancestors if registration else []), *services.settings.frame_ancestors]
    response.headers["Content-Security-Policy"] = frame_ancestors_header(ancestors)
    return response


@router.get("/api/s/{sid}/record", tags=["record"])
async def record(services: Services, session: SmartSession) -> dict[str, Any]:
    """What was read for the launch's patient: counts by type and category, and every gap
    (denied scope, failed search, unreadable report text) with what it means."""
    return record_summary(session, await load_snapshot(services, session))


@router.get("/api/s/{sid}/findings", tags=["findings"])
async def findings(services: Services, session: SmartSession) -> dict[str, Any]:
    """Second-opinion findings for the launch's patient (design-brief schema, one patient)."""
    snapshot = await load_snapshot(services, session)
    return {"patients": [evaluate_snapshot(snapshot)], "summary": record_summary(session, snapshot)}
