"""Asking the engine for a patient the input does not hold is its own error, distinct from a
ValueError raised while reading data (which must never be shown as "patient not found")."""

from __future__ import annotations

from datetime import date

import pytest

from smartapp.engine import PatientNotInInput, evaluate_patient

AS_OF = date(2026, 12, 5)
PATIENT = {"resourceType": "Patient", "id": "a", "birthDate": "1960-01-01"}


def test_the_requested_patient_is_evaluated() -> None:
    result = evaluate_patient([PATIENT], as_of=AS_OF, patient="Patient/a")
    assert result.patient == "Patient/a"


def test_a_patient_missing_from_the_input_raises_its_own_error() -> None:
    with pytest.raises(PatientNotInInput):
        evaluate_patient([PATIENT], as_of=AS_OF, patient="Patient/b")


def test_patient_not_in_input_is_not_a_value_error() -> None:
    # Callers catch PatientNotInInput only; a ValueError from parsing must reach the error handler.
    assert not issubclass(PatientNotInInput, ValueError)
