"""The referral packet of the launch's patient: editor page, JSON API, PDF and FHIR document (the
EHR write-back is in routes/writeback.py). The patient always comes from the launch session; the
packet id never appears in a URL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from fhirmaps import document
from launch.sessions import LaunchSession
from smartapp.finding_decisions import list_decisions
from smartapp.packet import decisions, outside_report
from smartapp.packet.delivery import DeliveryStore, delivery_blocker
from smartapp.packet.directory import Directory, load_directory
from smartapp.packet.draft import draft_for_patient
from smartapp.packet.edits import apply_form
from smartapp.packet.matching import PREFERENCES, Needs, rank_options
from smartapp.packet.merge import merge
from smartapp.packet.model import ITEM_STATUS_LABELS, REVIEW_TYPE_LABELS, ReferralPacket
from smartapp.packet.pdf import render_pdf
from smartapp.packet.store import PacketConflict, PacketFinal, PacketStore, StoredPacket
from smartapp.packet.tracking import (
    AGREEMENT_LABELS,
    STATUS_LABELS,
    Tracking,
    follow_in_worklist,
    patient_referrals,
    tracking,
)
from smartapp.packet.writeback import Filing, filing, send_blocker
from smartapp.web.checklist_groups import group_notice, mark_group
from smartapp.web.csrf import check_csrf, csrf_token
from smartapp.web.deps import Services, SmartSession
from smartapp.web.edit_history import history_lines, known_names
from smartapp.web.errors import AppError
from smartapp.web.packet_conflict import ConflictView, conflict_view
from smartapp.web.security import launch_frame_csp
from smartapp.web.services import AppServices

router = APIRouter()


def who(session: LaunchSession) -> str:
    return session.fhir_user or "unknown user"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def center_endpoint(services: AppServices, packet: ReferralPacket) -> str:
    """The chosen center's FHIR endpoint for electronic referrals, from the directory."""
    option = directory(services).get(packet.destination.center_id) if packet.destination else None
    return option.fhir_endpoint if option else ""


def directory(services: AppServices) -> Directory:
    return load_directory(services.settings.packet_directory)


async def current_packet(services: AppServices, session: LaunchSession) -> StoredPacket:
    """The patient's packet from this EHR, drafted from the record on first use."""
    store = PacketStore(services.engine)
    patient_ref = f"Patient/{session.patient}"
    stored = await store.find(session.iss, patient_ref) if session.patient else None
    if stored is not None:
        return stored
    # The launch's record and findings, as the findings screen read them: no second read of the
    # EHR, and the packet's reasons are the findings the clinician saw.
    results = await services.results.get(services.fhir, session)
    snapshot = results.snapshot
    unavailable: dict[str, str] = {}
    for gap in snapshot.gaps:
        unavailable.setdefault(gap.resource_type, gap.message)
    try:
        # Mapping the record takes a moment: keep the event loop free for other requests.
        packet = await asyncio.to_thread(
            draft_for_patient,
            snapshot.resources,
            patient_ref,
            as_of=date.today(),
            created=now_iso(),
            source=session.iss,
            attachments=snapshot.attachments,
            unavailable=unavailable,
            user=session.fhir_user or "",
            evaluation=results.evaluation,
        )
    except LookupError as exc:
        raise AppError(
            409,
            "no_patient_record",
            "The patient's record could not be read",
            "The EHR did not return the patient's own record, so no packet can be drafted.",
            "Relaunch SecondLook from the patient's chart.",
        ) from exc
    packet.data_issues += [g.message for g in snapshot.gaps]
    # As the clinician left the findings: dismissed ones out, added ones in.
    actions = await list_decisions(services.engine, session.iss, session.patient or "")
    packet = decisions.apply_to_draft(packet, results.evaluation.findings, actions)
    created = await store.create(packet, iss=session.iss, who=who(session))
    await follow_in_worklist(services.engine, created, "draft")
    return created


async def reason_offers(
    services: AppServices, session: LaunchSession, stored: StoredPacket
) -> decisions.Offers | None:
    """For a draft: findings new since the draft and findings dismissed since, to add or remove."""
    if stored.packet.status != "draft":
        return None
    results = await services.results.get(services.fhir, session)
    actions = await list_decisions(services.engine, session.iss, session.patient or "")
    return decisions.offers(stored.packet, results.evaluation.findings, actions)


def finalize_refusal(before: ReferralPacket, after: ReferralPacket) -> list[str]:
    """What is missing when an edit marks a draft final; [] when it may (or does not try to)."""
    if after.status != "final" or before.status == "final":
        return []
    return after.finalize_problems()


