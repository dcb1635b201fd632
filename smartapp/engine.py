"""The clinical engine: FHIR resources in, second-opinion findings out. Web app, CDS Hooks and CLI
call this."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhirmaps.read import read_records
from fhirmaps.record import PatientRecord
from smartapp.findings import EXPEDITE, DataIssue, PatientResult, issues
from smartapp.triggers import SPECS, Evaluation
from smartapp.triggers.major_treatment import scheduled_soon
from smartapp.triggers.time_critical import assess_time_critical
from smartapp.wording import us_date

RARE_DEFINITIONS = ("rarecare", "nci")


class PatientNotInInput(LookupError):
    """The input holds no resources of the requested patient (no Patient resource, nothing about it)."""


@dataclass(frozen=True)
class EngineOptions:
    rare_definition: str = "rarecare"  # "nci": the broader NCI <15/100,000 definition

    def __post_init__(self) -> None:
        if self.rare_definition not in RARE_DEFINITIONS:
            raise ValueError(f"rare_definition must be one of {RARE_DEFINITIONS}")


@dataclass(frozen=True)
class Unavailable:
    """Data the caller could not read (scope not granted, fetch failed, attachment not fetched)."""

    resource_type: str
    reason: str
    message: str


_IMPACT = {
    "DiagnosticReport": (
        "uncertain-pathology, discordant-findings and rare-cancer from pathology text cannot be assessed"
    ),
    "DocumentReference": (
        "narrative reports and notes cannot be assessed "
        "(uncertain-pathology, discordant-findings, patient-request from notes)"
    ),
    "Binary": (
        "report text cannot be assessed "
        "(uncertain-pathology, discordant-findings, not-responding from imaging text)"
    ),
    "Condition": "diagnoses on the problem list cannot be assessed (rare-cancer, time-critical conditions)",
    "Observation": (
        "biomarkers, tumor markers, stage and disease status cannot be assessed "
        "(incomplete-biomarker, not-responding, surveillance-check, guideline-deviation)"
    ),
    "MedicationRequest": (
        "treatments cannot be assessed "
        "(major-treatment, not-responding, stopping-treatment, guideline-deviation)"
    ),
    "MedicationAdministration": (
        "treatments given cannot be assessed (not-responding, stopping-treatment, guideline-deviation)"
    ),
    "Procedure": "procedures cannot be assessed (major-treatment, not-responding)",
    "ServiceRequest": (
        "planned treatments and referral requests cannot be assessed (major-treatment, patient-request)"
    ),
    "CarePlan": "care plans cannot be assessed (major-treatment, surveillance-check, stopping-treatment)",
}


def unavailable_issue(item: Unavailable) -> DataIssue:
    impact = _IMPACT.get(item.resource_type, "findings that depend on them cannot be assessed")
    return DataIssue(
        resource=item.resource_type,
        reason=(
            f"{item.resource_type} resources could not be read ({item.reason}): "
            f"{item.message.rstrip('.')}. "
            f"Consequence: {impact}; an absent finding does not mean there is no concern."
        ),
    )


def deceased_note(record: PatientRecord, as_of: date) -> str:
    """Why a deceased patient has no findings, or "" when the patient is not recorded as deceased by as_of."""
    if record.deceased is True:
        return "The patient is recorded as deceased; no second-opinion reasons were evaluated."
    if record.deceased_on is not None and record.deceased_on <= as_of:
        return (
            f"The patient is recorded as deceased on {us_date(record.deceased_on)}; "
            "no second-opinion reasons were evaluated."
        )
    return ""


def evaluate_record(
    record: PatientRecord, *, as_of: date, options: EngineOptions = EngineOptions()
) -> PatientResult:
    evaluation = Evaluation(as_of=as_of, rare_definition=options.rare_definition)
    result = PatientResult(patient=record.patient, data_issues=issues(record.data_issues))
    deceased = deceased_note(record, as_of)
    if deceased:
        result.notes.append(deceased)
        return result
    result.time_critical = assess_time_critical(record, evaluation)
    for spec in SPECS:
        finding = spec.evaluate(record, evaluation)
        if finding is not None:
            result.findings.append(finding)
        elif spec.undecided is not None and (missing := spec.undecided(record, evaluation)):
            result.notes.append(missing)
    if result.time_critical is not None or scheduled_soon(record, evaluation):
        for finding in result.findings:
            finding.urgency = EXPEDITE
    result.findings.sort(key=lambda f: f.trigger)
    return result


def evaluate_resources(
    resources: Sequence[dict[str, Any]],
    *,
    as_of: date,
    attachments: Mapping[str, tuple[bytes, str]] | None = None,
    unavailable: Sequence[Unavailable] = (),
    options: EngineOptions = EngineOptions(),
) -> list[PatientResult]:
    """Evaluate every patient in the input (Bundles, resources, NDJSON lines), sorted by patient reference."""
    records = read_records(resources, as_of=as_of, attachments=attachments)
    extra = [unavailable_issue(u) for u in unavailable]
    results = []
    for record in records:
        result = evaluate_record(record, as_of=as_of, options=options)
        result.data_issues.extend(extra)
        results.append(result)
    return results


def evaluate_patient(
    resources: Sequence[dict[str, Any]],
    *,
    as_of: date,
    attachments: Mapping[str, tuple[bytes, str]] | None = None,
    unavailable: Sequence[Unavailable] = (),
    options: EngineOptions = EngineOptions(),
    patient: str | None = None,
) -> PatientResult:
    """Evaluate one patient (the given reference, or the only/first patient in the input)."""
    results = evaluate_resources(
        resources, as_of=as_of, attachments=attachments, unavailable=unavailable, options=options
    )
    if patient is not None:
        results = [r for r in results if r.patient == patient]
    if not results:
        raise PatientNotInInput("no patient found in the input")
    return results[0]


def to_document(results: Sequence[PatientResult]) -> dict[str, Any]:
    return {"patients": [r.to_json() for r in results]}
