"""The tumor-board coordinator's worklist: the screened patients of the coordinator's own EHR,
filters, CSV export, status changes, and opening a patient's findings with the coordinator's own
access rights. Every view, export, change and opening is audited (`worklist_audit`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from launch.errors import FhirAuthError, FhirError
from launch.sessions import LaunchSession
from smartapp.web.csrf import check_csrf, csrf_token
from smartapp.web.deps import Services
from smartapp.web.errors import AppError
from smartapp.web.labels import TRIGGER_LABELS, URGENCY_LABELS
from smartapp.web.security import SESSION_COOKIE_PREFIX, launch_frame_csp
from smartapp.worklist import queries
from smartapp.worklist.access import (
    audit,
    cached_decision,
    has_allowed_role,
    remember_decision,
    select_patient,
    user_allowed,
)
from smartapp.worklist.tables import STATUSES

router = APIRouter()
log = structlog.get_logger(__name__)
SID = Annotated[str, Path(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
PatientField = Annotated[str, Form(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9.-]+$")]


@dataclass(frozen=True)
class Coordinator:
    session: LaunchSession
    actor: str  # the verified fhirUser
    ehr_name: str


def _not_authorized(ehr_name: str, actor: str) -> AppError:
    return AppError(
        403,
        "worklist_not_authorized",
        "Your account is not authorized for the referral worklist of this EHR",
        f"You are signed in to {ehr_name} as {actor}, which is not one of the tumor-board coordinators "
        "allowed to see SecondLook's referral worklist for this EHR.",
        "Ask your SecondLook administrator to add your user (or your coordinator role) to this EHR's "
        "worklist_users (or worklist_roles) in the EHR registry file.",
    )


async def get_coordinator(request: Request, services: Services, sid: SID) -> Coordinator:
    """The coordinator behind this session: a session without launch patient whose verified
    fhirUser is allowed for the session's EHR. Anything else is refused before any data is read."""
    secret = request.cookies.get(SESSION_COOKIE_PREFIX + sid)
    session = await services.store.get_session(sid, secret) if secret else None
    if session is None:
        raise AppError(
            401,
            "session_not_found",
            "Your SecondLook session has ended",
            "This sign-in is unknown, has expired, or belongs to another browser.",
            "Sign in to the worklist again from the EHR or the standalone launch page.",
        )
    if session.patient:
        raise AppError(
            403,
            "worklist_patient_launch",
            "The worklist is not available from a patient's chart",
            "This SecondLook window was opened for one patient, so it can show only that patient.",
            "Open the referral worklist with a coordinator launch (EHR launch without a patient, or the "
            "coordinator sign-in on the standalone launch page).",
        )
    registration = services.registry.get(session.iss)
    ehr_name = (registration.name if registration else "") or session.iss
    if registration is not None and not (registration.worklist_users or registration.worklist_roles):
        # No worklist for this EHR: a launch without patient is simply a launch without patient.
        raise AppError(
            409,
            "no_patient_context",
            "No patient was selected",
            "The EHR did not send a patient with this launch, so SecondLook has nothing to read.",
            "Open SecondLook from a patient's chart, or choose a patient in the standalone launch.",
        )
    if not session.fhir_user or registration is None:
        raise AppError(
            403,
            "worklist_no_identity",
            "SecondLook could not confirm who you are",
            "The EHR did not return a verified user identity (openid fhirUser) with this sign-in, so "
            "access to the referral worklist cannot be checked.",
            "Sign in again and allow SecondLook to confirm your identity; if it keeps failing, ask the "
            "EHR administrator to grant SecondLook the openid and fhirUser scopes.",
        )
    actor = session.fhir_user
    # The user list is checked on every request (the registry may have changed since the sign-in);
    # a role costs an EHR round trip and is looked up once per session.
    allowed = user_allowed(registration, actor)
    decision = await cached_decision(services.engine, session.id)
    if not allowed and registration.worklist_roles:
        if decision is None or decision["actor"] != actor:
            try:
                allowed = await has_allowed_role(registration, actor, services.fhir.client_for(session))
            except FhirError as exc:
                log.info("worklist_role_lookup_failed", status=exc.status)
                raise AppError(
                    403,
                    "worklist_role_unchecked",
                    "SecondLook could not check your role at the EHR",
                    f"{ehr_name} did not answer the question which roles your account has "
                    f"(HTTP {exc.status or 'no answer'}), so access to the referral worklist cannot be "
                    "granted.",
                    "Try again in a minute. If it keeps failing, sign in to the worklist from the standalone "
                    "launch page, or ask the administrator to list your user in worklist_users.",
                ) from exc
        else:
            allowed = bool(decision["authorized"])
    if decision is None or decision["actor"] != actor or bool(decision["authorized"]) != allowed:
        await remember_decision(services.engine, session.id, session.iss, actor, allowed)
    if not allowed:
        await audit(services.engine, iss=session.iss, actor=actor, action="view-worklist", detail="denied")
        # Nothing in this session is for this user: its tokens (possibly user-level) are not kept.
        await services.store.delete_session(session.id)
        services.results.forget(session.id)
        raise _not_authorized(ehr_name, actor)
    return Coordinator(session, actor, ehr_name)


CoordinatorSession = Annotated[Coordinator, Depends(get_coordinator)]


def _filter_detail(filters: queries.Filters) -> str:
    # Filter values are trigger ids, statuses and group ids: no patient data.
    return urlencode(filters.query()) or "no filters"