async def full_state(
    request: Request, services: AppServices, session: LaunchSession, sid: str, stored: StoredPacket
) -> dict[str, Any]:
    store = PacketStore(services.engine)
    referrals = await patient_referrals(services.engine, stored.iss, stored.packet.patient.reference)
    current = next((t for s, t in referrals if s.packet.id == stored.packet.id), Tracking("draft", []))
    deliveries = await DeliveryStore(services.engine).for_packet(stored.packet.id)
    offered = await reason_offers(services, session, stored)
    filed = await filing(services.engine, stored.packet.id)
    state = state_json(
        stored,
        session,
        request,
        sid,
        await store.history(stored.packet.id),
        filed.receipts,
        referrals,
        filing=filed,
        deliveries=[d.to_json() for d in deliveries],
        delivery=delivery_blocker(
            services.registry,
            stored.packet,
            current.status,
            current.label,
            center_endpoint(services, stored.packet),
        ),
    )
    # For a draft: findings new or dismissed since it was drafted (`key` goes in a PUT's reasons by hand,
    # or in the form's action "offer:<key>").
    state["offers"] = {
        "add": [vars(o) for o in offered.add] if offered else [],
        "remove": [vars(o) for o in offered.remove] if offered else [],
        "left_out": [vars(o) for o in offered.left_out] if offered else [],
    }
    return state


def state_json(
    stored: StoredPacket,
    session: LaunchSession,
    request: Request,
    sid: str,
    history: list[Any],
    receipts: list[dict[str, Any]],
    referrals: list[tuple[StoredPacket, Tracking]],
    *,
    filing: Filing,
    deliveries: list[dict[str, Any]] | None = None,
    delivery: str = "",
) -> dict[str, Any]:
    blocker = send_blocker(session.granted, stored.packet)
    states = {s.packet.id: t for s, t in referrals}
    return {
        "version": stored.version,
        "status": stored.packet.status,
        "packet": stored.packet.to_json(),
        "tracking": states[stored.packet.id].to_json()
        if stored.packet.id in states
        else Tracking("draft", []).to_json(),
        # The patient's other referrals from this EHR (declined, amended, to another center), newest first.
        "earlier": [
            {"id": s.packet.id, "version": s.version, "packet": s.packet.to_json(), "tracking": t.to_json()}
            for s, t in referrals
            if s.packet.id != stored.packet.id
        ],
        "history": [
            {"version": e.version, "who": e.who, "at": e.at.isoformat(), "changes": e.changes}
            for e in history
        ],
        "receipts": receipts,
        "send": {"allowed": not blocker, "reason": blocker},
        # Filing in the EHR: filed or not, the last attempt's error when it failed, every attempt.
        "filing": filing.to_json(),
        # Sending to the receiving center's FHIR endpoint: every attempt, and whether it is possible now.
        "deliveries": deliveries or [],
        "deliver": {"allowed": not delivery, "reason": delivery},
        "csrf_token": csrf_token(request, sid),
    }


@router.get("/s/{sid}/packet", include_in_schema=False, response_class=HTMLResponse)
async def packet_page(
    request: Request,
    services: Services,
    session: SmartSession,
    sid: str,
    state: str = "",
    remote: str = "",
    notice: str = "",
    bulk: str = "",
) -> Response:
    stored = await current_packet(services, session)
    return await render_page(
        request,
        services,
        session,
        sid,
        stored,
        state=state,
        remote=remote == "1",
        notice=notice,
        group_notice=group_notice(bulk),
    )


