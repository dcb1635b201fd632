"""Clinician decisions about findings — a finding dismissed with a reason, or a finding the rules
did not produce added by hand. Kept per EHR and patient, so the next launch shows them too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Column, DateTime, Integer, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from smartapp.encryption import EncryptedText
from smartapp.storage import metadata

DISMISS_REASONS = {
    "already-reviewed": "Already reviewed by a specialist or tumor board",
    "not-relevant": "Not clinically relevant for this patient",
    "data-wrong": "The source data is wrong or outdated",
    "patient-declined": "Patient declined a second opinion",
    "other": "Other (see note)",
}

# The table keeps the name it was created with (migration 0001); renaming it would buy nothing.
decisions = Table(
    "finding_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("iss", String(512), nullable=False, index=True),
    Column("patient", String(128), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # dismiss | add
    Column("trigger", String(64), nullable=False),
    Column("reason", String(64), nullable=True),
    Column("note", EncryptedText, nullable=True),
    Column("who", String(512), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
)


@dataclass(frozen=True)
class FindingDecision:
    id: int
    kind: str
    trigger: str
    reason: str | None
    note: str | None
    who: str | None
    created_at: datetime

    @property
    def reason_label(self) -> str:
        return DISMISS_REASONS.get(self.reason or "", self.reason or "")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "trigger": self.trigger,
            "reason": self.reason,
            "note": self.note,
            "who": self.who,
            "created_at": self.created_at.isoformat(),
        }


async def list_decisions(engine: AsyncEngine, iss: str, patient: str) -> list[FindingDecision]:
    query = (
        select(decisions)
        .where(
            decisions.c.iss == iss,
            decisions.c.patient == patient,
            decisions.c.active.is_(True),
        )
        .order_by(decisions.c.id)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        FindingDecision(r["id"], r["kind"], r["trigger"], r["reason"], r["note"], r["who"], r["created_at"])
        for r in rows
    ]


async def record_decision(
    engine: AsyncEngine,
    *,
    iss: str,
    patient: str,
    kind: str,
    trigger: str,
    reason: str | None,
    note: str | None,
    who: str | None,
) -> None:
    async with engine.begin() as conn:
        if kind == "dismiss":
            # One live dismissal per finding: a newer one replaces the older reason.
            await conn.execute(
                update(decisions)
                .where(
                    decisions.c.iss == iss,
                    decisions.c.patient == patient,
                    decisions.c.kind == "dismiss",
                    decisions.c.trigger == trigger,
                )
                .values(active=False)
            )
        await conn.execute(
            insert(decisions).values(
                iss=iss,
                patient=patient,
                kind=kind,
                trigger=trigger,
                reason=reason,
                note=note,
                who=who,
                created_at=datetime.now(UTC),
                active=True,
            )
        )


async def withdraw_decision(engine: AsyncEngine, *, iss: str, patient: str, decision_id: int) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(
            update(decisions)
            .where(
                decisions.c.id == decision_id,
                decisions.c.iss == iss,
                decisions.c.patient == patient,
            )
            .values(active=False)
        )
    return bool(result.rowcount)
