"""Filing the final packet in the EHR (write-back): the form button and the JSON API. Every
attempt is kept; a failed one leaves the packet final and not filed, and the packet page shows
the reason, the time and a "File again" button. Filing again is safe: the creates are
conditional on the packet's identifier, so the EHR keeps one copy."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from launch.errors import FhirError
from launch.sessions import LaunchSession
from smartapp.packet.delivery import TO_EHR, DeliveryStore
from smartapp.packet.pdf import render_pdf
from smartapp.packet.store import PacketStore
from smartapp.packet.writeback import failure_words, send_blocker, send_packet
from smartapp.web.csrf import check_csrf
from smartapp.web.deps import Services, SmartSession
from smartapp.web.errors import AppError
from smartapp.web.routes.packet import current_packet, now_iso, who
from smartapp.web.send_form import send_from_form
from smartapp.web.services import AppServices

router = APIRouter()


async def send_current(services: AppServices, session: LaunchSession) -> dict[str, Any]:
    stored = await current_packet(services, session)
    blocker = send_blocker(session.granted, stored.packet)
    if blocker:
        raise AppError(409, "send_not_allowed", "The packet cannot be sent to the EHR", blocker)
    pdf = await asyncio.to_thread(render_pdf, stored.packet)
    attempts = DeliveryStore(services.engine)
    record = {
        "endpoint": session.iss,
        "document": stored.packet.id,
        "who": who(session),
        "target": TO_EHR,
    }
    try:
        receipt = await send_packet(services.fhir.client_for(session), stored.packet, pdf, now=now_iso())
    except FhirError as exc:
        reason = failure_words(exc)
        await attempts.record(stored.packet.id, stored.version, delivered=False, detail=reason, **record)
        raise AppError(
            502,
            "write_back_failed",
            "The packet could not be filed in the EHR",
            reason + ".",
            "The packet stays final and not filed. Filing again is safe: the EHR keeps one copy per "
            "packet. If it keeps failing, download the PDF and file it in the chart.",
        ) from exc
    await attempts.record(
        stored.packet.id,
        stored.version,
        delivered=True,
        location=receipt["DocumentReference"]["location"],
        **record,
    )
    await PacketStore(services.engine).add_receipt(stored.packet.id, stored.version, receipt)
    return receipt


@router.post("/s/{sid}/packet/send", include_in_schema=False)
async def send_form(request: Request, services: Services, session: SmartSession, sid: str) -> Response:
    return await send_from_form(
        request,
        sid,
        lambda: send_current(services, session),
        refused="write_back_failed",
        notices=("sent", "filing-failed"),
    )


@router.post(
    "/api/s/{sid}/packet/send",
    tags=["packet"],
    responses={
        409: {"description": "Not final, or the EHR did not grant create scopes for this launch"},
        502: {
            "description": (
                "The EHR did not take it (error, refusal or no answer in time); the attempt is kept "
                "and the packet stays final and not filed"
            )
        },
    },
)
async def send_api(
    request: Request,
    services: Services,
    session: SmartSession,
    sid: str,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Write the final packet back to the EHR (conditional creates; safe to retry); returns the receipt."""
    check_csrf(request, sid, x_csrf_token)
    return await send_current(services, session)
