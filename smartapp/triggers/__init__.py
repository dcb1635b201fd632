"""The trigger registry: one `TriggerSpec` per second-opinion trigger, in display order.

Each trigger is one module with `evaluate(record, evaluation) -> Finding | None` and its `SPEC`. Every
consumer (page, API, CDS cards, packet, CLI, docs check) derives from `SPECS`.
"""

from __future__ import annotations

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
from smartapp.triggers.common import Evaluation
from smartapp.triggers.spec import TriggerSpec

SPECS: tuple[TriggerSpec, ...] = (
    rare_cancer.SPEC,
    uncertain_pathology.SPEC,
    discordant_findings.SPEC,
    incomplete_biomarker.SPEC,
    major_treatment.SPEC,
    not_responding.SPEC,
    surveillance_check.SPEC,
    stopping_treatment.SPEC,
    guideline_deviation.SPEC,
    patient_request.SPEC,
)
BY_ID: dict[str, TriggerSpec] = {spec.id: spec for spec in SPECS}
TRIGGER_IDS: list[str] = [spec.id for spec in SPECS]


def spec_for(trigger: str) -> TriggerSpec | None:
    return BY_ID.get(trigger)


__all__ = ["BY_ID", "SPECS", "TRIGGER_IDS", "Evaluation", "TriggerSpec", "spec_for"]
