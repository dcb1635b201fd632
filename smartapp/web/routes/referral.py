"""After "final": the referral's status, the outside opinion, and a new referral or a corrected
version for the same patient — as forms on the packet page and as JSON. The launch session gives
the patient; an earlier referral of that patient is named by its id in the POST body only."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile as StarletteUpload

from launch.sessions import LaunchSession
from smartapp.packet import outside_report
from smartapp.packet.store import PacketStore, StoredPacket
from smartapp.packet.tracking import Opinion, TransitionRefused, change_status, follow_in_worklist, tracking
from smartapp.web.csrf import CSRF_HEADER, check_csrf
from smartapp.web.deps import Services, SmartSession
from smartapp.web.edit_history import known_names
from smartapp.web.errors import AppError
from smartapp.web.routes.packet import current_packet, full_state, now_iso, render_page, who
from smartapp.web.services import AppServices

router = APIRouter()


class ReportUpload(BaseModel):
    """The outside report file in the JSON API."""

    name: str = Field(min_length=1, max_length=200)
    data: str = Field(description="The file's bytes, base64")


OPINION_FIELDS = ("received", "center", "summary", "agreement")
FIELD_WORDS = {
    "received": "Date received",
    "center": "Center",
    "summary": "Summary",
    "agreement": "Agreement",
}


async def referral_of(
    services: AppServices, session: LaunchSession, referral: str
) -> tuple[StoredPacket, bool]:
    """The launch patient's current packet, or with `referral` one of the patient's earlier ones;
    and whether it is the current (newest) one."""
    current = await current_packet(services, session)
    if not referral or referral == current.packet.id:
        return current, True
    for stored in await PacketStore(services.engine).for_patient(
        current.iss, current.packet.patient.reference
    ):
        if stored.packet.id == referral:
            return stored, False
    raise AppError(
        404,
        "no_such_referral",
        "The referral was not found",
        "This patient has no such referral from this EHR.",
        "Reload the packet page and try again.",
    )


async def user_name(services: AppServices, session: LaunchSession, stored: StoredPacket) -> str:
    """The signed-in user's name for the status history: the packet's sender when that is them,
    else their Practitioner in the launch's record; "" when neither names them."""
    user = session.fhir_user or ""
    if not user:
        return ""
    return (await known_names(services, session, stored.packet, [user])).get(user, "")


async def apply_status(
    services: AppServices,
    session: LaunchSession,
    stored: StoredPacket,
    newest: bool,
    status: str,
    note: str,
    opinion: Opinion | None = None,
) -> None:
    state = await change_status(
        services.engine,
        stored,
        status,
        who=who(session),
        note=note,
        opinion=opinion,
        who_name=await user_name(services, session, stored),
    )
    if newest:  # the worklist follows the patient's newest referral
        await follow_in_worklist(services.engine, stored, state.status)


def opinion_problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        words = FIELD_WORDS.get(field, field)
        if field == "agreement":
            problems.append(
                "Agreement: choose whether the opinion agrees, changes the diagnosis or changes the plan."
            )
        elif field == "received" and item["type"] != "value_error":
            problems.append("Date received: enter the date the opinion arrived.")
        elif item["type"] in ("string_too_short", "missing"):
            problems.append(f"{words}: required.")
        else:
            problems.append(f"{words}: {str(item['msg']).removeprefix('Value error, ')}.")
    return problems


@router.post("/s/{sid}/packet/status", include_in_schema=False)
async def status_form(request: Request, services: Services, session: SmartSession, sid: str) -> Response:
    fields = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    check_csrf(request, sid, fields.get("csrf"))
    stored, newest = await referral_of(services, session, fields.get("referral", ""))
    try:
        await apply_status(
            services, session, stored, newest, fields.get("status", ""), fields.get("note", "")
        )
    except TransitionRefused as refused:
        current = await current_packet(services, session)
        return await render_page(
            request, services, session, sid, current, tracking_alert=str(refused), status_code=409
        )
    return RedirectResponse(f"/s/{sid}/packet?notice=status", status_code=303)


