"""The conflict message's words: who saved meanwhile and when, never a record id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from smartapp.packet.merge import Change, Clash, Merge
from smartapp.packet.model import Insurance, PatientInfo, ReferralPacket, Sender
from smartapp.packet.store import Edit
from smartapp.web.packet_conflict import conflict_view
from smartapp.wording import us_time

AT = datetime(2026, 12, 5, 14, 5, tzinfo=UTC)


def packet() -> ReferralPacket:
    return ReferralPacket(
        created="2026-12-05T09:00:00+00:00",
        patient=PatientInfo(reference="Patient/p1"),
        insurance=Insurance(available=True),
        sender=Sender(name="Jordan Reyes, MD", reference="Practitioner/reyes"),
    )


def test_a_moment_is_in_us_words_and_utc() -> None:
    assert us_time(AT) == "2:05 PM UTC on 12/05/2026"
    assert us_time(datetime(2026, 12, 5, 0, 30, tzinfo=timezone(timedelta(hours=-5)))) == (
        "5:30 AM UTC on 12/05/2026"
    )
    assert us_time(datetime(2026, 12, 5, 12, 0, tzinfo=UTC)) == "12:00 PM UTC on 12/05/2026"


def test_each_difference_names_who_saved_it_as_the_page_can() -> None:
    merged = Merge(
        packet(),
        clashes=[Clash("cover_letter", "Cover letter", "mine", "theirs", "cover_letter")],
        changes=[
            Change("summary_note", "Summary note", "changed meanwhile", "summary_note"),
            Change("destination", "Receiving center", "now MSK", "destination"),
        ],
    )
    since = [
        Edit(2, "Practitioner/reyes", AT, {"cover_letter": {}, "destination": {}}),
        Edit(3, "Practitioner/someone-else", AT + timedelta(minutes=7), {"summary_note": {}}),
    ]
    view = conflict_view(merged, since, "Practitioner/me", packet(), AT)
    assert view.saved_by == "Jordan Reyes, MD and another user"
    assert view.saved_at == "2:12 PM UTC on 12/05/2026"
    clash = view.clashes["cover_letter"]
    assert (clash.saved.by, clash.saved.at, clash.anchor) == (
        "Jordan Reyes, MD",
        "2:05 PM UTC on 12/05/2026",
        "clash-cover_letter",
    )
    assert [(line.anchor, line.saved and line.saved.by) for line in view.changes] == [
        ("f-summary_note", "another user"),
        ("destination-picker", "Jordan Reyes, MD"),
    ]
    assert view.opens_picker
    mine = conflict_view(merged, since[:1], "Practitioner/reyes", packet(), AT)
    assert mine.saved_by == "you in another window"
    # A launch that did not say who the user is never claims the other save was theirs.
    assert conflict_view(merged, since[:1], None, packet(), AT).saved_by == "Jordan Reyes, MD"
