"""Run the engine on hand-made resources for trigger tests."""

from __future__ import annotations

from datetime import date
from typing import Any

from smartapp.engine import EngineOptions, evaluate_patient
from smartapp.findings import PatientResult
from tests.fhirmaps.builders import patient

AS_OF = date(2026, 3, 1)


def run(
    *resources: dict[str, Any], as_of: date = AS_OF, birth: str = "1960-05-01", rare: str = "rarecare"
) -> PatientResult:
    return evaluate_patient(
        [patient(birth=birth), *resources], as_of=as_of, options=EngineOptions(rare_definition=rare)
    )


def fired(*resources: dict[str, Any], **kwargs: Any) -> set[str]:
    return set(run(*resources, **kwargs).triggers)
