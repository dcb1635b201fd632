from tests.fhirmaps.builders import condition, procedure, service_request
from tests.triggers.engine_helpers import fired, run

SARCOMA = condition(
    "c1",
    "C49.22",
    "Malignant neoplasm of connective and soft tissue of left lower limb",
    text="Leiomyosarcoma of left thigh",
)


def test_planned_amputation_fires_and_is_expedited_when_within_14_days() -> None:
    result = run(SARCOMA, service_request("s1", "Above-knee amputation, left", when="2026-03-10"))
    finding = next(f for f in result.findings if f.trigger == "major-treatment")
    assert finding.urgency == "expedite"
    assert all(f.urgency == "expedite" for f in result.findings)


def test_planned_far_ahead_is_routine() -> None:
    result = run(SARCOMA, service_request("s1", "Hemipelvectomy", when="2026-05-10"))
    finding = next(f for f in result.findings if f.trigger == "major-treatment")
    assert finding.urgency == "routine"


def test_completed_procedures_and_minor_procedures_do_not_fire() -> None:
    assert "major-treatment" not in fired(
        SARCOMA, procedure("pr1", "Above-knee amputation", status="completed")
    )
    breast = condition("c2", "C50.911", "Malignant neoplasm of right female breast")
    for text in (
        "Lumpectomy with sentinel lymph node biopsy",
        "Port placement",
        "Core needle biopsy, right breast",
    ):
        assert "major-treatment" not in fired(breast, service_request("s1", text)), text


def test_declined_or_revoked_orders_do_not_fire() -> None:
    assert "major-treatment" not in fired(SARCOMA, service_request("s1", "Hemipelvectomy", status="revoked"))
    declined = service_request("s2", "Hemipelvectomy", note_text="Discussed; patient declined surgery.")
    assert "major-treatment" not in fired(SARCOMA, declined)


def test_procedure_in_preparation_fires() -> None:
    rectal = condition("c3", "C20", "Malignant neoplasm of rectum")
    assert "major-treatment" in fired(
        rectal,
        procedure(
            "pr1", "Abdominoperineal resection with end colostomy", status="preparation", date="2026-03-20"
        ),
    )


def test_hysterectomy_with_bso_counts_only_in_young_patients() -> None:
    endometrial = condition("c4", "C54.1", "Malignant neoplasm of endometrium")
    order = service_request("s1", "Total hysterectomy with bilateral salpingo-oophorectomy")
    assert "major-treatment" in fired(endometrial, order, birth="1990-01-01")
    assert "major-treatment" not in fired(endometrial, order, birth="1955-01-01")


def test_clinic_note_scheduling_a_whipple_fires_but_an_options_discussion_does_not() -> None:
    from tests.fhirmaps.builders import note

    pancreas = condition("c5", "C25.0", "Malignant neoplasm of head of pancreas")
    scheduled = note(
        "n1",
        "Assessment: resectable pancreatic head adenocarcinoma. "
        "Plan: proceed with Whipple procedure on 03/12/2026.",
        date="2026-02-20",
    )
    assert "major-treatment" in fired(pancreas, scheduled)
    options = note(
        "n2",
        "We discussed options including a Whipple procedure versus chemotherapy first.",
        date="2026-02-20",
    )
    past = note("n3", "Status post Whipple procedure in 2024, planned surveillance.", date="2026-02-20")
    assert "major-treatment" not in fired(pancreas, options, past)


def test_careplan_activity_counts_unless_the_plan_was_revoked() -> None:
    def plan(status: str) -> dict:
        return {
            "resourceType": "CarePlan",
            "id": "cp1",
            "status": status,
            "intent": "plan",
            "subject": {"reference": "Patient/p1"},
            "activity": [
                {
                    "detail": {
                        "status": "scheduled",
                        "code": {"text": "Radical cystectomy with ileal conduit"},
                        "scheduledString": "2026-04-02",
                    }
                }
            ],
        }

    bladder = condition("c6", "C67.2", "Malignant neoplasm of lateral wall of bladder")
    assert "major-treatment" in fired(bladder, plan("active"))
    assert "major-treatment" not in fired(bladder, plan("revoked"))
