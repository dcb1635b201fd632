from tests.fhirmaps.builders import condition, medication, note, service_request
from tests.triggers.engine_helpers import fired

PANCREAS = condition("c1", "C25.0", "Malignant neoplasm of head of pancreas")


def test_stopped_for_toxicity_without_next_line_fires() -> None:
    stopped = medication(
        "m1",
        "FOLFIRINOX",
        status="stopped",
        date="2025-11-01",
        reason=("407563006", "Treatment not tolerated"),
    )
    assert "stopping-treatment" in fired(PANCREAS, stopped)


def test_patient_refusal_fires() -> None:
    refused = medication(
        "m1",
        "adjuvant doxorubicin and cyclophosphamide",
        status="cancelled",
        date="2026-01-10",
        reason=("105480006", "Refusal of treatment by patient"),
    )
    assert "stopping-treatment" in fired(PANCREAS, refused)


def test_hospice_referral_fires() -> None:
    hospice = service_request("s1", "Hospice referral", code=("385763009", "Hospice care"))
    assert "stopping-treatment" in fired(PANCREAS, hospice)


def test_planned_completion_and_dose_hold_do_not_fire() -> None:
    completed = medication("m1", "adjuvant FOLFOX", status="completed", date="2025-06-01")
    done_note = note(
        "n1", "Completed 6 cycles of adjuvant chemotherapy as planned. Surveillance CT in 3 months."
    )
    held = medication(
        "m2",
        "gemcitabine",
        status="on-hold",
        date="2025-12-01",
        reason=("407563006", "Treatment not tolerated"),
    )
    assert "stopping-treatment" not in fired(PANCREAS, completed, done_note, held)


def test_stop_for_no_response_with_new_line_is_not_stopping() -> None:
    first = medication(
        "m1",
        "FOLFIRINOX",
        status="stopped",
        date="2025-06-01",
        reason=("266721009", "No response to treatment"),
    )
    second = medication("m2", "gemcitabine and nab-paclitaxel", status="active", date="2025-12-15")
    result = fired(PANCREAS, first, second)
    assert "not-responding" in result
    assert "stopping-treatment" not in result


def test_stop_for_no_response_and_hospice_gives_both() -> None:
    first = medication(
        "m1",
        "FOLFIRINOX",
        status="stopped",
        date="2025-12-01",
        reason=("266721009", "No response to treatment"),
    )
    hospice = note(
        "n1",
        "Goals of care discussed. Patient and family choose transition to hospice; no further chemotherapy.",
    )
    result = fired(PANCREAS, first, hospice)
    assert {"not-responding", "stopping-treatment"} <= result


def test_supportive_medication_for_chemotherapy_is_not_anticancer_treatment() -> None:
    antiemetic = medication(
        "m1",
        "ondansetron 8 mg for chemotherapy-induced nausea",
        status="stopped",
        date="2025-11-01",
        reason=("407563006", "Treatment not tolerated"),
    )
    assert "stopping-treatment" not in fired(PANCREAS, antiemetic)
