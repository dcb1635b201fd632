"""The outside report itself (the center's letter or pathology consult, as a PDF or text file),
uploaded when the opinion is recorded and kept with the referral, so the findings page and the
packet page can show it. Files are checked by their bytes, not by the name or declared type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from fhirmaps.narrative import decode_bytes
from smartapp.encryption import EncryptedBytes, EncryptedText
from smartapp.packet.store import packets
from smartapp.storage import metadata

MAX_BYTES = 10 * 1024 * 1024
PDF = "application/pdf"
TEXT = "text/plain; charset=utf-8"

outside_reports = Table(
    "outside_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("packet_id", String(64), ForeignKey("packets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("seq", Integer, nullable=False),  # the referral event (opinion returned) it came with
    Column("name", EncryptedText, nullable=False),  # file names often carry the patient's name
    Column("content_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("data", EncryptedBytes, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)


class ReportRejected(ValueError):
    """The file cannot be kept as an outside report; the message says why, for the form."""


@dataclass(frozen=True)
class OutsideReport:
    id: int
    packet_id: str
    seq: int
    name: str
    content_type: str
    size: int

    @property
    def kind(self) -> str:
        return "PDF" if self.content_type == PDF else "text"

    @property
    def size_words(self) -> str:
        return f"{max(1, round(self.size / 1024))} kB"


def checked(name: str, data: bytes) -> tuple[str, str, bytes]:
    """The file's name as it will be shown, its content type and the bytes to keep (a text file
    as UTF-8 whatever its encoding); raises ReportRejected."""
    if not data:
        raise ReportRejected("the file is empty.")
    if len(data) > MAX_BYTES:
        raise ReportRejected(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    shown = "".join(ch for ch in name.replace("\\", "/").rsplit("/", 1)[-1] if ch.isprintable())[:200]
    shown = shown.strip() or "outside-report"
    if data[:5] == b"%PDF-":
        return shown, PDF, data
    try:
        text = decode_bytes(data, "text/plain")
    except ValueError as exc:
        raise ReportRejected("only PDF and plain-text files can be kept as the outside report.") from exc
    return shown, TEXT, text.encode("utf-8")


async def keep(
    engine: AsyncEngine, packet_id: str, seq: int, name: str, content_type: str, data: bytes
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(outside_reports).values(
                packet_id=packet_id,
                seq=seq,
                name=name,
                content_type=content_type,
                size=len(data),
                data=data,
                at=datetime.now(UTC),
            )
        )


async def for_packets(engine: AsyncEngine, packet_ids: list[str]) -> dict[str, list[OutsideReport]]:
    """The reports of each packet (without their bytes), oldest first."""
    if not packet_ids:
        return {}
    columns = [outside_reports.c[c] for c in ("id", "packet_id", "seq", "name", "content_type", "size")]
    query = select(*columns).where(outside_reports.c.packet_id.in_(packet_ids)).order_by(outside_reports.c.id)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    found: dict[str, list[OutsideReport]] = {}
    for row in rows:
        found.setdefault(str(row.packet_id), []).append(
            OutsideReport(
                int(row.id),
                str(row.packet_id),
                int(row.seq),
                str(row.name),
                str(row.content_type),
                int(row.size),
            )
        )
    return found


async def read_for_patient(
    engine: AsyncEngine, report_id: int, *, iss: str, patient_ref: str
) -> tuple[OutsideReport, bytes] | None:
    """The report with its bytes, only when its referral is this patient's from this EHR."""
    query = (
        select(outside_reports)
        .join(packets, packets.c.id == outside_reports.c.packet_id)
        .where(outside_reports.c.id == report_id, packets.c.iss == iss, packets.c.patient_ref == patient_ref)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    report = OutsideReport(
        int(row.id), str(row.packet_id), int(row.seq), str(row.name), str(row.content_type), int(row.size)
    )
    return report, bytes(row.data)