@router.post("/s/{sid}/packet/opinion", include_in_schema=False)
async def opinion_form(request: Request, services: Services, session: SmartSession, sid: str) -> Response:
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(request, sid, fields.get("csrf"))
    stored, newest = await referral_of(services, session, fields.get("referral", ""))
    typed = {k: fields.get(k, "") for k in OPINION_FIELDS}
    upload = form.get("report")
    problem = ""
    report: tuple[str, str, bytes] | None = None
    if isinstance(upload, StarletteUpload) and upload.filename:
        try:
            report = outside_report.checked(upload.filename, await upload.read(outside_report.MAX_BYTES + 1))
        except outside_report.ReportRejected as rejected:
            problem = f"The outside report file was not kept: {rejected}"
    if problem:
        return await render_page(
            request,
            services,
            session,
            sid,
            await current_packet(services, session),
            status_code=422,
            opinion_form=typed,
            tracking_alert=problem + " The opinion was not recorded; choose another file or none.",
        )
    try:
        opinion = Opinion.model_validate({k: v for k, v in typed.items() if v})
        await record_opinion(services, session, stored, newest, fields.get("note", ""), opinion, report)
    except ValidationError as invalid:
        current = await current_packet(services, session)
        # What the user typed is shown again beside the problems, never dropped.
        return await render_page(
            request,
            services,
            session,
            sid,
            current,
            status_code=422,
            opinion_form=typed,
            tracking_alert="The opinion was not recorded: " + " ".join(opinion_problems(invalid)),
        )
    except TransitionRefused as refused:
        current = await current_packet(services, session)
        return await render_page(
            request,
            services,
            session,
            sid,
            current,
            tracking_alert=str(refused),
            status_code=409,
            opinion_form=typed,
        )
    return RedirectResponse(f"/s/{sid}/packet?notice=opinion", status_code=303)


async def record_opinion(
    services: AppServices,
    session: LaunchSession,
    stored: StoredPacket,
    newest: bool,
    note: str,
    opinion: Opinion,
    report: tuple[str, str, bytes] | None,
) -> None:
    """The opinion (the referral becomes opinion returned) and, when given, the report file with it."""
    await apply_status(services, session, stored, newest, "completed", note, opinion)
    if report is not None:
        state = await tracking(services.engine, stored)
        name, content_type, data = report
        await outside_report.keep(
            services.engine, stored.packet.id, state.events[-1].seq, name, content_type, data
        )


@router.get("/s/{sid}/packet/outside-report/{report_id}", include_in_schema=False)
async def outside_report_file(services: Services, session: SmartSession, report_id: int) -> Response:
    """The outside report as uploaded; only for a referral of the launch's patient."""
    found = await outside_report.read_for_patient(
        services.engine, report_id, iss=session.iss, patient_ref=f"Patient/{session.patient}"
    )
    if found is None:
        raise AppError(
            404,
            "no_such_report",
            "The outside report was not found",
            "This patient has no such outside report from this EHR.",
            "Go back to the packet page and open the report from there.",
        )
    report, data = found
    extension = "pdf" if report.content_type == outside_report.PDF else "txt"
    return Response(
        data,
        media_type=report.content_type,
        headers={"Content-Disposition": f'attachment; filename="outside-report-{report.id}.{extension}"'},
    )


@router.post("/s/{sid}/packet/new", include_in_schema=False)
async def new_form(request: Request, services: Services, session: SmartSession, sid: str) -> Response:
    fields = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    check_csrf(request, sid, fields.get("csrf"))
    amend = fields.get("amend") == "1"
    try:
        await start_successor(services, session, amend=amend)
    except TransitionRefused as refused:
        current = await current_packet(services, session)
        return await render_page(
            request, services, session, sid, current, tracking_alert=str(refused), status_code=409
        )
    return RedirectResponse(f"/s/{sid}/packet?notice={'amend' if amend else 'new'}", status_code=303)


async def start_successor(services: AppServices, session: LaunchSession, *, amend: bool) -> StoredPacket:
    """A new draft prefilled from the patient's newest packet, which must be final."""
    current = await current_packet(services, session)
    if current.packet.status != "final":
        raise TransitionRefused(
            "This patient already has a draft referral: finish or change that one "
            "(a new referral or a corrected version starts from a final packet)."
        )
    draft = current.packet.successor(created=now_iso(), amend=amend)
    created = await PacketStore(services.engine).create(draft, iss=current.iss, who=who(session))
    await follow_in_worklist(services.engine, created, "draft")
    return created


