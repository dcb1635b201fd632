"""A form saved on an older version of a packet, merged into what was saved since: both people's
work kept, typed text both changed shown side by side, everything else listed."""

from __future__ import annotations

from smartapp.packet.directory import load_directory
from smartapp.packet.edits import apply_form
from smartapp.packet.merge import Clash, Merge, merge
from smartapp.packet.model import ChecklistItem, Insurance, PatientInfo, Question, Reason, ReferralPacket

DIRECTORY = load_directory()


def base() -> ReferralPacket:
    return ReferralPacket(
        created="2026-12-05T09:00:00+00:00",
        patient=PatientInfo(reference="Patient/p1"),
        insurance=Insurance(available=True),
        cover_letter="Dear colleague,",
        reasons=[Reason(id="r1", summary="Report hedged between two entities")],
        questions=[Question(id="q1", text="Which entity is it?")],
        checklist=[
            ChecklistItem(id="s1", category="slides", label="Slides S26-1"),
            ChecklistItem(id="ct", category="imaging", label="CT 11/18", status="attached"),
        ],
    )


def saved_meanwhile(edit: dict[str, object]) -> ReferralPacket:
    return base().model_copy(update=edit, deep=True)


def merged(
    current: ReferralPacket, form: list[tuple[str, str]], start: ReferralPacket | None = None
) -> Merge:
    start = start or base()
    return merge(start, current, apply_form(start, form, DIRECTORY), DIRECTORY)


def test_what_only_one_side_changed_is_kept_from_that_side() -> None:
    theirs = saved_meanwhile({"cover_letter": "Their letter", "timing_advice": "Before 12/12"})
    # The form posts every field: the letter and timing as this user loaded them, a new summary note.
    form = [("cover_letter", "Dear colleague,"), ("timing_advice", ""), ("summary_note", "My summary")]
    result = merged(theirs, form)
    assert (result.packet.cover_letter, result.packet.timing_advice, result.packet.summary_note) == (
        "Their letter",
        "Before 12/12",
        "My summary",
    )
    assert result.clashes == []
    assert [(c.name, c.label, c.text) for c in result.changes] == [
        ("cover_letter", "Cover letter", "changed meanwhile; the saved text is in the form"),
        ("timing_advice", "Timing advice", "changed meanwhile; the saved text is in the form"),
    ]


def test_text_both_changed_keeps_mine_in_the_form_with_theirs_beside_it() -> None:
    theirs = saved_meanwhile({"cover_letter": "Their letter"})
    form = [("cover_letter", "My letter"), ("reason-r1-summary", "Report hedged between two entities")]
    result = merged(theirs, form)
    assert result.packet.cover_letter == "My letter"
    assert result.clashes == [
        Clash("cover_letter", "Cover letter", "My letter", "Their letter", "cover_letter")
    ]
    assert result.changes == []
    # The same text typed on both sides, or spaces only, is no clash.
    assert merged(theirs, [("cover_letter", " Their letter ")]).clashes == []


def test_record_text_clashes_and_choices_are_listed_in_words() -> None:
    theirs = base()
    theirs.checklist[0].holder = "Lab A"
    theirs.checklist[0].status = "to-request"
    theirs.checklist[1].status = "not-applicable"
    form = [("item-s1-holder", "Lab B"), ("item-s1-status", "attached"), ("item-ct-status", "attached")]
    result = merged(theirs, form)
    # The slides come first in the editor (no reason ranks them otherwise): record 1.
    assert result.clashes == [
        Clash("item-s1-holder", "Record 1: request from", "Lab B", "Lab A", "checklist")
    ]
    assert [(c.name, c.text) for c in result.changes] == [
        ("item-s1-status", "changed meanwhile to to request; your choice, attached, is in the form"),
        ("item-ct-status", "now not applicable"),
    ]
    statuses = {i.id: (i.status, i.holder) for i in result.packet.checklist}
    assert statuses == {"s1": ("attached", "Lab B"), "ct": ("not-applicable", "")}


