"""Send a final packet to the EHR: the referral ServiceRequest, then the PDF as a DocumentReference.

Both are conditional creates on the packet's identifier, so pressing "Send" twice, or a retry
after a 503 or a lost answer, finds the resources already there instead of duplicating them.
"""

from __future__ import annotations

from typing import Any

from fhirmaps import write
from launch.fhir_client import FhirClient
from launch.scopes import GrantedScopes
from smartapp.packet.model import ReferralPacket

WRITE_TYPES = ("ServiceRequest", "DocumentReference")


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