@router.post(
    "/api/s/{sid}/packet/status",
    tags=["packet"],
    responses={
        409: {"description": "Not possible from the current status: `message` says why and what is possible"}
    },
)
async def status_api(
    request: Request,
    services: Services,
    session: SmartSession,
    sid: str,
    status: Annotated[str, Body()],
    note: Annotated[str, Body()] = "",
    referral: Annotated[str, Body()] = "",
    x_csrf_token: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
) -> Response:
    """Change the referral's tracked status (sent, received, accepted, declined, scheduled,
    cancelled) with an optional note; `referral` names an earlier referral of the patient, else
    the newest one. Returns the packet state."""
    check_csrf(request, sid, x_csrf_token)
    stored, newest = await referral_of(services, session, referral)
    try:
        await apply_status(services, session, stored, newest, status, note)
    except TransitionRefused as refused:
        return JSONResponse({"error": "invalid_transition", "message": str(refused)}, status_code=409)
    return JSONResponse(
        await full_state(request, services, session, sid, await current_packet(services, session))
    )


@router.post(
    "/api/s/{sid}/packet/opinion",
    tags=["packet"],
    responses={
        409: {"description": "The referral is not in a state that can receive an opinion"},
        422: {"description": "`missing` lists what is wrong with the opinion, in words"},
    },
)
async def opinion_api(
    request: Request,
    services: Services,
    session: SmartSession,
    sid: str,
    opinion: Annotated[dict[str, Any], Body()],
    note: Annotated[str, Body()] = "",
    referral: Annotated[str, Body()] = "",
    report: Annotated[ReportUpload | None, Body()] = None,
    x_csrf_token: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
) -> Response:
    """Record the outside opinion (`received` date, `center`, `summary`, `agreement`: agrees,
    changes-diagnosis or changes-plan); the referral becomes completed (opinion returned).
    `report` optionally carries the center's report file (PDF or plain text, base64, ≤ 10 MB)."""
    check_csrf(request, sid, x_csrf_token)
    stored, newest = await referral_of(services, session, referral)
    kept: tuple[str, str, bytes] | None = None
    if report is not None:
        try:
            kept = outside_report.checked(report.name, base64.b64decode(report.data, validate=True))
        except (outside_report.ReportRejected, binascii.Error, ValueError) as rejected:
            reason = (
                rejected if isinstance(rejected, outside_report.ReportRejected) else "the data is not base64."
            )
            return JSONResponse(
                {
                    "error": "invalid_report",
                    "message": "The opinion was not recorded.",
                    "missing": [f"Outside report: {reason}"],
                },
                status_code=422,
            )
    try:
        parsed = Opinion.model_validate(opinion)
        await record_opinion(services, session, stored, newest, note, parsed, kept)
    except ValidationError as invalid:
        return JSONResponse(
            {
                "error": "invalid_opinion",
                "message": "The opinion was not recorded.",
                "missing": opinion_problems(invalid),
            },
            status_code=422,
        )
    except TransitionRefused as refused:
        return JSONResponse({"error": "invalid_transition", "message": str(refused)}, status_code=409)
    return JSONResponse(
        await full_state(request, services, session, sid, await current_packet(services, session))
    )


@router.post(
    "/api/s/{sid}/packet/new",
    tags=["packet"],
    status_code=201,
    responses={409: {"description": "The patient already has a draft referral"}},
)
async def new_api(
    request: Request,
    services: Services,
    session: SmartSession,
    sid: str,
    amend: Annotated[bool, Body(embed=True)] = False,
    x_csrf_token: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
) -> Response:
    """Start a new draft for the same patient, prefilled from the final packet: another referral
    (destination to choose) or, with `amend`, a corrected version for the same center."""
    check_csrf(request, sid, x_csrf_token)
    try:
        created = await start_successor(services, session, amend=amend)
    except TransitionRefused as refused:
        return JSONResponse({"error": "draft_exists", "message": str(refused)}, status_code=409)
    return JSONResponse(await full_state(request, services, session, sid, created), status_code=201)
