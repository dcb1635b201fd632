"""Response models of the JSON API: the engine's typed findings plus the clinicians' decisions,
so the OpenAPI document describes every field."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from smartapp.finding_decisions import FindingDecision
from smartapp.findings import Finding, PatientResult


class ClinicianDecision(BaseModel):
    id: int
    kind: str = Field(description="dismiss | add")
    trigger: str
    reason: str | None
    note: str | None
    who: str | None
    created_at: datetime

    @classmethod
    def of(cls, action: FindingDecision) -> ClinicianDecision:
        return cls(
            id=action.id,
            kind=action.kind,
            trigger=action.trigger,
            reason=action.reason,
            note=action.note,
            who=action.who,
            created_at=action.created_at,
        )


class FindingWithDecision(Finding):
    dismissed: ClinicianDecision | None = Field(
        default=None, description="the live dismissal of this finding, if any"
    )


class PatientFindings(PatientResult):
    findings: list[FindingWithDecision] = Field(default_factory=list)  # type: ignore[assignment]
    clinician_findings: list[ClinicianDecision] = Field(default_factory=list)


class Gap(BaseModel):
    resource_type: str
    reason: str
    message: str


class Counts(BaseModel):
    Condition: int
    DiagnosticReport: int
    DiagnosticReportByCategory: dict[str, int]
    report_texts_read: int


class RecordSummary(BaseModel):
    patient: str
    need_patient_banner: bool
    granted_scope: str
    counts: Counts
    gaps: list[Gap]


class FindingsResponse(BaseModel):
    patients: list[PatientFindings]
    summary: RecordSummary
    csrf_token: str = Field(description="Send as the X-CSRF-Token header on this launch's JSON writes")


def with_decisions(result: PatientResult, actions: list[FindingDecision]) -> PatientFindings:
    dismissed = {a.trigger: ClinicianDecision.of(a) for a in actions if a.kind == "dismiss"}
    return PatientFindings(
        patient=result.patient,
        time_critical=result.time_critical,
        findings=[
            FindingWithDecision(
                **{name: getattr(f, name) for name in Finding.model_fields},
                dismissed=dismissed.get(f.trigger),
            )
            for f in result.findings
        ],
        data_issues=result.data_issues,
        notes=result.notes,
        clinician_findings=[ClinicianDecision.of(a) for a in actions if a.kind == "add"],
    )