async def render_page(
    request: Request,
    services: AppServices,
    session: LaunchSession,
    sid: str,
    stored: StoredPacket,
    *,
    state: str = "",
    remote: bool = False,
    notice: str = "",
    alert: str = "",
    missing: list[str] | None = None,
    status_code: int = 200,
    tracking_alert: str = "",
    opinion_form: dict[str, str] | None = None,
    group_notice: dict[str, str] | None = None,
    conflict: ConflictView | None = None,
) -> Response:
    store = PacketStore(services.engine)
    places = directory(services)
    needs = Needs.of(stored.packet)
    referrals = await patient_referrals(services.engine, stored.iss, stored.packet.patient.reference)
    current = next((t for s, t in referrals if s.packet.id == stored.packet.id), None) or await tracking(
        services.engine, stored
    )
    history = await store.history(stored.packet.id)
    names = await known_names(
        services,
        session,
        stored.packet,
        [e.who for e in history],
        [e for _, t in referrals for e in t.events],
    )
    context = {
        "offers": await reason_offers(services, session, stored),
        "tracking": current,
        "earlier": [(s, t) for s, t in referrals if s.packet.id != stored.packet.id],
        "outside_reports": await outside_report.for_packets(
            services.engine, [stored.packet.id, *(s.packet.id for s, _ in referrals)]
        ),
        "tracking_alert": tracking_alert,
        "agreements": AGREEMENT_LABELS,
        "status_labels": STATUS_LABELS,
        "opinion_form": opinion_form or {},
        "sid": sid,
        "packet": stored.packet,
        "version": stored.version,
        "csrf": csrf_token(request, sid),
        "history": history_lines(history, names, session.fhir_user),
        "filing": await filing(services.engine, stored.packet.id),
        "send_blocker": send_blocker(session.granted, stored.packet),
        "deliveries": await DeliveryStore(services.engine).for_packet(stored.packet.id),
        "delivery_blocker": delivery_blocker(
            services.registry,
            stored.packet,
            current.status,
            current.label,
            center_endpoint(services, stored.packet),
        ),
        "center_endpoint": center_endpoint(services, stored.packet),
        "notice": notice,
        "alert": alert,
        "picker": destination_picker(places, stored.packet, needs, state=state, remote=remote),
        "needs": needs,
        "review_labels": REVIEW_TYPE_LABELS,
        "preferences": PREFERENCES,
        "centers": sorted({(o.center_id, o.center) for o in places.options}, key=lambda c: c[1]),
        "states": places.states(),
        "state": state,
        "remote": remote,
        "directory": places,
        "missing": missing or [],
        "item_statuses": ITEM_STATUS_LABELS,
        "group_notice": group_notice,
        "conflict": conflict,
    }
    response = services.templates.TemplateResponse(request, "packet.html", context, status_code=status_code)
    response.headers["Content-Security-Policy"] = launch_frame_csp(
        services.registry, services.settings, session.iss
    )
    return response


TOP_MATCHES = 5


def destination_picker(
    places: Directory, packet: ReferralPacket, needs: Needs, *, state: str, remote: bool
) -> dict[str, Any]:
    """The destination picker's groups: the best matches, the other programs, and those whose
    stated exclusions apply to this patient (last, with the reason). The chosen program is always
    offered, even when the filters would hide it, so saving never drops it."""
    options = places.search(state=state, remote=remote or None)
    chosen = places.get(packet.destination.center_id) if packet.destination else None
    if chosen is not None and chosen not in options:
        options = [chosen, *options]
    matches = rank_options(options, needs)
    open_ = [m for m in matches if not m.excluded]
    best, more = open_[:TOP_MATCHES], open_[TOP_MATCHES:]
    return {
        "best": best,
        "more": more,
        "excluded": [m for m in matches if m.excluded],
        "chosen": chosen,
        "chosen_in_more": chosen is not None and any(m.option == chosen for m in more),
        "filtered": bool(state or remote),
    }


@router.post("/s/{sid}/packet", include_in_schema=False, response_class=HTMLResponse)
async def save_form(request: Request, services: Services, session: SmartSession, sid: str) -> Response:
    form = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
    fields = dict(form)
    check_csrf(request, sid, fields.get("csrf"))
    stored = await current_packet(services, session)
    try:
        expected = int(fields.get("version", ""))
    except ValueError:
        expected = -1
    updated = apply_form(stored.packet, form, directory(services))
    action = fields.get("action", "")
    if action.startswith("offer:") and updated.status == "draft":
        # Adding a new finding or removing a dismissed one saves the form's edits with it.
        results = await services.results.get(services.fhir, session)
        actions = await list_decisions(services.engine, session.iss, session.patient or "")
        updated = (
            decisions.take_offer(updated, action.removeprefix("offer:"), results.evaluation.findings, actions)
            or updated
        )
    bulk = mark_group(updated, action)
    missing = finalize_refusal(stored.packet, updated)
    if missing:
        updated.status = "draft"  # the edits are kept; only "final" waits for what is missing
    try:
        saved = await PacketStore(services.engine).save(updated, expected, who(session))
    except PacketConflict as conflict:
        return await conflict_page(request, services, session, sid, conflict.current, form, expected)
    except PacketFinal as final:
        return await render_page(request, services, session, sid, stored, alert=str(final), status_code=409)
    if missing:
        return await render_page(request, services, session, sid, saved, missing=missing, status_code=422)
    if fields.get("action") == "filter":
        # The edits are saved first, then the centers are filtered: filtering never drops typed text.
        query = urlencode(
            {
                k: v
                for k, v in (
                    ("state", fields.get("filter_state", "")),
                    ("remote", fields.get("filter_remote", "")),
                )
                if v
            }
            | {"notice": "saved"}
        )
        return RedirectResponse(f"/s/{sid}/packet?{query}", status_code=303)
    notice = "final" if updated.status == "final" else "saved"
    if group_notice(bulk):
        # Back at the group the button was in, with what it did.
        query = urlencode({"notice": notice, "bulk": bulk})
        category = bulk.partition(":")[0]
        return RedirectResponse(f"/s/{sid}/packet?{query}#checklist-{category}", status_code=303)
    return RedirectResponse(f"/s/{sid}/packet?notice={notice}", status_code=303)


