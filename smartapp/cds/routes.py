"""CDS Hooks endpoints: discovery, the patient-view service, feedback; CORS for browser clients.

Every call must carry a JWT from an allowlisted CDS client; any authentication failure is a
bare 401 (no body, no hint), logged with a reason code and the issuer and jti only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from fhirmaps import json_codec
from smartapp.cds.cards import build_cards
from smartapp.cds.clients import CdsClients, load_clients
from smartapp.cds.discovery import HOOK, SERVICE_ID, discovery_document
from smartapp.cds.evaluation import Evaluator
from smartapp.cds.feedback import FeedbackRequest, record_feedback
from smartapp.cds.fetch import HookRequest, PreconditionFailed, gather_record
from smartapp.cds.jwt_auth import CdsAuthError, CdsCaller, JwtVerifier, KeySetCache
from smartapp.cds.replay import ReplayCache

if TYPE_CHECKING:
    from smartapp.web.services import AppServices

log = structlog.get_logger(__name__)
CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type"


@dataclass
class CdsRuntime:
    clients: CdsClients
    verifier: JwtVerifier
    today: Callable[[], date]
    evaluator: Evaluator


def runtime(request: Request) -> CdsRuntime:
    """Built on first use from the app's services (the HTTP client and database of the lifespan)."""
    state = request.app.state
    existing: CdsRuntime | None = getattr(state, "cds_runtime", None)
    if existing is None:
        services: AppServices = state.services
        clients = load_clients(services.settings)
        verifier = JwtVerifier(clients, KeySetCache(services.http), ReplayCache(services.engine))
        # Tests pin the evaluation date through app.state.cds_today; production uses today's date.
        existing = CdsRuntime(
            clients,
            verifier,
            getattr(state, "cds_today", date.today),
            getattr(state, "cds_evaluator", None) or Evaluator(getattr(state, "cds_workers", None)),
        )
        state.cds_runtime = existing
    return existing


class CdsRoute(APIRoute):
    """Adds CORS headers for configured browser origins and turns auth failures into bare 401s."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except CdsAuthError as exc:
                log.warning("cds_auth_failed", reason=exc.reason, iss=exc.iss, jti=exc.jti)
                response = Response(status_code=401)
            _add_cors(request, response)
            return response

        return handle


def _add_cors(request: Request, response: Response) -> None:
    origin = request.headers.get("origin", "").rstrip("/")
    if origin and origin in runtime(request).clients.cors_origins():
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
            response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"


router = APIRouter(route_class=CdsRoute, tags=["cds-hooks"])


def endpoint_url(request: Request, path: str) -> str:
    # The expected `aud` comes from configuration, never from the request's Host header.
    services: AppServices = request.app.state.services
    return services.settings.public_url + path


async def authenticate(request: Request, path: str) -> CdsCaller:
    return await runtime(request).verifier.verify(
        request.headers.get("authorization"), endpoint_url(request, path)
    )


def bad_request(message: str, status: int = 400) -> JSONResponse:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", "diagnostics": message}],
    }
    return JSONResponse(outcome, status_code=status)


@router.options("/cds-services", include_in_schema=False)
@router.options("/cds-services/{rest:path}", include_in_schema=False)
async def preflight() -> Response:
    return Response(status_code=204)


@router.get("/cds-services")
async def discovery(request: Request) -> JSONResponse:
    await authenticate(request, "/cds-services")
    return JSONResponse(discovery_document())


@router.post("/cds-services/{service_id}")
async def call_service(request: Request, service_id: str) -> Response:
    caller = await authenticate(request, f"/cds-services/{service_id}")
    if service_id != SERVICE_ID:
        return bad_request("No CDS service with this id.", 404)
    started = time.perf_counter()
    try:
        hook = HookRequest.model_validate(json_codec.loads(await request.body()))
    except (ValidationError, ValueError, RecursionError):
        return bad_request(
            "The body is not a valid CDS Hooks request for patient-view "
            "(hook, hookInstance, context.patientId)."
        )
    if hook.hook != HOOK:
        return bad_request(f"This service answers the {HOOK} hook only.")
    services: AppServices = request.app.state.services
    try:
        record = await gather_record(
            hook, caller, services.registry, services.http, services.settings.fhir_max_concurrency
        )
    except PreconditionFailed as exc:
        log.info("cds_precondition_failed", service=SERVICE_ID, missing=exc.missing, iss=caller.iss)
        return JSONResponse(exc.operation_outcome(), status_code=412)
    # The engine is CPU-bound: keep the event loop free for the other hook calls.
    result = await runtime(request).evaluator.evaluate(
        record, hook.context.patientId, runtime(request).today()
    )
    cards = build_cards(result, hook.hookInstance, services.settings.public_url + "/launch")
    log.info(
        "cds_hook_answered",
        service=SERVICE_ID,
        iss=caller.iss,
        cards=len(cards),
        fetched=record.fetched_keys,
        unavailable=len(record.unavailable),
        ms=round((time.perf_counter() - started) * 1000),
    )
    return JSONResponse({"cards": cards})


@router.post("/cds-services/{service_id}/feedback")
async def feedback(request: Request, service_id: str) -> Response:
    caller = await authenticate(request, f"/cds-services/{service_id}/feedback")
    if service_id != SERVICE_ID:
        return bad_request("No CDS service with this id.", 404)
    try:
        body = FeedbackRequest.model_validate(await request.json())
    except (ValidationError, ValueError, RecursionError):
        return bad_request("The body is not valid CDS Hooks feedback (card, outcome, outcomeTimestamp).")
    services: AppServices = request.app.state.services
    stored = await record_feedback(services.engine, SERVICE_ID, caller.iss, body)
    log.info("cds_feedback", service=SERVICE_ID, iss=caller.iss, items=len(body.feedback), new=stored)
    return JSONResponse({})
