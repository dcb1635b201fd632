"""Packets in SQL with their edit history and write-back receipts.

Saving is optimistic: the UPDATE only matches the version the editor started from, so when two
people edit the same draft the second save changes nothing and is refused with the current version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from smartapp.encryption import EncryptedJSON
from smartapp.packet.model import ReferralPacket
from smartapp.storage import metadata

packets = Table(
    "packets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("patient_ref", String(200), nullable=False, index=True),
    Column("iss", String(500), nullable=False, index=True),
    Column("identifier", String(200), nullable=False, unique=True),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("body", EncryptedJSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
# One open draft per patient and EHR: concurrent first opens of the packet page race to create it,
# and the loser takes the winner's draft. A finalized packet does not block the next referral.
Index(
    "uq_packets_one_draft",
    packets.c.iss,
    packets.c.patient_ref,
    unique=True,
    sqlite_where=packets.c.status == "draft",
    postgresql_where=packets.c.status == "draft",
)

packet_edits = Table(
    "packet_edits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("packet_id", String(64), ForeignKey("packets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("who", String(500), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("changes", EncryptedJSON, nullable=False),
)
packet_receipts = Table(
    "packet_receipts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("packet_id", String(64), ForeignKey("packets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("receipt", EncryptedJSON, nullable=False),
)


@dataclass(frozen=True)
class StoredPacket:
    packet: ReferralPacket
    version: int
    iss: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Edit:
    version: int
    who: str
    at: datetime
    changes: dict[str, Any]


class PacketConflict(Exception):
    """Someone else saved the packet since the editor loaded it."""

    def __init__(self, current: StoredPacket) -> None:
        super().__init__(
            f"This packet was changed by someone else (now version {current.version}); "
            "your changes were not saved. Reload it, re-apply your edits and save again."
        )
        self.current = current


class PacketFinal(Exception):
    """A final packet is no longer edited."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The top-level fields that changed, each as {"from": ..., "to": ...}."""
    return {
        key: {"from": old.get(key), "to": new.get(key)}
        for key in sorted(set(old) | set(new))
        if _canonical(old.get(key)) != _canonical(new.get(key))
    }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class PacketStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, packet: ReferralPacket, *, iss: str, who: str) -> StoredPacket:
        """Stores a new draft; when another request created this patient's draft first, returns that one."""
        now = utc_now()
        body = packet.to_json()
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(packets).values(
                        id=packet.id,
                        patient_ref=packet.patient.reference,
                        iss=iss,
                        identifier=packet.id,
                        version=1,
                        status=packet.status,
                        body=body,
                        created_at=now,
                        updated_at=now,
                    )
                )
                await conn.execute(
                    insert(packet_edits).values(
                        packet_id=packet.id,
                        version=1,
                        who=who,
                        at=now,
                        changes={"created": {"from": None, "to": "draft"}},
                    )
                )
        except IntegrityError:
            winner = await self.find(iss, packet.patient.reference)
            if winner is None or winner.packet.status != "draft":
                raise
            return winner
        return StoredPacket(packet, 1, iss, now, now)

    async def get(self, packet_id: str) -> StoredPacket | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(packets).where(packets.c.id == packet_id))).mappings().first()
        return _stored(row) if row else None

    async def find(self, iss: str, patient_ref: str) -> StoredPacket | None:
        """The patient's latest packet drafted from this EHR."""
        query = (
            select(packets)
            .where(packets.c.iss == iss, packets.c.patient_ref == patient_ref)
            .order_by(packets.c.created_at.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _stored(row) if row else None

    async def for_patient(self, iss: str, patient_ref: str) -> list[StoredPacket]:
        """Every packet of the patient drafted from this EHR, newest first."""
        query = (
            select(packets)
            .where(packets.c.iss == iss, packets.c.patient_ref == patient_ref)
            .order_by(packets.c.created_at.desc())
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_stored(row) for row in rows]

    async def save(self, packet: ReferralPacket, expected_version: int, who: str) -> StoredPacket:
        """Store `packet` as the next version if the stored one is still `expected_version`."""
        current = await self.get(packet.id)
        if current is None:
            raise KeyError(packet.id)
        if current.version != expected_version:
            raise PacketConflict(current)
        if current.packet.status == "final":
            raise PacketFinal("This packet is final and can no longer be edited.")
        # The patient and the identity of a packet never change through an edit.
        packet = packet.model_copy(
            update={
                "id": current.packet.id,
                "patient": current.packet.patient,
                "created": current.packet.created,
                "source": current.packet.source,
            }
        )
        old, new = current.packet.to_json(), packet.to_json()
        changes = diff(old, new)
        now = utc_now()
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(packets)
                .where(packets.c.id == packet.id, packets.c.version == expected_version)
                .values(version=expected_version + 1, status=packet.status, body=new, updated_at=now)
            )
            if result.rowcount != 1:
                # Lost the race between our read and our write: report the winner's version.
                await conn.rollback()
                latest = await self.get(packet.id)
                raise PacketConflict(latest or current)
            await conn.execute(
                insert(packet_edits).values(
                    packet_id=packet.id, version=expected_version + 1, who=who, at=now, changes=changes
                )
            )
        return StoredPacket(packet, expected_version + 1, current.iss, current.created_at, now)

    async def history(self, packet_id: str) -> list[Edit]:
        query = (
            select(packet_edits).where(packet_edits.c.packet_id == packet_id).order_by(packet_edits.c.version)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [Edit(r["version"], r["who"], _aware(r["at"]), dict(r["changes"])) for r in rows]

    async def as_of(self, stored: StoredPacket, version: int) -> ReferralPacket | None:
        """The packet as it was at `version`: `stored` with the changes saved since undone (each edit
        records the top-level fields it changed, from and to). None for a version that never was, or
        a body this model no longer reads."""
        if not 1 <= version <= stored.version:
            return None
        body = stored.packet.to_json()
        for edit in reversed(await self.history(stored.packet.id)):
            if version < edit.version <= stored.version:
                for key, change in edit.changes.items():
                    body[key] = change["from"]
        try:
            return ReferralPacket.model_validate(body)
        except ValueError:
            return None

    async def add_receipt(self, packet_id: str, version: int, receipt: dict[str, Any]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(packet_receipts).values(
                    packet_id=packet_id, version=version, at=utc_now(), receipt=receipt
                )
            )

    async def receipts(self, packet_id: str) -> list[dict[str, Any]]:
        query = (
            select(packet_receipts)
            .where(packet_receipts.c.packet_id == packet_id)
            .order_by(packet_receipts.c.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            {"version": r["version"], "at": _aware(r["at"]).isoformat(), **dict(r["receipt"])} for r in rows
        ]


def _stored(row: Any) -> StoredPacket:
    return StoredPacket(
        ReferralPacket.model_validate(row["body"]),
        int(row["version"]),
        str(row["iss"]),
        _aware(row["created_at"]),
        _aware(row["updated_at"]),
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands datetimes back without their zone; they were stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