async def conflict_page(
    request: Request,
    services: AppServices,
    session: LaunchSession,
    sid: str,
    current: StoredPacket,
    form: list[tuple[str, str]],
    expected: int,
) -> Response:
    """Someone saved since this form was loaded: nothing is saved, and nothing typed is lost. The
    form comes back on the newest version with this user's changes merged in, typed text both
    changed shown beside the saved text, so saving again is a choice made after reading theirs.
    (A finding's add/remove button is not replayed: the page offers it again.)"""
    store = PacketStore(services.engine)
    places = directory(services)
    base = await store.as_of(current, expected)
    mine = apply_form(base if base is not None else current.packet, form, places)
    mark_group(mine, dict(form).get("action", ""))
    merged = merge(base, current.packet, mine, places)
    history = await store.history(current.packet.id)
    since = [e for e in history if e.version > expected] if base is not None else history[-1:]
    view = conflict_view(merged, since, session.fhir_user, current.packet, current.updated_at)
    kept = replace(current, packet=merged.packet)
    return await render_page(request, services, session, sid, kept, conflict=view, status_code=409)


@router.get("/api/s/{sid}/packet", tags=["packet"])
async def get_packet(request: Request, services: Services, session: SmartSession, sid: str) -> dict[str, Any]:
    """The launch patient's referral packet (drafted on first request), its edit history and receipts."""
    stored = await current_packet(services, session)
    return await full_state(request, services, session, sid, stored)


@router.put(
    "/api/s/{sid}/packet",
    tags=["packet"],
    responses={
        409: {"description": "Edited by someone else, or final"},
        422: {"description": "Marked final while something is missing: `missing` lists what, in words"},
    },
)
async def put_packet(
    request: Request,
    services: Services,
    session: SmartSession,
    sid: str,
    version: Annotated[int, Body()],
    packet: Annotated[dict[str, Any], Body()],
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> Response:
    """Save an edited packet. `version` is the version the edit started from; if someone saved
    since, nothing is saved and the answer is 409 with the current version and packet."""
    check_csrf(request, sid, x_csrf_token)
    stored = await current_packet(services, session)
    try:
        edited = ReferralPacket.model_validate(packet)
    except ValueError as exc:
        raise AppError(422, "invalid_packet", "The packet is not valid", str(exc)[:500]) from exc
    missing = finalize_refusal(stored.packet, edited)
    if missing:
        return JSONResponse(
            {
                "error": "not_ready",
                "message": "The packet cannot be marked final yet.",
                "missing": missing,
                "current_version": stored.version,
            },
            status_code=422,
        )
    store = PacketStore(services.engine)
    try:
        saved = await store.save(edited.model_copy(update={"id": stored.packet.id}), version, who(session))
    except PacketConflict as conflict:
        body = {
            "error": "conflict",
            "message": str(conflict),
            "current_version": conflict.current.version,
            "current": conflict.current.packet.to_json(),
        }
        return JSONResponse(body, status_code=409)
    except PacketFinal as final:
        return JSONResponse(
            {"error": "final", "message": str(final), "current_version": stored.version}, status_code=409
        )
    return JSONResponse(await full_state(request, services, session, sid, saved))


@router.get("/api/s/{sid}/packet.pdf", tags=["packet"], response_class=Response)
async def packet_pdf(services: Services, session: SmartSession) -> Response:
    stored = await current_packet(services, session)
    return Response(
        await asyncio.to_thread(render_pdf, stored.packet),
        media_type="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="referral-packet.pdf"'},
    )


@router.get("/api/s/{sid}/packet/fhir", tags=["packet"])
async def packet_fhir(services: Services, session: SmartSession) -> Response:
    """The packet as a FHIR document Bundle: Composition first, then every resource it references
    (patient, referring clinician, coverage, conditions, reports with their texts, ...), the
    referral as ServiceRequest + Task, and the PDF as DocumentReference + Binary."""
    stored = await current_packet(services, session)
    _, bundle = await packet_document(services, stored)
    return JSONResponse(bundle, media_type="application/fhir+json")


async def packet_document(services: AppServices, stored: StoredPacket) -> tuple[bytes, dict[str, Any]]:
    """The packet's PDF and its FHIR document. The document's identity is the packet's last
    change (an edit or a status change): the same state always gives the same document id, so a
    center that receives it twice can tell."""
    pdf = await asyncio.to_thread(render_pdf, stored.packet)
    state = await tracking(services.engine, stored)
    changed = max([stored.updated_at, *(e.at for e in state.events)])
    bundle = document.document_bundle(
        stored.packet.to_json(),
        timestamp=changed.isoformat(timespec="seconds"),
        pdf=pdf,
        tracking=state.to_json(),
    )
    return pdf, bundle
