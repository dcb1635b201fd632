"""Clinician actions on findings: dismiss with a reason, add a finding the rules did not produce,
withdraw either. Forms (CSRF-protected) and JSON under /api/."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from launch.sessions import LaunchSession
from smartapp.finding_decisions import DISMISS_REASONS, list_decisions, record_decision, withdraw_decision
from smartapp.web.csrf import CSRF_HEADER, check_csrf
from smartapp.web.deps import Services, SmartSession
from smartapp.web.errors import AppError
from smartapp.web.labels import TRIGGER_LABELS
from smartapp.web.services import AppServices

router = APIRouter()


# The launch's CSRF token on JSON writes: the session cookie is SameSite=None (EHR iframes), so the
# cookie alone does not show that the request came from this launch's page.
CsrfHeader = Annotated[str | None, Header(alias=CSRF_HEADER)]


class Dismissal(BaseModel):
    trigger: str = Field(description="trigger id of the finding to dismiss")
    reason: str = Field(description="one of: " + ", ".join(DISMISS_REASONS))
    note: str | None = Field(default=None, max_length=2000)


class ClinicianFinding(BaseModel):
    trigger: str = Field(description="trigger id: " + ", ".join(TRIGGER_LABELS))
    note: str = Field(min_length=1, max_length=2000, description="why, in the clinician's words")


def _check_trigger(trigger: str) -> None:
    if trigger not in TRIGGER_LABELS:
        raise AppError(
            400,
            "unknown_trigger",
            "Unknown finding type",
            f"'{trigger[:64]}' is not a SecondLook trigger.",
            "Choose one of the listed finding types.",
        )


async def _dismiss(
    services: AppServices, session: LaunchSession, trigger: str, reason: str, note: str | None
) -> None:
    _check_trigger(trigger)
    if reason not in DISMISS_REASONS:
        raise AppError(
            400,
            "unknown_reason",
            "Choose a reason",
            "A dismissal needs one of the listed reasons.",
            "Pick the reason that fits and submit again.",
        )
    if reason == "other" and not (note or "").strip():
        raise AppError(
            400,
            "note_required",
            "Say why",
            "'Other' needs a short note explaining the dismissal.",
            "Add a note and submit again.",
        )
    await record_decision(
        services.engine,
        iss=session.iss,
        patient=session.patient or "",
        kind="dismiss",
        trigger=trigger,
        reason=reason,
        note=(note or "").strip() or None,
        who=session.fhir_user,
    )


async def _add(services: AppServices, session: LaunchSession, trigger: str, note: str) -> None:
    _check_trigger(trigger)
    if not note.strip():
        raise AppError(
            400,
            "note_required",
            "Say why",
            "An added finding needs a short note.",
            "Add a note and submit again.",
        )
    await record_decision(
        services.engine,
        iss=session.iss,
        patient=session.patient or "",
        kind="add",
        trigger=trigger,
        reason=None,
        note=note.strip(),
        who=session.fhir_user,
    )


def _back(session: LaunchSession, anchor: str) -> Response:
    return RedirectResponse(f"/s/{session.id}/#{anchor}", status_code=303)


@router.post("/s/{sid}/findings/{trigger}/dismiss", include_in_schema=False)
async def dismiss_form(
    request: Request,
    services: Services,
    session: SmartSession,
    trigger: str,
    csrf: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, session.id, csrf)
    await _dismiss(services, session, trigger, reason, note)
    return _back(session, "dismissed")


@router.post("/s/{sid}/findings/add", include_in_schema=False)
async def add_form(
    request: Request,
    services: Services,
    session: SmartSession,
    csrf: Annotated[str, Form()] = "",
    trigger: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, session.id, csrf)
    await _add(services, session, trigger, note)
    return _back(session, "findings")


@router.post("/s/{sid}/decisions/{decision_id}/withdraw", include_in_schema=False)
async def withdraw_form(
    request: Request,
    services: Services,
    session: SmartSession,
    decision_id: int,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, session.id, csrf)
    await withdraw_decision(
        services.engine, iss=session.iss, patient=session.patient or "", decision_id=decision_id
    )
    return _back(session, "findings")


@router.post("/api/s/{sid}/dismissals", tags=["findings"], status_code=201)
async def dismiss_api(
    request: Request,
    body: Dismissal,
    services: Services,
    session: SmartSession,
    x_csrf_token: CsrfHeader = None,
) -> dict[str, Any]:
    """Dismiss a finding for this patient with a reason (kept for later launches). Send the launch's
    `csrf_token` (from the findings API) as X-CSRF-Token."""
    check_csrf(request, session.id, x_csrf_token)
    await _dismiss(services, session, body.trigger, body.reason, body.note)
    return {
        "decisions": [
            a.to_json() for a in await list_decisions(services.engine, session.iss, session.patient or "")
        ]
    }


@router.post("/api/s/{sid}/clinician-findings", tags=["findings"], status_code=201)
async def add_api(
    request: Request,
    body: ClinicianFinding,
    services: Services,
    session: SmartSession,
    x_csrf_token: CsrfHeader = None,
) -> dict[str, Any]:
    """Add a finding the rules did not produce (e.g. the patient asked for a second opinion). Send the
    launch's `csrf_token` as X-CSRF-Token."""
    check_csrf(request, session.id, x_csrf_token)
    await _add(services, session, body.trigger, body.note)
    return {
        "decisions": [
            a.to_json() for a in await list_decisions(services.engine, session.iss, session.patient or "")
        ]
    }


@router.delete("/api/s/{sid}/decisions/{decision_id}", tags=["findings"])
async def withdraw_api(
    request: Request,
    decision_id: int,
    services: Services,
    session: SmartSession,
    x_csrf_token: CsrfHeader = None,
) -> dict[str, Any]:
    """Withdraw a dismissal or an added finding. Send the launch's `csrf_token` as X-CSRF-Token."""
    check_csrf(request, session.id, x_csrf_token)
    if not await withdraw_decision(
        services.engine, iss=session.iss, patient=session.patient or "", decision_id=decision_id
    ):
        raise AppError(
            404,
            "decision_not_found",
            "Nothing to withdraw",
            "This patient has no such dismissal or added finding.",
            "",
        )
    return {
        "decisions": [
            a.to_json() for a in await list_decisions(services.engine, session.iss, session.patient or "")
        ]
    }
