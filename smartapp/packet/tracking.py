"""A final referral's life after "final": sent, received, accepted or declined, scheduled, and the
outside opinion coming back, each change recorded with who, when and an optional note.

The states follow BSeR's Task business status (docs/referral-fhir.md has the mapping to
Task.status and TaskBusinessStatusCS). Changes are appended to `referral_events` with a sequence
number per packet; two people changing the status at once cannot both win, because the second
insert repeats the sequence number and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from smartapp.encryption import EncryptedJSON, EncryptedText
from smartapp.packet.store import PacketStore, StoredPacket
from smartapp.storage import metadata
from smartapp.wording import us_date
from smartapp.worklist import queries as worklist

referral_events = Table(
    "referral_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("packet_id", String(64), ForeignKey("packets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("who", String(500), nullable=False),  # the user's fhirUser, for the record and the API
    Column("who_name", String(300), nullable=False),  # their name when known, for the screen
    Column("at", DateTime(timezone=True), nullable=False),
    Column("note", EncryptedText, nullable=False),
    Column("opinion", EncryptedJSON),
    UniqueConstraint("packet_id", "seq", name="uq_referral_events_seq"),
)

# "final" is the state of a final packet before anything was tracked; "completed" is reached
# only by recording the outside opinion.
STATUS_LABELS = {
    "final": "Final, not sent yet",
    "sent": "Sent",
    "received": "Received by the center",
    "accepted": "Accepted",
    "declined": "Declined",
    "scheduled": "Scheduled",
    "cancelled": "Cancelled",
    "completed": "Opinion returned",
}
# How a change reads after the date on the findings page ("— accepted 12/03/2026").
STATUS_WORDS = {
    "sent": "sent",
    "received": "received",
    "accepted": "accepted",
    "declined": "declined",
    "scheduled": "scheduled",
    "cancelled": "cancelled",
    "completed": "opinion returned",
    "final": "final",
}
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "final": ("sent", "cancelled"),
    "sent": ("received", "accepted", "declined", "cancelled"),
    "received": ("accepted", "declined", "cancelled"),
    "accepted": ("scheduled", "declined", "cancelled"),
    "scheduled": ("cancelled",),
    "declined": (),
    "cancelled": (),
    "completed": (),
}
OPINION_FROM = ("sent", "received", "accepted", "scheduled")
AGREEMENT_LABELS = {
    "agrees": "Agrees with the local diagnosis and plan",
    "changes-diagnosis": "Changes the diagnosis",
    "changes-plan": "Changes the plan",
}
# The coordinator's worklist status that follows each referral status.
WORKLIST_STATUS = {
    "draft": "referral-drafted",
    "final": "referral-drafted",
    "sent": "referral-sent",
    "received": "referral-sent",
    "accepted": "referral-sent",
    "scheduled": "referral-sent",
    "completed": "opinion-returned",
    # Declined or cancelled: the patient still needs a referral, no longer one under way.
    "declined": "reviewed",
    "cancelled": "reviewed",
}


class TransitionRefused(Exception):
    """The change is not possible from the referral's current status; the message says why."""


