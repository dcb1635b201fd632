"""Apply the editor form to a packet: every free-text field, reasons/questions/checklist items
removed or added, the destination and the patient's preference, and "mark final". Pure: form pairs in,
new packet out."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import zip_longest

from smartapp.packet.directory import Directory
from smartapp.packet.matching import CENTER, PREFERENCES
from smartapp.packet.model import ITEM_STATUS_LABELS, ChecklistItem, Question, Reason, ReferralPacket

TEXT_FIELDS = ("cover_letter", "timing_advice", "summary_note")
SENDER_FIELDS = ("name", "organization", "contact", "npi", "phone", "fax")
MAX_TEXT = 20_000
# Fields that may come more than once: the editor gives back, after a version conflict, each entry
# the user added that is not saved yet as one more "add" field.
NEW_ENTRY_FIELDS = ("new_reason", "new_question", "new_item_label", "new_item_detail")


def apply_form(
    packet: ReferralPacket, form: Sequence[tuple[str, str]], directory: Directory
) -> ReferralPacket:
    values: dict[str, str] = {}
    removed: set[str] = set()
    added: dict[str, list[str]] = {name: [] for name in NEW_ENTRY_FIELDS}
    for key, raw in form:
        # Browsers send a textarea's line breaks as CRLF: stored as LF, as drafted, so a text left
        # alone compares equal to what was saved.
        value = raw.replace("\r\n", "\n")[:MAX_TEXT]
        if key == "remove":
            removed.add(value)
        elif key in added:
            added[key].append(value)
        else:
            values[key] = value
    updated = packet.model_copy(deep=True)
    for name in TEXT_FIELDS:
        if name in values:
            setattr(updated, name, values[name].strip())
    for name in SENDER_FIELDS:
        if f"sender_{name}" in values:
            setattr(updated.sender, name, values[f"sender_{name}"].strip())
    if "insurance_note" in values:
        updated.insurance.note = values["insurance_note"].strip()

    updated.reasons = [r for r in updated.reasons if f"reason:{r.id}" not in removed]
    for reason in updated.reasons:
        reason.summary = values.get(f"reason-{reason.id}-summary", reason.summary).strip() or reason.summary
    updated.reasons += [Reason(summary=text.strip()) for text in added["new_reason"] if text.strip()]

    updated.questions = [q for q in updated.questions if f"question:{q.id}" not in removed]
    for question in updated.questions:
        question.text = values.get(f"question-{question.id}", question.text).strip() or question.text
    updated.questions += [Question(text=text.strip()) for text in added["new_question"] if text.strip()]

    updated.checklist = [i for i in updated.checklist if f"item:{i.id}" not in removed]
    for item in updated.checklist:
        item.label = values.get(f"item-{item.id}-label", item.label).strip() or item.label
        item.detail = values.get(f"item-{item.id}-detail", item.detail).strip()
        item.holder = values.get(f"item-{item.id}-holder", item.holder).strip()
        status = values.get(f"item-{item.id}-status")
        if status in ITEM_STATUS_LABELS:
            item.status = status  # type: ignore[assignment]
    # Each label goes with the details field after it (the form's order).
    for label, detail in zip_longest(added["new_item_label"], added["new_item_detail"], fillvalue=""):
        if label.strip():
            updated.checklist.append(ChecklistItem(label=label.strip(), detail=detail.strip()))

    if "destination" in values:
        option = directory.get(values["destination"])
        updated.destination = option.destination() if option else None
    preference = values.get("preference")
    if preference is not None and (preference in PREFERENCES or _names_a_center(preference, directory)):
        updated.preference = preference
    if values.get("action") == "final":
        updated.status = "final"
    return updated


def _names_a_center(preference: str, directory: Directory) -> bool:
    center = preference.removeprefix(CENTER)
    return preference.startswith(CENTER) and any(o.center_id == center for o in directory.options)
