"""Treatment so far and treatment proposed, from the record's actions (orders, administrations,
procedures, care-plan activities). A heuristic first draft: the coordinator edits it."""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path

from fhirmaps.record import CareActivity, PatientRecord
from smartapp.packet.model import TreatmentLine

RULES = Path(__file__).parent / "data" / "treatment.toml"

DONE_OR_ONGOING = frozenset({"completed", "active", "in-progress", "stopped", "on-hold"})
PLANNED = frozenset({"draft", "scheduled", "not-started", "preparation"})
ORDER_OPEN = frozenset({"draft", "active", "on-hold"})


def treatment_so_far(record: PatientRecord) -> list[TreatmentLine]:
    lines: dict[str, TreatmentLine] = {}
    for action in sorted(record.activities, key=_when):
        if action.resource_type == "CarePlan" and ".activity" not in action.source.path:
            continue  # the plan as a whole, not one of its activities
        if action.resource_type in ("MedicationRequest", "MedicationAdministration", "CarePlan"):
            if not action.antineoplastic or action.status not in DONE_OR_ONGOING:
                continue
        elif action.resource_type == "Procedure":
            if action.status != "completed" or not is_treatment(action):
                continue
        else:
            continue
        # The latest action for a name wins (FOLFOX stopped, then restarted as part of FOLFIRI).
        lines[action.name.lower()] = _line(action)
    return list(lines.values())


def proposed_treatment(record: PatientRecord) -> list[TreatmentLine]:
    lines: dict[str, TreatmentLine] = {}
    for action in sorted(record.activities, key=_when):
        planned = (
            (action.resource_type == "ServiceRequest" and action.status in ORDER_OPEN)
            or (action.resource_type == "CarePlan" and action.status in PLANNED)
            or (action.resource_type == "MedicationRequest" and action.status == "draft")
            or (action.resource_type == "Procedure" and action.status == "preparation")
        )
        if planned and is_treatment(action):
            lines.setdefault(action.name.lower(), _line(action))
    return list(lines.values())


@cache
def _words(key: str) -> re.Pattern[str]:
    return re.compile(tomllib.loads(RULES.read_text())[key]["value"], re.IGNORECASE)


def is_treatment(action: CareActivity) -> bool:
    """An anticancer drug, or a procedure, order or plan whose name says cancer treatment (see
    data/treatment.toml): never a consult, referral or visit; a definitive treatment even beside a
    diagnostic word; a weaker treatment word only without one."""
    if action.antineoplastic:
        return True
    name = action.name
    if _words("never_words").search(name):
        return False
    if _words("definitive_words").search(name):
        return True
    return bool(_words("other_words").search(name)) and not _words("diagnostic_words").search(name)


def _line(action: CareActivity) -> TreatmentLine:
    when = action.when.isoformat() if action.when else ""
    return TreatmentLine(text=action.name, status=action.status, date=when, reference=action.source.reference)


def _when(action: CareActivity) -> str:
    return action.when.isoformat() if action.when else ""
