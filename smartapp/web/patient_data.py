"""Reading and evaluating the launch patient's record: shared by pages, the JSON API and the
referral packet, so every route sees the same data the same way."""

from __future__ import annotations

from datetime import date
from typing import Any

from launch.scopes import GrantedScopes
from launch.session_clients import SessionClients
from launch.sessions import LaunchSession
from smartapp.chart_reader import ChartSnapshot, read_chart
from smartapp.engine import PatientNotInInput, Unavailable, evaluate_patient
from smartapp.findings import DataIssue, PatientResult
from smartapp.web.errors import AppError


async def load_snapshot(clients: SessionClients, session: LaunchSession) -> ChartSnapshot:
    if not session.patient:
        raise AppError(
            409,
            "no_patient_context",
            "No patient was selected",
            "The EHR did not send a patient with this launch, so SecondLook has nothing to read.",
            "Open SecondLook from a patient's chart, or choose a patient in the standalone launch.",
        )
    registration = clients.registry.get(session.iss)
    return await read_chart(
        clients.client_for(session),
        session.patient,
        GrantedScopes.parse(session.granted_scope),
        required_categories=registration.required_categories if registration else None,
        user=session.fhir_user,
    )


def evaluate_snapshot(snapshot: ChartSnapshot, as_of: date | None = None) -> PatientResult:
    """The engine's result for the launch patient."""
    unavailable = [Unavailable(g.resource_type, g.reason, g.message) for g in snapshot.gaps]
    try:
        result = evaluate_patient(
            snapshot.resources,
            as_of=as_of or date.today(),
            attachments=snapshot.attachments,
            unavailable=unavailable,
            patient=f"Patient/{snapshot.patient_id}",
        )
    except PatientNotInInput:
        return PatientResult(
            patient=f"Patient/{snapshot.patient_id}",
            data_issues=[
                DataIssue(
                    resource="Patient",
                    reason=(
                        "The patient's own record (Patient resource) could not be read, so no "
                        "findings were computed."
                    ),
                )
            ],
        )
    return result


def record_summary(session: LaunchSession, snapshot: ChartSnapshot) -> dict[str, Any]:
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
            {"resource_type": g.resource_type, "reason": g.reason, "message": g.message}
            for g in snapshot.gaps
        ],
    }
