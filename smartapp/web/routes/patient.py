"""The clinician's findings screen and its JSON twin. The page shell renders at once with a
progress state; the results fragment arrives when the record has been read and evaluated.
Every route is bound to the launch session in the URL (and its cookie)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from smartapp.finding_decisions import list_decisions
from smartapp.packet import outside_report
from smartapp.packet.tracking import patient_referrals, summary_line
from smartapp.web.api_models import FindingsResponse, RecordSummary, with_decisions
from smartapp.web.csrf import csrf_token
from smartapp.web.deps import Services, SmartSession
from smartapp.web.patient_data import record_summary
from smartapp.web.security import launch_frame_csp
from smartapp.web.view import build_page

router = APIRouter()


@router.get("/s/{sid}/", include_in_schema=False, response_class=HTMLResponse)
async def patient_page(request: Request, services: Services, session: SmartSession) -> Response:
    if not session.patient:
        # Signed in without a patient (a coordinator who has not opened one yet): the worklist.
        return RedirectResponse(f"/s/{session.id}/worklist", status_code=303)
    services.results.start(services.fhir, session)
    response = services.templates.TemplateResponse(request, "patient.html", {"session": session})
    response.headers["Content-Security-Policy"] = launch_frame_csp(
        services.registry, services.settings, session.iss
    )
    return response


@router.get("/s/{sid}/results", include_in_schema=False, response_class=HTMLResponse)
async def results_fragment(
    request: Request, services: Services, session: SmartSession, page: int = 0
) -> Response:
    """The findings as an HTML fragment for the page's script, or (page=1, no-script browsers)
    as a whole page."""
    results = await services.results.get(services.fhir, session)
    actions = await list_decisions(services.engine, session.iss, session.patient or "")
    referrals = await patient_referrals(services.engine, session.iss, f"Patient/{session.patient}")
    reports = await outside_report.for_packets(services.engine, [stored.packet.id for stored, _ in referrals])
    context = {
        "session": session,
        # The patient's referrals from this EHR, newest first, each as one line in words, with the
        # outside opinion and the center's report files once they are back.
        "referral_lines": [summary_line(stored, state) for stored, state in referrals],
        "referrals": [
            {
                "line": summary_line(stored, state),
                "opinion": state.opinion,
                "reports": reports.get(stored.packet.id, []),
            }
            for stored, state in referrals
        ],
        "patient": results.snapshot.patient(),
        "summary": record_summary(session, results.snapshot),
        "view": build_page(session.id, results.evaluation, actions, session.app_context),
        "csrf": csrf_token(request, session.id),
    }
    template = "results_page.html" if page else "results.html"
    response = services.templates.TemplateResponse(request, template, context)
    response.headers["Content-Security-Policy"] = launch_frame_csp(
        services.registry, services.settings, session.iss
    )
    return response


@router.get("/api/s/{sid}/record", tags=["record"])
async def record(services: Services, session: SmartSession) -> RecordSummary:
    """What was read for the launch's patient: counts by type and category, and every gap
    (denied scope, failed search, unreadable report text) with what it means."""
    results = await services.results.get(services.fhir, session)
    return RecordSummary.model_validate(record_summary(session, results.snapshot))


@router.get("/api/s/{sid}/findings", tags=["findings"])
async def findings(request: Request, services: Services, session: SmartSession) -> FindingsResponse:
    """Second-opinion findings for the launch's patient (design-brief schema, one patient), plus
    the clinicians' dismissals and added findings for that patient."""
    results = await services.results.get(services.fhir, session)
    actions = await list_decisions(services.engine, session.iss, session.patient or "")
    return FindingsResponse(
        patients=[with_decisions(results.evaluation, actions)],
        summary=RecordSummary.model_validate(record_summary(session, results.snapshot)),
        csrf_token=csrf_token(request, session.id),
    )
