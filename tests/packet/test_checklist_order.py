"""The records checklist ranked by what the reasons need first, grouped, and changed a group at a time."""

from __future__ import annotations

from smartapp.packet.checklist_order import category_order, groups, set_group_status
from smartapp.packet.model import ChecklistItem, Insurance, PatientInfo, Reason, ReferralPacket


def packet(*triggers: str) -> ReferralPacket:
    items = [
        ChecklistItem(id="ins", category="insurance", label="Insurance coverage", status="attached"),
        ChecklistItem(id="ct1", category="imaging", label="CT 03/16", status="attached"),
        ChecklistItem(id="s1", category="slides", label="Slides S26-1", status="to-request", holder="Lab A"),
        ChecklistItem(id="s2", category="slides", label="Slides S26-2", status="to-gather"),
        ChecklistItem(id="p1", category="pathology-report", label="Pathology report", status="attached"),
        ChecklistItem(id="ct2", category="imaging", label="CT 11/18", status="to-gather"),
    ]
    return ReferralPacket(
        created="2026-12-05T09:00:00+00:00",
        patient=PatientInfo(reference="Patient/p1"),
        insurance=Insurance(available=True),
        reasons=[Reason(trigger=t, summary=t) for t in triggers],
        checklist=items,
    )


def test_a_pathology_question_puts_the_slides_first_and_a_response_question_the_images() -> None:
    assert category_order(["uncertain-pathology"])[:2] == ["slides", "pathology-report"]
    assert category_order(["not-responding"])[:3] == ["imaging", "labs", "treatment"]
    # Two reasons: each category takes the better of its two ranks; ties keep the usual order.
    assert category_order(["uncertain-pathology", "not-responding"])[:2] == ["slides", "imaging"]


def test_no_reason_or_an_unlisted_one_uses_the_default_order() -> None:
    assert category_order([]) == category_order(["patient-request"]) == category_order(["coordinator"])
    assert category_order([])[0] == "pathology-report"


def test_groups_keep_the_record_order_inside_a_category() -> None:
    found = groups(packet("not-responding"))
    assert [c for c, _, _ in found] == ["imaging", "pathology-report", "slides", "insurance"]
    assert [i.id for i in found[0][2]] == ["ct1", "ct2"]
    assert found[0][1] == "Imaging studies and reports"


def test_a_group_changes_at_once_but_never_to_request_without_a_holder() -> None:
    chart = packet("uncertain-pathology")
    assert set_group_status(chart, "imaging", "not-applicable") == 2
    assert {i.id: i.status for i in chart.checklist if i.category == "imaging"} == {
        "ct1": "not-applicable",
        "ct2": "not-applicable",
    }
    assert set_group_status(chart, "slides", "to-request") == 0  # s1 already is; s2 has no holder
    assert [i.status for i in chart.checklist if i.category == "slides"] == ["to-request", "to-gather"]
    assert set_group_status(chart, "slides", "lost") == 0
    assert set_group_status(chart, "slides", "attached") == 2
