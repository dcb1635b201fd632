"""The records checklist in the order a receiving center needs it for this packet's reasons, in
groups (one per category), and the bulk change of a group's status (data: data/checklist_order.toml)."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import cast, get_args

from smartapp.packet.model import CATEGORY_LABELS, ChecklistItem, ItemStatus, ReferralPacket

RULES = Path(__file__).parent / "data" / "checklist_order.toml"


@cache
def _orders() -> dict[str, tuple[str, ...]]:
    document = tomllib.loads(RULES.read_text(encoding="utf-8"))
    return {reason: tuple(categories) for reason, categories in document["order"].items()}


def category_order(triggers: Sequence[str]) -> list[str]:
    """Categories ranked for these reasons: the best rank any reason gives each category."""
    orders = _orders()
    chosen = [orders.get(t, orders["default"]) for t in triggers] or [orders["default"]]
    best = {c: min(order.index(c) if c in order else len(order) for order in chosen) for c in CATEGORY_LABELS}
    return sorted(CATEGORY_LABELS, key=lambda c: (best[c], list(CATEGORY_LABELS).index(c)))


def ordered(packet: ReferralPacket) -> list[ChecklistItem]:
    """The checklist ranked by relevance to the reasons; the record's order within a category."""
    rank = {c: i for i, c in enumerate(category_order([r.trigger for r in packet.reasons]))}
    return sorted(packet.checklist, key=lambda item: rank.get(item.category, len(rank)))


def groups(packet: ReferralPacket) -> list[tuple[str, str, list[ChecklistItem]]]:
    """(category, its label, its items) in relevance order, for the editor and the letter."""
    found: dict[str, list[ChecklistItem]] = {}
    for item in ordered(packet):
        found.setdefault(item.category, []).append(item)
    return [(c, CATEGORY_LABELS.get(c, c), items) for c, items in found.items()]


def set_group_status(packet: ReferralPacket, category: str, status: str) -> int:
    """Marks every item of a category `status` (to-request keeps each item's holder); returns how many
    changed (0 for a status that does not exist). An item to request without a holder stays as it
    is: the editor then asks for one."""
    if status not in get_args(ItemStatus):
        return 0
    target = cast(ItemStatus, status)
    changed = 0
    for item in packet.checklist:
        if item.category != category or item.status == target:
            continue
        if target == "to-request" and not item.holder:
            continue
        item.status = target
        changed += 1
    return changed