@router.get("/s/{sid}/worklist", include_in_schema=False, response_class=HTMLResponse)
async def worklist_page(request: Request, services: Services, coordinator: CoordinatorSession) -> Response:
    session, source = coordinator.session, coordinator.session.iss
    filters = queries.Filters.from_query(request.query_params)
    rows = await queries.list_rows(services.engine, source, filters)
    counts = await queries.status_counts(services.engine, source)
    await audit(
        services.engine,
        iss=source,
        actor=coordinator.actor,
        action="view-worklist",
        detail=_filter_detail(filters),
    )
    query = urlencode(filters.query())
    context = {
        "session": session,
        "ehr_name": coordinator.ehr_name,
        "filters": filters,
        "query": query,
        "rows": rows,
        "matching": await queries.count_rows(services.engine, source, filters),
        "counts": counts,
        "total": sum(counts.values()),
        "run": await queries.latest_run(services.engine, source),
        "groups": await queries.groups(services.engine, source),
        "triggers": sorted(TRIGGER_LABELS.items(), key=lambda item: item[1]),
        "urgencies": URGENCY_LABELS,
        "statuses": [(status, queries.STATUS_LABELS[status]) for status in STATUSES],
        "changes": queries.CHANGES,
        "change_labels": queries.CHANGE_LABELS,
        "status_labels": queries.STATUS_LABELS,
        "csrf": csrf_token(request, session.id),
    }
    response = services.templates.TemplateResponse(request, "worklist.html", context)
    response.headers["Content-Security-Policy"] = launch_frame_csp(
        services.registry, services.settings, source
    )
    return response


@router.get("/s/{sid}/worklist.csv", include_in_schema=False)
async def worklist_csv(request: Request, services: Services, coordinator: CoordinatorSession) -> Response:
    source = coordinator.session.iss
    filters = queries.Filters.from_query(request.query_params)
    rows = await queries.list_rows(services.engine, source, filters, limit=1_000_000)
    await audit(
        services.engine,
        iss=source,
        actor=coordinator.actor,
        action="export-csv",
        detail=f"{len(rows)} rows; {_filter_detail(filters)}",
    )
    name = f"secondlook-worklist-{datetime.now(UTC).date().isoformat()}.csv"
    return Response(
        queries.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _back_to_list(session: LaunchSession, request: Request) -> str:
    query = urlencode(queries.Filters.from_query(request.query_params).query())
    return f"/s/{session.id}/worklist" + (f"?{query}" if query else "")


async def _entry(services: Services, coordinator: Coordinator, patient: str) -> queries.Row:
    # Only a patient on this coordinator's own EHR's worklist; an id from elsewhere is simply unknown.
    entry = await queries.find_entry(services.engine, coordinator.session.iss, patient)
    if entry is None:
        raise AppError(
            404,
            "worklist_entry_not_found",
            "This patient is not on your worklist",
            "SecondLook has no worklist entry for this patient from your EHR.",
            "Go back to the referral worklist and choose a patient from the list.",
        )
    return entry


@router.post("/s/{sid}/worklist/status", include_in_schema=False)
async def change_status(
    request: Request,
    services: Services,
    coordinator: CoordinatorSession,
    patient: PatientField,
    status: Annotated[str, Form()],
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    session = coordinator.session
    check_csrf(request, session.id, csrf)
    if status not in STATUSES:
        raise AppError(
            400,
            "invalid_status",
            "Unknown status",
            "The chosen status is not one SecondLook knows.",
            "Reload the worklist and choose a status from the list.",
        )
    entry = await _entry(services, coordinator, patient)
    await queries.set_status(services.engine, session.iss, entry.patient_id, status)
    await audit(
        services.engine,
        iss=session.iss,
        actor=coordinator.actor,
        action="set-status",
        patient_id=entry.patient_id,
        detail=f"{entry.status} -> {status}",
    )
    return RedirectResponse(_back_to_list(session, request), status_code=303)


@router.post("/s/{sid}/worklist/open", include_in_schema=False)
async def open_patient(
    request: Request,
    services: Services,
    coordinator: CoordinatorSession,
    patient: PatientField,
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    """Open a worklist patient's findings, read with the coordinator's own token: the EHR decides
    whether this user may see this patient."""
    session = coordinator.session
    check_csrf(request, session.id, csrf)
    entry = await _entry(services, coordinator, patient)
    try:
        await services.fhir.client_for(session).read("Patient", entry.patient_id)
    except FhirError as exc:
        denied = isinstance(exc, FhirAuthError) or exc.status in (401, 403)
        await audit(
            services.engine,
            iss=session.iss,
            actor=coordinator.actor,
            action="open-patient",
            patient_id=entry.patient_id,
            detail=f"refused by the EHR ({exc.status})" if denied else f"EHR error ({exc.status})",
        )
        if not denied:
            raise
        raise AppError(
            403,
            "ehr_denied_patient",
            "The EHR did not let your account open this patient",
            f"{coordinator.ehr_name} refused your own access to this patient's record (HTTP {exc.status}). "
            "SecondLook opens worklist patients only with the access rights your EHR account has; it never "
            "uses the screening's system access for this.",
            "If you should see this patient, ask the EHR administrator for access. If you came from a "
            "launch inside the EHR, sign in to the worklist again below: that sign-in asks the EHR for "
            "access to the patients your account may see.",
            link=(
                f"/worklist/signin?{urlencode({'iss': session.iss})}",
                "Sign in with access to your patients",
            ),
        ) from exc
    await select_patient(services.engine, session.id, entry.patient_id)
    await audit(
        services.engine,
        iss=session.iss,
        actor=coordinator.actor,
        action="open-patient",
        patient_id=entry.patient_id,
    )
    return RedirectResponse(f"/s/{session.id}/", status_code=303)
