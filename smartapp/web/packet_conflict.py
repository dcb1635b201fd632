"""The packet editor after a version conflict: the merge (smartapp/packet/merge.py) in words for
the page, each difference with who saved it meanwhile and when. People are named as the page can
name them (you, the packet's referring clinician, or another user), never by their record id."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from smartapp.packet import checklist_order
from smartapp.packet.merge import Change, Clash, Merge
from smartapp.packet.model import ReferralPacket
from smartapp.packet.store import Edit
from smartapp.wording import join, us_time

# Where the page's link for a form field goes: the field itself, except the receiving center's
# radio group (its picker) and the preference (its select has its own id).
ANCHORS = {"destination": "destination-picker", "preference": "packet-preference"}


@dataclass(frozen=True)
class Saved:
    by: str
    at: str


@dataclass(frozen=True)
class ClashView:
    clash: Clash
    saved: Saved

    @property
    def anchor(self) -> str:
        return f"clash-{self.clash.name}"


@dataclass(frozen=True)
class Line:
    """One line of the conflict message: a label (linked when `anchor`), what happened, by whom."""

    label: str
    text: str
    anchor: str = ""
    saved: Saved | None = None


@dataclass
class ConflictView:
    saved_by: str  # who saved meanwhile, in words
    saved_at: str  # the last of those saves
    clashes: dict[str, ClashView]  # by form field, in page order
    changes: list[Line]
    yours: list[Line]  # this user's additions and removals, in the form and not saved yet
    removals: set[str]
    new_reasons: list[str] = field(default_factory=list)
    new_questions: list[str] = field(default_factory=list)
    new_items: list[tuple[str, str]] = field(default_factory=list)

    @property
    def opens_picker(self) -> bool:
        return any(name in self.clashes for name in ANCHORS) or any(
            line.anchor in ANCHORS.values() for line in self.changes
        )


def conflict_view(
    merged: Merge, since: list[Edit], me: str | None, packet: ReferralPacket, updated_at: datetime
) -> ConflictView:
    """`since`: the edits saved after the version the user started from; `me`: this user's
    reference (None when the launch did not say who they are)."""

    def saved(part: str) -> Saved:
        edit = next((e for e in reversed(since) if part in e.changes), since[-1] if since else None)
        if edit is None:
            return Saved("another user", us_time(updated_at))
        return Saved(person(edit.who, me, packet), us_time(edit.at))

    def change_line(change: Change) -> Line:
        anchor = ANCHORS.get(change.name, f"f-{change.name}") if change.name else ""
        return Line(change.label, change.text, anchor, saved(change.part))

    yours = [
        Line("New reason", "not saved yet", f"new-reason-{n}") for n in range(1, len(merged.new_reasons) + 1)
    ]
    yours += [
        Line("New question", "not saved yet", f"new-question-{n}")
        for n in range(1, len(merged.new_questions) + 1)
    ]
    yours += [
        Line("New record", "not saved yet", f"new-item-{n}") for n in range(1, len(merged.new_items) + 1)
    ]
    yours += [
        Line(label, "its remove box is ticked: Save removes it", anchor)
        for label, anchor in removal_lines(merged.packet, merged.removals)
    ]
    people = [person(e.who, me, packet) for e in since] or ["another user"]
    return ConflictView(
        saved_by=join(people),
        saved_at=us_time(since[-1].at if since else updated_at),
        clashes={c.name: ClashView(c, saved(c.part)) for c in merged.clashes},
        changes=[change_line(c) for c in merged.changes],
        yours=yours,
        removals=merged.removals,
        new_reasons=merged.new_reasons,
        new_questions=merged.new_questions,
        new_items=merged.new_items,
    )


def person(who: str, me: str | None, packet: ReferralPacket) -> str:
    if me and who == me:
        return "you in another window"
    if packet.sender.reference and who == packet.sender.reference and packet.sender.name:
        return packet.sender.name
    return "another user"


def removal_lines(packet: ReferralPacket, removals: set[str]) -> list[tuple[str, str]]:
    """(what is removed, in words; the id of its remove box) in page order."""
    found = [(f"Reason {n}", f"reason:{r.id}") for n, r in enumerate(packet.reasons, 1)]
    found += [(f"Question {n}", f"question:{q.id}") for n, q in enumerate(packet.questions, 1)]
    found += [(f"Record {n}", f"item:{i.id}") for n, i in enumerate(checklist_order.ordered(packet), 1)]
    return [(label, "remove-" + value.replace(":", "-", 1)) for label, value in found if value in removals]
