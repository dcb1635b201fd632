"""The packet's edit history in words for the editor page: who saved each version by name (never
a record id), when in the product's one format, and what changed with the editor's own labels
(never a field key). The JSON API keeps the raw history: `who` is the fhirUser, `changes` the keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from launch.errors import FhirError
from launch.sessions import LaunchSession
from smartapp.packet import intake
from smartapp.packet.model import ReferralPacket
from smartapp.packet.store import Edit
from smartapp.packet.tracking import Event
from smartapp.web.services import AppServices
from smartapp.wording import join, us_time

# Every top-level field of a ReferralPacket, as the editor and the letter name it. A field missing
# here is shown as "other details" (tests/web/test_edit_history.py checks the map is complete).
FIELD_LABELS = {
    "id": "packet identity",
    "identifier_system": "packet identity",
    "status": "status",
    "created": "date drafted",
    "patient": "patient details",
    "source": "source record",
    "review_type": "type of review",
    "urgency": "urgency",
    "time_critical": "time-critical condition",
    "timing_advice": "timing",
    "cover_letter": "cover letter",
    "reasons": "reasons for referral",
    "questions": "questions for the consultant",
    "diagnoses": "diagnosis summary",
    "biomarkers": "biomarkers",
    "treatment_so_far": "treatment so far",
    "treatment_proposed": "treatment proposed",
    "summary_note": "summary note",
    "checklist": "records checklist",
    "destination": "receiving center",
    "preference": "patient's preference",
    "insurance": "insurance",
    "sender": "referring clinician",
    "medications": "medications",
    "allergies": "allergies",
    "attachments": "attached reports",
    "sources": "copies of the record",
    "data_issues": "data issues",
    "follows": "earlier referral",
    "amends": "earlier version",
}


def person(who: str, names: Mapping[str, str], me: str | None) -> str:
    """A user as the page can name them: their name when known, else "you" or another user."""
    if names.get(who):
        return names[who]
    if me and who == me:
        return "you"
    return "another user" if me else "a user"


def what_changed(changes: Mapping[str, Any]) -> str:
    """In words: drafted; marked final; cover letter and records checklist changed; ..."""
    if "created" in changes:
        return "drafted"
    status = changes.get("status") or {}
    # In the packet's own order (the store lists changed fields alphabetically).
    labels = [label for key, label in FIELD_LABELS.items() if key in changes and key != "status"]
    labels += ["other details" for key in changes if key not in FIELD_LABELS and key != "status"]
    words = [f"{join(labels)} changed"] if labels else []
    if status.get("to") == "final":
        words.append("marked final")
    elif status:
        words.append("status changed")
    return "; ".join(words) or "saved without changes"


def history_lines(history: Sequence[Edit], names: Mapping[str, str], me: str | None) -> list[str]:
    """One sentence per saved version, oldest first."""
    return [
        f"Version {e.version}, {us_time(e.at)}, by {person(e.who, names, me)}: {what_changed(e.changes)}."
        for e in history
    ]


async def known_names(
    services: AppServices,
    session: LaunchSession,
    packet: ReferralPacket,
    people: Iterable[str],
    events: Iterable[Event] = (),
) -> dict[str, str]:
    """Names for users given by their fhirUser: the packet's sender when that is them, a name
    recorded with a status change, else their Practitioner (or role) in the launch's record. A user
    none of these names is left out (the page then says "another user")."""
    names = {e.who: e.who_name for e in events if e.who and e.who_name}
    if packet.sender.reference and packet.sender.name:
        names[packet.sender.reference] = packet.sender.name
    wanted = {
        who for who in people if who not in names and who.startswith(("Practitioner/", "PractitionerRole/"))
    }
    if not wanted:
        return names
    try:
        results = await services.results.get(services.fhir, session)
    except FhirError:
        return names  # the page still shows the history, with "another user"
    for who in wanted:
        name = intake.sender(results.snapshot.resources, who)[0].name
        if name:
            names[who] = name
    return names
