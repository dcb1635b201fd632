"""An editor form saved on an older version of a packet, merged into the version saved since.

The editor posts every field, so a save that started from version 3 after someone else saved
version 4 carries version 3's values in the fields its user left alone. Comparing the three
versions field by field keeps both people's work: what only this user changed is taken, what only
the other person changed stays, and typed text both changed differently keeps this user's text
with the other's beside it (a `Clash`), to be merged by hand before saving again. Entries the user
added, or edited while someone else removed them, come back as "add" fields; entries the user
removed come back with their "remove" box ticked. So the form shown after a conflict, saved on the
newest version, saves everything the user did. Pure: packets in, the form's contents out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from smartapp.packet import checklist_order
from smartapp.packet.directory import Directory
from smartapp.packet.edits import apply_form
from smartapp.packet.matching import CENTER, PREFERENCES
from smartapp.packet.model import ITEM_STATUS_LABELS, ChecklistItem, Question, Reason, ReferralPacket

Kind = Literal["reasons", "questions", "checklist"]
SENDER_LABELS = {
    "name": "name",
    "organization": "organization",
    "npi": "NPI",
    "phone": "phone",
    "fax": "fax",
    "contact": "other contact",
}


@dataclass(frozen=True)
class Field:
    """One field of the editor form: its label there, its value as the form posts it, and the
    packet's top-level field that holds it (the edit history says who changed that)."""

    label: str
    value: str
    part: str
    text: bool = True  # typed text; otherwise a choice, shown in words by `shown`
    shown: str = ""


@dataclass(frozen=True)
class Clash:
    """Typed text both people changed, differently: `mine` is in the form, `theirs` is saved."""

    name: str  # the form field
    label: str
    mine: str
    theirs: str
    part: str


@dataclass(frozen=True)
class Change:
    """Something else the other save changed, in words."""

    name: str  # the form field it is in now; "" when it is gone
    label: str
    text: str
    part: str


@dataclass
class Merge:
    packet: ReferralPacket
    clashes: list[Clash] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    removals: set[str] = field(default_factory=set)  # the "remove" boxes to show ticked
    new_reasons: list[str] = field(default_factory=list)
    new_questions: list[str] = field(default_factory=list)
    new_items: list[tuple[str, str]] = field(default_factory=list)  # (label, details)


def merge(
    base: ReferralPacket | None, current: ReferralPacket, mine: ReferralPacket, directory: Directory
) -> Merge:
    """`mine` is the form applied to `base`, the version the user started from. Without a base
    (it could not be rebuilt), `mine` is the form applied to `current` and every field where the
    two differ counts as changed by both."""
    known = base is not None
    start = base if base is not None else current
    result = Merge(current.model_copy(deep=True))
    for kind in ("reasons", "questions", "checklist"):
        _merge_entries(result, kind, start, current, mine)

    before, ours, theirs = (form_fields(p, directory) for p in (start, mine, result.packet))
    edits: list[tuple[str, str]] = []
    for name, m in ours.items():
        b, c = before.get(name), theirs.get(name)
        if b is None or c is None:
            continue  # in an entry added, or removed meanwhile: handled as entries
        mine_changed = not _same(m, b) if known else not _same(m, c)
        theirs_changed = not _same(c, b) if known else mine_changed
        if mine_changed:
            edits.append((name, m.value))
        if mine_changed and theirs_changed and not _same(m, c):
            if m.text:
                result.clashes.append(Clash(name, c.label, m.value, c.value, c.part))
            else:
                note = f"changed meanwhile to {c.shown}; your choice, {m.shown}, is in the form"
                result.changes.append(Change(name, c.label, note, c.part))
        elif theirs_changed and not mine_changed:
            note = "changed meanwhile; the saved text is in the form" if c.text else f"now {c.shown}"
            result.changes.append(Change(name, c.label, note, c.part))
    result.packet = apply_form(result.packet, edits, directory)
    result.packet.status = "draft"
    return result


