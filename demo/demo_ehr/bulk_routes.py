"""Bulk Data `$export` endpoints of the demo FHIR API (system, Patient and Group level).

  GET|POST [base]/$export, [base]/Patient/$export, [base]/Group/{id}/$export  -> 202 + Content-Location
  GET      [base]/$export-status/{job}   -> 202 (Retry-After, X-Progress) | 200 manifest | 404
  DELETE   [base]/$export-status/{job}   -> 202 (cancelled / files removed)
  GET      [base]/$export-file/{job}/{Type}.ndjson -> the NDJSON file (streamed from disk)

Every call needs a bearer token with system scopes (SMART Backend Services); the status and
file URLs only answer the client that started the export.
"""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from .bulk_export import (
    ExportJob,
    ExportParameters,
    ExportRefused,
    apply_parameter,
    parse_get_parameters,
    parse_post_parameters,
)
from .fhir_responses import FhirResponse, fhir_error, outcome
from .groups import group_members
from .records import Token
from .runtime import DemoEhr
from .scopes import Access

NDJSON_MEDIA_TYPE = "application/fhir+ndjson"


def build_bulk_routes(ehr: DemoEhr) -> APIRouter:
    router = APIRouter(prefix="/fhir")

    def system_token(request: Request) -> tuple[Token | None, Access | None, Response | None]:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = ehr.memory.access_tokens.get(value.strip()) if scheme.lower() == "bearer" and value else None
        if token is None or token.revoked or token.expires_at <= time.time():
            return None, None, fhir_error(401, "login", "A valid Bearer access token is required.")
        access = Access.from_scope(token.scope, token.context.patient_id)
        if not any(scope.level == "system" for scope in access.scopes):
            return (
                None,
                None,
                fhir_error(
                    403,
                    "forbidden",
                    "Bulk Data export needs a system-level token (SMART Backend Services, system/ scopes); "
                    "patient and user tokens cannot export.",
                ),
            )
        return token, access, None

    async def kick_off(request: Request, level: str, group_id: str | None = None) -> Response:
        token, access, refusal = system_token(request)
        if refusal is not None or token is None or access is None:
            return refusal or fhir_error(401, "login", "A valid Bearer access token is required.")
        if "respond-async" not in request.headers.get("prefer", "").lower():
            return fhir_error(
                400, "invalid", "Bulk Data export is asynchronous: send 'Prefer: respond-async'."
            )
        try:
            params = await _parameters(request)
            members = None
            if level == "group":
                if not access.allows("Group", "r"):
                    raise ExportRefused(403, "forbidden", "The granted scopes do not allow reading Group.")
                group = ehr.resources.get("Group", str(group_id))
                if group is None:
                    raise ExportRefused(404, "not-found", f"Group/{group_id} is not known.")
                members = group_members(group)
            selection = ehr.exports.select(access, level, members, params)
        except ExportRefused as refused:
            return fhir_error(refused.status, refused.code, refused.message)
        job = ehr.exports.start(token.client_id, str(request.url), selection, params)
        body = outcome("informational", f"Export {job.job_id} started.", "information")
        headers = {"Content-Location": f"{ehr.config.fhir_base}/$export-status/{job.job_id}"}
        return FhirResponse(body, status_code=202, headers=headers)

    async def _parameters(request: Request) -> ExportParameters:
        if request.method == "POST":
            try:
                body = json.loads(await request.body())
            except ValueError as exc:
                raise ExportRefused(400, "invalid", "The POST body is not JSON.") from exc
            params = parse_post_parameters(body)
            for name, value in request.query_params.multi_items():  # also accepted next to the body
                apply_parameter(params, name, value)
            return params
        params = parse_get_parameters(list(request.query_params.multi_items()))
        if params.patients:
            raise ExportRefused(400, "invalid", "The patient parameter is only accepted in a POST kick-off.")
        return params

    def own_job(request: Request, job_id: str) -> tuple[ExportJob | None, Response | None]:
        token, _access, refusal = system_token(request)
        if refusal is not None or token is None:
            return None, refusal
        job = ehr.exports.jobs.get(job_id)
        if job is None or job.client_id != token.client_id:
            return None, fhir_error(
                404, "not-found", "No such export: it was cancelled, expired, or never started."
            )
        return job, None

    @router.api_route("/$export", methods=["GET", "POST"])
    async def system_export(request: Request) -> Response:
        return await kick_off(request, "system")

    @router.api_route("/Patient/$export", methods=["GET", "POST"])
    async def patient_export(request: Request) -> Response:
        return await kick_off(request, "patient")

    @router.api_route("/Group/{group_id}/$export", methods=["GET", "POST"])
    async def group_export(group_id: str, request: Request) -> Response:
        return await kick_off(request, "group", group_id)

    @router.get("/$export-status/{job_id}")
    async def status(job_id: str, request: Request) -> Response:
        job, refusal = own_job(request, job_id)
        if job is None:
            return refusal or fhir_error(404, "not-found", "No such export.")
        if job.failed:
            return fhir_error(500, "exception", job.failed)
        if not ehr.exports.ready(job):
            headers = {
                "Retry-After": str(ehr.config.export_retry_after),
                "X-Progress": ehr.exports.progress(job),
            }
            return Response(status_code=202, headers=headers)
        expires = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3600))
        return Response(
            json.dumps(ehr.exports.manifest(job)),
            media_type="application/json",
            headers={"Expires": expires, "Cache-Control": "no-store"},
        )

    @router.delete("/$export-status/{job_id}")
    async def cancel(job_id: str, request: Request) -> Response:
        job, refusal = own_job(request, job_id)
        if job is None:
            return refusal or fhir_error(404, "not-found", "No such export.")
        ehr.exports.cancel(job)
        return FhirResponse(
            outcome("informational", f"Export {job_id} cancelled.", "information"), status_code=202
        )

    @router.get("/$export-file/{job_id}/{name}")
    async def download(job_id: str, name: str, request: Request) -> Response:
        job, refusal = own_job(request, job_id)
        if job is None:
            return refusal or fhir_error(404, "not-found", "No such export.")
        path = ehr.exports.file(job, name)
        if path is None:
            return fhir_error(404, "not-found", f"The export has no file {name}.")
        return FileResponse(path, media_type=NDJSON_MEDIA_TYPE)

    return router
