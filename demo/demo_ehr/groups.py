"""The demo EHR's patient Groups, as a coordinator would pick them for population screening:
everyone in the oncology clinic, and the patients on next week's tumor board."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from .resource_store import ResourceStore

ONCOLOGY_CLINIC_ID = "oncology-clinic"
TUMOR_BOARD_ID = "tumor-board"
TUMOR_BOARD_SIZE = 4
GROUP_IDENTIFIER_SYSTEM = "urn:demo-ehr:group"


def tumor_board_date(today: date) -> date:
    """The Tuesday of the week after `today`."""
    next_monday = today + timedelta(days=7 - today.weekday())
    return next_monday + timedelta(days=1)


def group_resource(group_id: str, name: str, members: list[str]) -> dict[str, Any]:
    return {
        "resourceType": "Group",
        "id": group_id,
        "identifier": [{"system": GROUP_IDENTIFIER_SYSTEM, "value": group_id}],
        "active": True,
        "type": "person",
        "actual": True,
        "name": name,
        "quantity": len(members),
        "member": [{"entity": {"reference": f"Patient/{pid}"}} for pid in members],
    }


def add_demo_groups(store: ResourceStore, today: date) -> tuple[dict[str, Any], dict[str, Any]]:
    """Add "Oncology clinic" (every patient with an oncology chart) and "Tumor board <date>" (the
    first few listed oncology patients with a finding to discuss) to `store`."""
    clinic = group_resource(ONCOLOGY_CLINIC_ID, "Oncology clinic", list(store.oncology_patients))
    oncology = set(store.oncology_patients)
    discussed = [item.patient_id for item in store.listings if item.patient_id in oncology and item.triggers]
    if len(discussed) < TUMOR_BOARD_SIZE:
        discussed += [pid for pid in store.oncology_patients if pid not in discussed]
    board_day = tumor_board_date(today)
    board = group_resource(
        TUMOR_BOARD_ID, f"Tumor board {board_day.isoformat()}", discussed[:TUMOR_BOARD_SIZE]
    )
    for group in (clinic, board):
        store.add(group, None)
    return clinic, board


def group_members(group: dict[str, Any]) -> list[str]:
    """Patient ids of a Group's members (other member types are skipped)."""
    members: list[str] = []
    for member in group.get("member", []) or []:
        reference = (member.get("entity") or {}).get("reference") if isinstance(member, dict) else None
        if isinstance(reference, str) and reference.startswith("Patient/"):
            members.append(reference.removeprefix("Patient/"))
    return members
