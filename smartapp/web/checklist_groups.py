"""A records-checklist group's "Mark all" buttons in the packet editor: applying the form's action
`bulk:<category>:<status>` and saying what it did once the page is back at that group."""

from __future__ import annotations

from smartapp.packet import checklist_order
from smartapp.packet.model import CATEGORY_LABELS, ITEM_STATUS_LABELS, ReferralPacket


def mark_group(packet: ReferralPacket, action: str) -> str:
    """A checklist group's "Mark all" (action `bulk:<category>:<status>`) on a draft; what it did as
    `<category>:<status>:<marked>:<left>` for the page, "" for another action."""
    if not action.startswith("bulk:") or packet.status != "draft":
        return ""
    category, _, status = action.removeprefix("bulk:").partition(":")
    marked = checklist_order.set_group_status(packet, category, status)
    left = sum(1 for i in packet.checklist if i.category == category and i.status != status)
    return f"{category}:{status}:{marked}:{left}"


def group_notice(bulk: str) -> dict[str, str] | None:
    """What a checklist group's "Mark all" did, in words, from the redirect's
    `bulk=<category>:<status>:<marked>:<left>` (left: records to request that name no holder)."""
    category, status, marked, left = (bulk.split(":") + ["", "", "", ""])[:4]
    if category not in CATEGORY_LABELS or status not in ITEM_STATUS_LABELS:
        return None
    if not (marked.isdigit() and left.isdigit()):
        return None
    words, done, left_over = ITEM_STATUS_LABELS[status].lower(), int(marked), int(left)
    if done:
        text = f"Saved: {records(done)} marked {words}."
    elif left_over:
        text = "Saved; no record changed."
    else:
        text = f"Saved; every record here was already {words}."
    if left_over:
        text += (
            f' {records(left_over)} without a "request from" stayed as before: say whom to request '
            "it from, then mark the group again."
        )
    return {"category": category, "text": text}


def records(count: int) -> str:
    return f"{count} record" if count == 1 else f"{count} records"
