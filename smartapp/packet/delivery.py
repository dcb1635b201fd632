"""Sending a final referral to the receiving center's FHIR endpoint, and the record of each attempt.

The center is registered like an EHR (registry entry for its FHIR base with a `backend_services`
block whose scopes allow creating Bundles, e.g. `system/Bundle.c`); SecondLook authenticates with
SMART Backend Services and POSTs the referral's FHIR document Bundle as a conditional create on
the document's identifier. A retry after a failure or a lost answer therefore finds the document
already there instead of making a second one. Patient data never goes to an endpoint the registry
does not name: an unregistered endpoint is refused before anything is sent.

Every attempt, delivered or failed, is a row of `referral_deliveries`; a failed attempt leaves the
packet final and unsent, and the packet page shows the error with a "Send again" button. Filing
in the EHR (smartapp/packet/writeback.py) keeps its attempts in the same table, `target` "ehr".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx2
from sqlalchemy import (
    Boolean,
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

from launch.backend_services import BackendServicesClient
from launch.discovery import Discovery
from launch.errors import FhirError, LaunchError
from launch.fhir_client import FhirClient
from launch.registry import Registry, normalize_issuer
from smartapp.encryption import EncryptedText
from smartapp.packet.model import ReferralPacket
from smartapp.packet.send_failure import send_failure_words
from smartapp.storage import metadata
from smartapp.wording import sentence

referral_deliveries = Table(
    "referral_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("packet_id", String(64), ForeignKey("packets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("endpoint", String(500), nullable=False),
    # The document Bundle's identifier value (to a center) or the packet's identifier (to the EHR).
    Column("document", String(200), nullable=False),
    Column("who", String(500), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("delivered", Boolean, nullable=False),
    # The error in words, or "" when delivered: a center's OperationOutcome may quote the patient.
    Column("detail", EncryptedText, nullable=False),
    Column("location", EncryptedText, nullable=False),  # where the center stored it, when it said
    # Where it went: "center" (the receiving center's FHIR endpoint) or "ehr" (filed in the EHR).
    Column("target", String(16), nullable=False, server_default="center"),
)

CENTER = "the receiving center"
TO_CENTER = "center"
TO_EHR = "ehr"


class DeliveryRefused(Exception):
    """Nothing was sent: the packet or the destination does not allow an electronic referral."""


class DeliveryFailed(Exception):
    """The center's server was asked and did not take the referral; the message says why."""


@dataclass(frozen=True)
class Delivery:
    version: int
    endpoint: str
    document: str
    who: str
    at: datetime
    delivered: bool
    detail: str
    location: str
    target: str = TO_CENTER

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "document": self.document,
            "at": self.at.isoformat(),
            "delivered": self.delivered,
            "detail": self.detail,
            "location": self.location,
        }


def delivery_blocker(
    registry: Registry, packet: ReferralPacket, status: str, status_label: str, endpoint: str
) -> str:
    """Why "Send to the center" is not possible now, or "" when it is. `status` is the referral's
    tracked status; `endpoint` the center's FHIR endpoint as the directory has it today (never the
    one stored in the packet, which an API client could have written)."""
    if packet.status != "final":
        return "Mark the packet final before sending it to the center."
    if packet.destination is None:
        return "Choose the receiving center first."
    if status != "final":
        return f"This referral is already {status_label.lower()}."
    return center_registration_problem(registry, endpoint)


def center_registration_problem(registry: Registry, endpoint: str) -> str:
    """Why SecondLook cannot send to `endpoint`, or "" when it can."""
    if not endpoint:
        return (
            "This center takes referrals by fax, portal or mail, not electronically: download the "
            "referral (PDF, FHIR document and report texts as one ZIP file) and send it their way."
        )
    registration = registry.get(normalize_issuer(endpoint))
    if registration is None or registration.backend_services is None:
        return (
            "The center's electronic referral address is not registered with SecondLook, so no patient "
            "data is sent to it. An administrator registers it (with backend access) in the EHR "
            "registry; until then, download the ZIP file and send it another way."
        )
    return ""


async def post_document(
    http: httpx2.AsyncClient, registry: Registry, endpoint: str, bundle: dict[str, Any]
) -> dict[str, Any]:
    """Create the document Bundle at the center (or find it there); returns the create result.
    Raises DeliveryRefused when the endpoint is not registered, DeliveryFailed when the center
    (or its token endpoint) did not take it."""
    problem = center_registration_problem(registry, endpoint)
    if problem:
        raise DeliveryRefused(problem)
    registration = registry.require(normalize_issuer(endpoint))
    identifier = bundle["identifier"]
    try:
        tokens = BackendServicesClient(http, registration, Discovery(http))
        client = FhirClient(
            registration.iss,
            http,
            tokens,
            max_concurrency=registration.concurrency(2),
            server_name=CENTER,
        )
        return await client.create(
            "Bundle", bundle, if_none_exist=f"identifier={identifier['system']}|{identifier['value']}"
        )
    except FhirError as exc:
        raise DeliveryFailed(
            sentence(
                send_failure_words(
                    exc,
                    server="the receiving center",
                    verb="send",
                    did="sent",
                    what="the referral",
                    signed_out=(
                        "The receiving center no longer accepts SecondLook's sign-in; ask the "
                        "administrator to check the center's registration, then send again"
                    ),
                )
            )
        ) from exc
    except LaunchError as exc:
        raise DeliveryFailed(
            f"The receiving center did not let SecondLook sign in: {exc.description}"
        ) from exc


class DeliveryStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record(
        self,
        packet_id: str,
        version: int,
        *,
        endpoint: str,
        document: str,
        who: str,
        delivered: bool,
        detail: str = "",
        location: str = "",
        target: str = TO_CENTER,
    ) -> Delivery:
        at = datetime.now(UTC)
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(referral_deliveries).values(
                    packet_id=packet_id,
                    version=version,
                    endpoint=endpoint[:500],
                    document=document[:200],
                    who=who[:500],
                    at=at,
                    delivered=delivered,
                    detail=detail[:4000],
                    location=location[:1000],
                    target=target,
                )
            )
        return Delivery(version, endpoint, document, who, at, delivered, detail, location, target)

    async def for_packet(self, packet_id: str, target: str = TO_CENTER) -> list[Delivery]:
        """The packet's attempts to `target` ("center" or "ehr"), oldest first."""
        query = (
            select(referral_deliveries)
            .where(referral_deliveries.c.packet_id == packet_id, referral_deliveries.c.target == target)
            .order_by(referral_deliveries.c.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            Delivery(
                int(r["version"]),
                str(r["endpoint"]),
                str(r["document"]),
                str(r["who"]),
                r["at"] if r["at"].tzinfo else r["at"].replace(tzinfo=UTC),
                bool(r["delivered"]),
                str(r["detail"]),
                str(r["location"]),
                str(r["target"]),
            )
            for r in rows
        ]
