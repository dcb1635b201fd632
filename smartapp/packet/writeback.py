"""Send a final packet to the EHR: the referral ServiceRequest, then the PDF as a DocumentReference.

Both are conditional creates on the packet's identifier, so pressing "Send" twice, or a retry
after a 503 or a lost answer, finds the resources already there instead of duplicating them.
Each attempt is kept (smartapp/packet/delivery.py, target "ehr"): a failed one leaves the packet
final and not filed, and the packet page says why, when, and offers "File again".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from fhirmaps import write
from launch.errors import FhirError
from launch.fhir_client import FhirClient
from launch.scopes import GrantedScopes
from smartapp.packet.delivery import TO_EHR, Delivery, DeliveryStore
from smartapp.packet.model import ReferralPacket
from smartapp.packet.send_failure import send_failure_words
from smartapp.packet.store import PacketStore
from smartapp.wording import us_time

WRITE_TYPES = ("ServiceRequest", "DocumentReference")
# What a clinician calls each resource the filing creates.
WRITE_WORDS = {
    "create ServiceRequest": "the referral order",
    "create DocumentReference": "the referral letter",
}


def send_blocker(granted: GrantedScopes, packet: ReferralPacket) -> str:
    """Why "File in the EHR" is disabled, or "" when it is allowed."""
    missing = [t for t in WRITE_TYPES if not granted.can_create(t)]
    if missing:
        return (
            "The EHR did not grant SecondLook permission to create "
            + " and ".join(missing)
            + " resources for this launch, so the packet cannot be written back. Download the PDF and "
            "file it, or ask an administrator to enable write-back for this EHR."
        )
    if packet.status != "final":
        return "Mark the packet final before sending it to the EHR."
    return ""


async def send_packet(client: FhirClient, packet: ReferralPacket, pdf: bytes, *, now: str) -> dict[str, Any]:
    """Create (or find) the ServiceRequest and the DocumentReference; return the receipt."""
    body = packet.to_json()
    request = write.service_request(body)
    created = await client.create(
        "ServiceRequest", request, if_none_exist=write.search_token(request["identifier"][0])
    )
    related = [f"ServiceRequest/{created['id']}"] if created["id"] else []
    document = write.document_reference(body, pdf, date=now, related=related)
    filed = await client.create(
        "DocumentReference", document, if_none_exist=write.search_token(document["identifier"][0])
    )
    return {"ServiceRequest": _entry(created), "DocumentReference": _entry(filed)}


def _entry(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": result["id"],
        "location": result["location"],
        "status": result["status"],
        "created": result["status"] == 201,
    }


def failure_words(exc: FhirError) -> str:
    """Why filing in the EHR failed, in words for the clinician (no URL, token or stack trace; the
    HTTP status in parentheses for whoever they call about it). No final period: the page adds the
    time."""
    return send_failure_words(
        exc,
        server="the EHR",
        verb="file",
        did="filed",
        what=WRITE_WORDS.get(exc.operation, "the packet"),
        signed_out=(
            "The EHR no longer accepts this launch's sign-in; relaunch SecondLook from the chart "
            "and file again"
        ),
    )


@dataclass(frozen=True)
class Filing:
    """Where the packet stands with the EHR: every attempt, and the last one when it failed."""

    attempts: list[Delivery]
    receipts: list[dict[str, Any]]

    @property
    def failure(self) -> Delivery | None:
        """The last attempt when it failed and the packet was never filed (a failed re-filing
        leaves the copy already in the EHR; it stays listed in `attempts`)."""
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and not last.delivered and not self.receipts else None

    def failure_line(self) -> str:
        """'Not filed in the EHR: <why>, <when>.' for the last attempt when it failed, else ''."""
        failed = self.failure
        return f"Not filed in the EHR: {failed.detail}, {us_time(failed.at)}." if failed else ""

    def filed_lines(self) -> list[str]:
        lines = []
        for receipt in self.receipts:
            line = f"Filed in the EHR at {us_time(datetime.fromisoformat(receipt['at']))}"
            if receipt.get("ServiceRequest") and not receipt["ServiceRequest"].get("created"):
                line += " (already there; nothing duplicated)"
            lines.append(line + ".")
        return lines

    def to_json(self) -> dict[str, Any]:
        failed = self.failure
        return {
            "filed": bool(self.receipts),
            "last_filed": self.receipts[-1]["at"] if self.receipts else None,
            "failure": {"at": failed.at.isoformat(), "detail": failed.detail, "text": self.failure_line()}
            if failed
            else None,
            "attempts": [
                {"version": a.version, "at": a.at.isoformat(), "filed": a.delivered, "detail": a.detail}
                for a in self.attempts
            ],
        }


async def filing(engine: AsyncEngine, packet_id: str) -> Filing:
    return Filing(
        await DeliveryStore(engine).for_packet(packet_id, TO_EHR),
        await PacketStore(engine).receipts(packet_id),
    )
