"""CDS Hooks feedback: which cards clinicians accepted or overrode, and why.

Clients may send the same feedback more than once; the unique key (card, outcome, timestamp)
makes a repeat a no-op. Rows carry the card uuid, the outcome and the reason; the clinician's
free-text comment may mention the patient, so it is encrypted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, DateTime, Integer, String, Table, UniqueConstraint, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from smartapp.encryption import EncryptedText
from smartapp.storage import metadata

cds_feedback = Table(
    "cds_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(100), nullable=False),
    Column("card_uuid", String(100), nullable=False, index=True),
    Column("outcome", String(20), nullable=False),
    Column("override_system", String(300)),
    Column("override_code", String(100)),
    Column("override_display", String(300)),
    Column("user_comment", EncryptedText),
    Column("outcome_timestamp", String(40), nullable=False),
    Column("client_iss", String(300), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", name="uq_cds_feedback_card_outcome_time"),
)


class Coding(BaseModel):
    model_config = ConfigDict(extra="allow")

    system: str | None = Field(default=None, max_length=300)
    code: str | None = Field(default=None, max_length=100)
    display: str | None = Field(default=None, max_length=300)


class OverrideReason(BaseModel):
    model_config = ConfigDict(extra="allow")

    reason: Coding | None = None
    userComment: str | None = Field(default=None, max_length=2000)


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    card: str = Field(min_length=1, max_length=100)
    outcome: Literal["accepted", "overridden"]
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: datetime


class FeedbackRequest(BaseModel):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=100)


async def record_feedback(
    engine: AsyncEngine, service_id: str, client_iss: str, request: FeedbackRequest
) -> int:
    """Store each item once; returns how many were new."""
    stored = 0
    received = datetime.now(UTC)
    for item in request.feedback:
        reason = item.overrideReason.reason if item.overrideReason and item.overrideReason.reason else None
        stamp = item.outcomeTimestamp
        stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
        row = {
            "service_id": service_id,
            "card_uuid": item.card,
            "outcome": item.outcome,
            "override_system": reason.system if reason else None,
            "override_code": reason.code if reason else None,
            "override_display": reason.display if reason else None,
            "user_comment": item.overrideReason.userComment if item.overrideReason else None,
            "outcome_timestamp": stamp.isoformat(),
            "client_iss": client_iss,
            "received_at": received,
        }
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(cds_feedback).values(**row))
        except IntegrityError:
            continue  # the same feedback again
        stored += 1
    return stored