def test_the_receiving_center_chosen_meanwhile_is_listed_with_its_name() -> None:
    option = DIRECTORY.options[0]
    theirs = saved_meanwhile({"destination": option.destination(), "preference": "remote"})
    result = merged(theirs, [("destination", ""), ("preference", "")])
    assert result.packet.destination == option.destination() and result.packet.preference == "remote"
    assert [(c.name, c.text) for c in result.changes] == [
        ("destination", f"now {option.center} - {option.program}"),
        ("preference", "now remote review"),
    ]


def test_entries_added_and_removed_on_either_side() -> None:
    theirs = base()
    theirs.questions.append(Question(id="q2", text="Further stains?"))
    theirs.reasons = []  # they removed the reason this user edits below
    theirs.checklist[1].detail = "Chest, abdomen and pelvis"  # and edited the record this user removes
    form = [
        ("reason-r1-summary", "Report hedged between leiomyosarcoma and GIST"),
        ("new_reason", "Patient asked for a second opinion"),
        ("remove", "question:q1"),
        ("remove", "item:ct"),
        ("new_item_label", "Operative note 11/02"),
        ("new_item_detail", "Gastrectomy"),
    ]
    result = merged(theirs, form)
    # Nothing typed is lost: the edited reason and the new entries come back as "add" fields.
    assert result.new_reasons == [
        "Report hedged between leiomyosarcoma and GIST",
        "Patient asked for a second opinion",
    ]
    assert result.new_items == [("Operative note 11/02", "Gastrectomy")]
    assert result.removals == {"question:q1"}  # removed by this user only: ticked
    assert [(c.name, c.label, c.text) for c in result.changes] == [
        (
            "",
            'Reason "Report hedged between two entities"',
            "removed meanwhile; your edit of it is kept as a new entry, not saved yet",
        ),
        ("question-q2", 'Question "Further stains?"', "added meanwhile"),
        (
            "item-ct-label",
            'Record "CT 11/18"',
            "changed meanwhile, so it is not removed: tick remove again if it should go",
        ),
    ]
    # The merged packet is the saved one plus this user's field edits: the form shown after the
    # conflict posts the removals and additions again.
    assert [q.id for q in result.packet.questions] == ["q1", "q2"]
    assert [i.id for i in result.packet.checklist] == ["s1", "ct"] and result.packet.reasons == []


def test_without_the_starting_version_every_difference_is_a_clash() -> None:
    theirs = saved_meanwhile({"cover_letter": "Their letter", "summary_note": "Their note"})
    form = [("cover_letter", "Dear colleague,"), ("summary_note", "Their note")]
    result = merge(None, theirs, apply_form(theirs, form, DIRECTORY), DIRECTORY)
    assert [(c.name, c.mine, c.theirs) for c in result.clashes] == [
        ("cover_letter", "Dear colleague,", "Their letter")
    ]
    assert result.packet.cover_letter == "Dear colleague," and result.packet.summary_note == "Their note"


def test_a_merge_is_a_draft_even_when_the_form_asked_for_final() -> None:
    theirs = saved_meanwhile({"summary_note": "Their note"})
    assert merged(theirs, [("action", "final")]).packet.status == "draft"


def test_a_text_left_alone_is_no_change_though_the_browser_sends_crlf() -> None:
    start = saved_meanwhile({"cover_letter": "Dear colleague,\nplease review."})
    theirs = start.model_copy(update={"cover_letter": "Dear Dr Lee,\nplease review."})
    result = merged(theirs, [("cover_letter", "Dear colleague,\r\nplease review.\r\n")], start=start)
    assert result.clashes == [] and result.packet.cover_letter == "Dear Dr Lee,\nplease review."
    typed = merged(theirs, [("cover_letter", "Dear colleague,\r\nplease review soon.")], start=start)
    assert [(c.mine, c.theirs) for c in typed.clashes] == [
        ("Dear colleague,\nplease review soon.", "Dear Dr Lee,\nplease review.")
    ]
