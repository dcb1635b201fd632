"""Second-opinion trigger rules: one module per trigger, each `evaluate(record, ctx) -> Finding | None`."""

from __future__ import annotations

from collections.abc import Callable

from fhirmaps.record import PatientRecord
from smartapp.findings import Finding
from smartapp.triggers import (
    discordant_findings,
    guideline_deviation,
    incomplete_biomarker,
    major_treatment,
    not_responding,
    patient_request,
    rare_cancer,
    stopping_treatment,
    surveillance_check,
    uncertain_pathology,
)
from smartapp.triggers.common import Context

Trigger = Callable[[PatientRecord, Context], Finding | None]

TRIGGERS: list[Trigger] = [
    rare_cancer.evaluate,
    uncertain_pathology.evaluate,
    discordant_findings.evaluate,
    incomplete_biomarker.evaluate,
    major_treatment.evaluate,
    not_responding.evaluate,
    surveillance_check.evaluate,
    stopping_treatment.evaluate,
    guideline_deviation.evaluate,
    patient_request.evaluate,
]
TRIGGER_IDS = [
    "rare-cancer", "uncertain-pathology", "discordant-findings", "incomplete-biomarker", "major-treatment",
    "not-responding", "surveillance-check", "stopping-treatment", "guideline-deviation", "patient-request",
]

__all__ = ["Context", "TRIGGERS", "TRIGGER_IDS", "Trigger"]
