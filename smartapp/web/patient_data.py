"""Reading and evaluating the launch patient's record: shared by pages, the JSON API and the
referral packet, so every route sees the same data the same way."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from launch.fhir_client import FhirClient
from launch.registry import Registration
from launch.scopes import GrantedScopes
from launch.sessions import LaunchSession
from launch.tokens import SessionTokenSource
from smartapp.engine import PatientNotInInput, Unavailable, evaluate_patient
from smartapp.findings import DataIssue, PatientResult
from smartapp.record_loader import PatientRecordSnapshot, load_patient_record
from smartapp.web.errors import AppError

if TYPE_CHECKING:
    from smartapp.web.services import AppServices


def fhir_client(services: AppServices, session: LaunchSession) -> FhirClient:
    return FhirClient(
        session.iss,
        services.http,
        SessionTokenSource(services.tokens, session.id),
        max_concurrency=ehr_concurrency(
            services.registry.get(session.iss), services.settings.fhir_max_concurrency
        ),
    )


def ehr_concurrency(registration: Registration | None, app_default: int) -> int:
    """Requests in flight to one EHR: the registry entry's `max_concurrency`, else the app's setting."""
    return registration.concurrency(app_default) if registration else app_default


async def load_snapshot(services: AppServices, session: LaunchSession) -> PatientRecordSnapshot:
    if not session.patient:
        raise AppError(
            409,
            "no_patient_context",
            "No patient was selected",
            "The EHR did not send a patient with this launch, so SecondLook has nothing to read.",
            "Open SecondLook from a patient's chart, or choose a patient in the standalone launch.",
        )
    client = fhir_client(services, session)
    registration = services.registry.get(session.iss)
    return await load_patient_record(
        client,
        session.patient,
        GrantedScopes.parse(session.granted_scope),
        required_categories=registration.required_categories if registration else None,
        user=session.fhir_user,
    )


def evaluate_snapshot(snapshot: PatientRecordSnapshot, as_of: date | None = None) -> PatientResult:
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
                    reason="The patient's own record (Patient resource) could not be read, so no findings were computed.",
                )
            ],
        )
    return result


def record_summary(session: LaunchSession, snapshot: PatientRecordSnapshot) -> dict[str, Any]:
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
