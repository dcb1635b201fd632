from tests.fhirmaps.builders import condition, note, report, service_request
from tests.triggers.engine_helpers import fired

CRC = condition("c1", "C18.7", "Malignant neoplasm of sigmoid colon")


def test_coded_confirmatory_consultation_fires() -> None:
    order = service_request(
        "s1", "Second opinion, medical oncology", code=("77406008", "Confirmatory medical consultation")
    )
    assert "patient-request" in fired(CRC, order)


def test_follow_up_consultation_code_does_not_fire() -> None:
    order = service_request("s1", "Oncology follow-up", code=("281036007", "Follow-up consultation"))
    assert "patient-request" not in fired(CRC, order)


def test_note_where_patient_asks_fires_and_declined_offer_does_not() -> None:
    assert "patient-request" in fired(
        CRC, note("n1", "The patient would like a second opinion at an NCI-designated center.")
    )
    assert "patient-request" not in fired(
        CRC, note("n2", "I offered a second opinion; the patient declined and wishes to proceed.")
    )


def test_internal_pathology_consultation_and_tumor_board_do_not_fire() -> None:
    text = (
        "FINAL DIAGNOSIS:\nColon: Adenocarcinoma.\n"
        "COMMENT: Intradepartmental consultation; a second pathologist reviewed and concurs.\n"
    )
    board = note("n1", "Case presented at tumor board; consensus for surgery.")
    assert "patient-request" not in fired(CRC, report("r1", text), board)


def test_offers_declines_permissions_and_boards_that_mention_asking_do_not_fire() -> None:
    for text in (
        "Patient was offered a second opinion at MD Anderson and would like time to think about it.",
        "Patient declined a second opinion; she wants to proceed with surgery here.",
        "Patient is welcome to seek a second opinion at any time.",
        "Patient would like to hear the tumor board's view before considering a second opinion.",
    ):
        assert "patient-request" not in fired(CRC, note("n1", text)), text
    assert "patient-request" in fired(CRC, note("n1", "Patient would like a second opinion at MD Anderson."))


def test_patient_message_fires() -> None:
    message = {
        "resourceType": "Communication",
        "id": "m1",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "sender": {"reference": "Patient/p1"},
        "sent": "2026-02-01",
        "payload": [{"contentString": "Can I get a second opinion before my surgery?"}],
    }
    assert "patient-request" in fired(CRC, message)


def test_second_opinion_requested_by_patient_passive_voice() -> None:
    assert "patient-request" in fired(
        CRC,
        note("n1", "Referral to an outside sarcoma center for a second opinion, requested by the patient."),
    )
