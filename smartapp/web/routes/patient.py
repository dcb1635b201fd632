"""The launch's first page and its JSON twin: who the patient is, what was read, what could not
be read, and what the engine found. Every route is bound to the launch session in the URL."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from launch.fhir_client import FhirClient
from launch.scopes import GrantedScopes
from launch.sessions import LaunchSession
from launch.tokens import SessionTokenSource
from smartapp.engine import Unavailable, evaluate_resources
from smartapp.record_loader import PatientRecordSnapshot, load_patient_record
from smartapp.web.deps import Services, SmartSession
from smartapp.web.errors import AppError
from smartapp.web.security import frame_ancestors_header
from smartapp.web.services import AppServices

router = APIRouter()


async def _snapshot(services: AppServices, session: LaunchSession) -> PatientRecordSnapshot:
    if not session.patient:
        raise AppError(
            409,
            "no_patient_context",
            "No patient was selected",
            "The EHR did not send a patient with this launch, so SecondLook has nothing to read.",
            "Open SecondLook from a patient's chart, or choose a patient in the standalone launch.",
        )
    client = FhirClient(
        session.iss,
        services.http,
        SessionTokenSource(services.tokens, session.id),
        max_concurrency=services.settings.fhir_max_concurrency,
    )
    return await load_patient_record(client, session.patient, GrantedScopes.parse(session.granted_scope))


def _evaluation(snapshot: PatientRecordSnapshot) -> dict[str, Any]:
    unavailable = [Unavailable(g.resource_type, g.reason, g.message) for g in snapshot.gaps]
    results = evaluate_resources(
        snapshot.resources, as_of=date.today(), attachments=snapshot.attachments, unavailable=unavailable
    )
    wanted = f"Patient/{snapshot.patient_id}"
    for result in results:
        body = result.to_json()
        if body.get("patient") == wanted:
            return body
    return {"patient": wanted, "time_critical": None, "findings": [], "data_issues": [
        {"reason": "The patient's own record (Patient resource) could not be read, so no findings were computed."}
    ]}


def _summary(session: LaunchSession, snapshot: PatientRecordSnapshot) -> dict[str, Any]:
    return {
        "patient": f"Patient/{snapshot.patient_id}",
        "need_patient_banner": session.need_patient_banner,
        "granted_scope": session.granted_scope,
        "counts": {
            "Condition": snapshot.count("Condition"),
            "DiagnosticReport": snapshot.count("DiagnosticReport"),
            "DiagnosticReportByCategory": snapshot.reports_by_category(),
            "report_texts_read": len(snapshot.attachments),
        },
        "gaps": [
            {"resource_type": g.resource_type, "reason": g.reason, "message": g.message} for g in snapshot.gaps
        ],
    }


@router.get("/s/{sid}/", include_in_schema=False, response_class=HTMLResponse)
async def patient_page(request: Request, services: Services, session: SmartSession) -> Response:
    snapshot = await _snapshot(services, session)
    context = {
        "session": session,
        "summary": _summary(session, snapshot),
        "patient": snapshot.patient(),
        "evaluation": _evaluation(snapshot),
    }
    response = services.templates.TemplateResponse(request, "patient.html", context)
    registration = services.registry.get(session.iss)
    ancestors = [*(registration.frame_ancestors if registration else []), *services.settings.frame_ancestors]
    response.headers["Content-Security-Policy"] = frame_ancestors_header(ancestors)
    return response


@router.get("/api/s/{sid}/record", tags=["record"])
async def record_summary(services: Services, session: SmartSession) -> dict[str, Any]:
    """What was read for the launch's patient: counts by type and category, and every gap
    (denied scope, failed search, unreadable report text) with what it means."""
    return _summary(session, await _snapshot(services, session))


@router.get("/api/s/{sid}/findings", tags=["findings"])
async def findings(services: Services, session: SmartSession) -> dict[str, Any]:
    """Second-opinion findings for the launch's patient (design-brief schema, one patient)."""
    snapshot = await _snapshot(services, session)
    return {"patients": [_evaluation(snapshot)], "summary": _summary(session, snapshot)}