def form_fields(packet: ReferralPacket, directory: Directory) -> dict[str, Field]:
    """The editor's fields in page order, named as the form names them."""
    found: dict[str, Field] = {}
    for n, reason in enumerate(packet.reasons, 1):
        found[f"reason-{reason.id}-summary"] = Field(f"Reason {n}", reason.summary, "reasons")
    for n, question in enumerate(packet.questions, 1):
        found[f"question-{question.id}"] = Field(f"Question {n}", question.text, "questions")
    found["cover_letter"] = Field("Cover letter", packet.cover_letter, "cover_letter")
    found["timing_advice"] = Field("Timing advice", packet.timing_advice, "timing_advice")
    d = packet.destination
    where = f"{d.name} - {d.program}" if d and d.program else d.name if d else "not chosen"
    found["destination"] = Field("Receiving center", d.center_id if d else "", "destination", False, where)
    found["preference"] = Field(
        "Patient's preference", packet.preference, "preference", False, _preference(packet, directory)
    )
    found["summary_note"] = Field("Summary note", packet.summary_note, "summary_note")
    for n, item in enumerate(checklist_order.ordered(packet), 1):
        status = ITEM_STATUS_LABELS[item.status].lower()
        found[f"item-{item.id}-label"] = Field(f"Record {n}", item.label, "checklist")
        found[f"item-{item.id}-detail"] = Field(f"Record {n} details", item.detail, "checklist")
        found[f"item-{item.id}-status"] = Field(f"Record {n} status", item.status, "checklist", False, status)
        found[f"item-{item.id}-holder"] = Field(f"Record {n}: request from", item.holder, "checklist")
    found["insurance_note"] = Field("Insurance note", packet.insurance.note, "insurance")
    for name, words in SENDER_LABELS.items():
        value = getattr(packet.sender, name)
        found[f"sender_{name}"] = Field(f"Referring clinician's {words}", value, "sender")
    return found


def _same(a: Field, b: Field) -> bool:
    # The form trims what it saves, and text saved before it stored LF may hold CRLF.
    return _plain(a.value) == _plain(b.value)


def _plain(text: str) -> str:
    return text.replace("\r\n", "\n").strip()


def _preference(packet: ReferralPacket, directory: Directory) -> str:
    if packet.preference.startswith(CENTER):
        center = packet.preference.removeprefix(CENTER)
        names = [o.center for o in directory.options if o.center_id == center]
        return f"{names[0]} (a named center)" if names else "a named center"
    return PREFERENCES.get(packet.preference, packet.preference).lower()


Entry = Reason | Question | ChecklistItem


def _merge_entries(
    result: Merge, kind: Kind, base: ReferralPacket, current: ReferralPacket, mine: ReferralPacket
) -> None:
    """Reasons, questions or records added or removed by either side."""
    before: dict[str, Entry] = {e.id: e for e in getattr(base, kind)}
    now: dict[str, Entry] = {e.id: e for e in getattr(current, kind)}
    ours: dict[str, Entry] = {e.id: e for e in getattr(mine, kind)}
    prefix = {"reasons": "reason", "questions": "question", "checklist": "item"}[kind]
    for key, entry in ours.items():
        if key not in before:
            _add_back(result, entry)
        elif key not in now:
            if _text(entry) != _text(before[key]):
                _add_back(result, entry)
                note = "removed meanwhile; your edit of it is kept as a new entry, not saved yet"
            else:
                note = "removed meanwhile"
            result.changes.append(Change("", _describe(before[key]), note, kind))
    for key, entry in before.items():
        if key in ours or key not in now:
            continue
        if _text(now[key]) == _text(entry):
            result.removals.add(f"{prefix}:{key}")  # removed by this user: ticked, removed on Save
        else:
            note = "changed meanwhile, so it is not removed: tick remove again if it should go"
            result.changes.append(Change(_first_field(now[key]), _describe(now[key]), note, kind))
    for key, entry in now.items():
        if key not in before:
            result.changes.append(Change(_first_field(entry), _describe(entry), "added meanwhile", kind))


def _add_back(result: Merge, entry: Entry) -> None:
    if isinstance(entry, Reason):
        result.new_reasons.append(entry.summary)
    elif isinstance(entry, Question):
        result.new_questions.append(entry.text)
    else:
        result.new_items.append((entry.label, entry.detail))


def _text(entry: Entry) -> tuple[str, ...]:
    """What the form edits in an entry."""
    if isinstance(entry, Reason):
        return (_plain(entry.summary),)
    if isinstance(entry, Question):
        return (_plain(entry.text),)
    return (_plain(entry.label), _plain(entry.detail), _plain(entry.holder), entry.status)


def _first_field(entry: Entry) -> str:
    if isinstance(entry, Reason):
        return f"reason-{entry.id}-summary"
    if isinstance(entry, Question):
        return f"question-{entry.id}"
    return f"item-{entry.id}-label"


def _describe(entry: Entry) -> str:
    if isinstance(entry, Reason):
        return f'Reason "{_short(entry.summary)}"'
    if isinstance(entry, Question):
        return f'Question "{_short(entry.text)}"'
    return f'Record "{_short(entry.label)}"'


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