class Opinion(BaseModel):
    received: date
    center: str = Field(min_length=1, max_length=300)
    summary: str = Field(min_length=1, max_length=20000)
    agreement: Literal["agrees", "changes-diagnosis", "changes-plan"]

    @field_validator("center", "summary", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @field_validator("received")
    @classmethod
    def _not_in_future(cls, value: date) -> date:
        if value > datetime.now(UTC).date():
            raise ValueError("the date the opinion was received cannot be in the future")
        return value

    @property
    def agreement_label(self) -> str:
        return AGREEMENT_LABELS[self.agreement]


@dataclass(frozen=True)
class Event:
    seq: int
    status: str
    who: str
    who_name: str
    at: datetime
    note: str
    opinion: Opinion | None

    @property
    def label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


@dataclass(frozen=True)
class Tracking:
    """A packet's tracked state: "draft" for a draft, else the latest event's status or "final"."""

    packet_status: str
    events: list[Event]

    @property
    def status(self) -> str:
        if self.packet_status != "final":
            return "draft"
        return self.events[-1].status if self.events else "final"

    @property
    def label(self) -> str:
        return STATUS_LABELS.get(self.status, "Draft")

    @property
    def allowed(self) -> tuple[str, ...]:
        return TRANSITIONS.get(self.status, ())

    @property
    def opinion_allowed(self) -> bool:
        return self.status in OPINION_FROM

    @property
    def opinion(self) -> Opinion | None:
        return next((e.opinion for e in reversed(self.events) if e.opinion), None)

    def at(self, status: str) -> datetime | None:
        return next((e.at for e in self.events if e.status == status), None)

    def to_json(self) -> dict[str, Any]:
        latest = self.events[-1] if self.events else None
        return {
            "status": self.status,
            "label": self.label,
            "allowed": list(self.allowed),
            "opinion_allowed": self.opinion_allowed,
            "at": latest.at.isoformat() if latest else None,
            "note": latest.note if latest else "",
            "opinion": self.opinion.model_dump(mode="json") if self.opinion else None,
            "events": [
                {
                    "status": e.status,
                    "who": e.who,
                    "who_name": e.who_name,
                    "at": e.at.isoformat(),
                    "note": e.note,
                    "opinion": e.opinion.model_dump(mode="json") if e.opinion else None,
                }
                for e in self.events
            ],
        }


def refusal(current: str, target: str) -> str | None:
    """Why `target` cannot follow `current`, in words; None when it can."""
    if current == "draft":
        return "Mark the packet final before tracking the referral."
    if target == "completed":
        return "Record the outside opinion to mark the opinion returned."
    if target not in STATUS_LABELS or target == "final":
        return f'"{target}" is not a referral status.'
    allowed = TRANSITIONS.get(current, ())
    if target in allowed:
        return None
    now = STATUS_LABELS[current].lower()
    if not allowed:
        return f"This referral is {now}; its status no longer changes. Start a new referral instead."
    options = ", ".join(STATUS_LABELS[s].lower() for s in allowed)
    return (
        f"A referral that is {now} cannot become {STATUS_LABELS[target].lower()}. It can become: {options}."
    )


async def tracking(engine: AsyncEngine, stored: StoredPacket) -> Tracking:
    query = (
        select(referral_events)
        .where(referral_events.c.packet_id == stored.packet.id)
        .order_by(referral_events.c.seq)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    events = [
        Event(
            int(r["seq"]),
            str(r["status"]),
            str(r["who"]),
            str(r["who_name"] or ""),
            _aware(r["at"]),
            str(r["note"] or ""),
            Opinion.model_validate(r["opinion"]) if r["opinion"] else None,
        )
        for r in rows
    ]
    return Tracking(stored.packet.status, events)


async def change_status(
    engine: AsyncEngine,
    stored: StoredPacket,
    status: str,
    *,
    who: str,
    who_name: str = "",
    note: str = "",
    opinion: Opinion | None = None,
) -> Tracking:
    """Records `status` (or, with `opinion`, the opinion and "completed"); raises TransitionRefused."""
    current = await tracking(engine, stored)
    if opinion is not None:
        if current.status == "draft" or not current.opinion_allowed:
            raise TransitionRefused(
                "Mark the packet final before tracking the referral."
                if current.status == "draft"
                else (
                    "An opinion can be recorded once the referral is sent; "
                    f"this referral is {current.label.lower()}."
                )
            )
        status = "completed"
    else:
        problem = refusal(current.status, status)
        if problem:
            raise TransitionRefused(problem)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(referral_events).values(
                    packet_id=stored.packet.id,
                    seq=len(current.events) + 1,
                    status=status,
                    who=who,
                    who_name=who_name[:300],
                    at=datetime.now(UTC),
                    note=note.strip()[:2000],
                    opinion=opinion.model_dump(mode="json") if opinion else None,
                )
            )
    except IntegrityError as exc:
        raise TransitionRefused(
            "Someone else changed this referral's status at the same moment. "
            "Reload the page to see it, then try again."
        ) from exc
    return await tracking(engine, stored)


async def follow_in_worklist(engine: AsyncEngine, stored: StoredPacket, status: str) -> None:
    """Sets the patient's worklist entry (if the screening run made one) to follow the referral."""
    patient_id = stored.packet.patient.reference.removeprefix("Patient/")
    await worklist.set_status(engine, stored.iss, patient_id, WORKLIST_STATUS.get(status, "referral-drafted"))


async def patient_referrals(
    engine: AsyncEngine, iss: str, patient_ref: str
) -> list[tuple[StoredPacket, Tracking]]:
    """Every referral of the patient from this EHR with its tracked state, newest first."""
    return [
        (stored, await tracking(engine, stored))
        for stored in await PacketStore(engine).for_patient(iss, patient_ref)
    ]


def summary_line(stored: StoredPacket, state: Tracking) -> str:
    """One line for the findings page: "Referral to <center> sent 12/01/2026 — accepted 12/03/2026"."""
    destination = stored.packet.destination
    head = f"Referral to {destination.name}" if destination else "Referral (receiving center not chosen yet)"
    if state.status == "draft":
        return f"{head}: draft started {us_date(stored.created_at.date())}, not final yet"
    sent = state.at("sent")
    line = (
        f"{head} sent {us_date(sent.date())}" if sent else f"{head} final {us_date(stored.updated_at.date())}"
    )
    latest = state.events[-1] if state.events else None
    if latest is None:
        return f"{line}, not sent yet"
    if latest.status != "sent":
        line += f" — {STATUS_WORDS[latest.status]} {us_date(latest.at.date())}"
    if latest.opinion:
        line += f": {latest.opinion.agreement_label.lower()}"
    return line


def _aware(value: datetime) -> datetime:
    # SQLite hands datetimes back without their zone; they were stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
