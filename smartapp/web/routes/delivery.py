"""A final referral leaves the building: to the receiving center's FHIR endpoint (electronic
referral), or as one ZIP file (letter, FHIR document, report texts) for centers that take
referrals another way. The EHR write-back is in routes/packet.py."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from launch.sessions import LaunchSession
from smartapp.packet.archive import build_archive
from smartapp.packet.delivery import (
    DeliveryFailed,
    DeliveryRefused,
    DeliveryStore,
    delivery_blocker,
    post_document,
)
from smartapp.packet.tracking import TransitionRefused, tracking
from smartapp.web.csrf import check_csrf
from smartapp.web.deps import Services, SmartSession
from smartapp.web.errors import AppError
from smartapp.web.routes.packet import center_endpoint, current_packet, packet_document, who
from smartapp.web.routes.referral import apply_status
from smartapp.web.send_form import send_from_form
from smartapp.web.services import AppServices

router = APIRouter()


async def deliver_current(services: AppServices, session: LaunchSession) -> dict[str, Any]:
    stored = await current_packet(services, session)
    state = await tracking(services.engine, stored)
    endpoint = center_endpoint(services, stored.packet)
    blocker = delivery_blocker(services.registry, stored.packet, state.status, state.label, endpoint)
    if blocker:
        raise AppError(409, "delivery_not_allowed", "The referral cannot be sent to the center", blocker)
    destination = stored.packet.destination
    assert destination is not None  # noqa: S101 - delivery_blocker refuses a packet without one
    _, bundle = await packet_document(services, stored)
    store = DeliveryStore(services.engine)
    record = {
        "endpoint": endpoint,
        "document": bundle["identifier"]["value"],
        "who": who(session),
    }
    try:
        created = await post_document(services.http, services.registry, endpoint, bundle)
    except (DeliveryFailed, DeliveryRefused) as exc:
        await store.record(stored.packet.id, stored.version, delivered=False, detail=str(exc), **record)
        raise AppError(
            502,
            "delivery_failed",
            f"The referral could not be sent to {destination.name}",
            str(exc),
            "The referral stays final and not sent. Sending again is safe: the center keeps one copy "
            "of this document. If it keeps failing, download the ZIP file and send it another way.",
        ) from exc
    delivery = await store.record(
        stored.packet.id, stored.version, delivered=True, location=created["location"], **record
    )
    note = f"Sent electronically to {destination.name}"
    try:
        await apply_status(services, session, stored, True, "sent", note)
    except TransitionRefused:
        # Someone sent it at the same moment: the center holds one copy (conditional create) and
        # the history keeps the first "sent".
        pass
    return {
        "delivery": delivery.to_json(),
        "created": created["status"] == 201,
        "tracking": (await tracking(services.engine, stored)).to_json(),
    }


@router.post("/s/{sid}/packet/deliver", include_in_schema=False)
async def deliver_form(request: Request, services: Services, session: SmartSession, sid: str) -> Response:
    return await send_from_form(
        request,
        sid,
        lambda: deliver_current(services, session),
        refused="delivery_failed",
        notices=("delivered", "delivery-failed"),
    )


@router.post(
    "/api/s/{sid}/packet/deliver",
    tags=["packet"],
    responses={
        409: {
            "description": (
                "Not final, no center chosen, already sent, or the center has no registered endpoint"
            )
        },
        502: {"description": "The center's server did not take it; the packet stays final and unsent"},
    },
)
async def deliver_api(
    request: Request,
    services: Services,
    session: SmartSession,
    sid: str,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Send the final referral (the FHIR document) to the receiving center's FHIR endpoint; marks
    it sent. Safe to retry: the center receives one copy per document."""
    check_csrf(request, sid, x_csrf_token)
    return await deliver_current(services, session)


@router.get("/api/s/{sid}/packet.zip", tags=["packet"], response_class=Response)
async def packet_zip(services: Services, session: SmartSession) -> Response:
    """The referral as one ZIP file: letter (PDF), FHIR document, report texts and a contents list."""
    stored = await current_packet(services, session)
    pdf, bundle = await packet_document(services, stored)
    archive = await asyncio.to_thread(build_archive, stored.packet, pdf, bundle)
    name = "referral-packet.zip" if stored.packet.status == "final" else "referral-packet-DRAFT.zip"
    return Response(
        archive,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
