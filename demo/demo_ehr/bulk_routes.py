"""Bulk Data `$export` endpoints of the demo FHIR API (system, Patient and Group level).

  GET|POST [base]/$export, [base]/Patient/$export, [base]/Group/{id}/$export  -> 202 + Content-Location
  GET      [base]/$export-status/{job}   -> 202 (Retry-After, X-Progress) | 200 manifest | 404
  DELETE   [base]/$export-status/{job}   -> 202 (cancelled / files removed)
  GET      [base]/$export-manifest/{job}/{n} -> page n of a partial manifest (allowPartialManifests)
  GET      [base]/$export-file/{job}/{name}.ndjson -> the NDJSON file (streamed from disk)

Every call needs a bearer token with system scopes (SMART Backend Services); the status and
file URLs only answer the client that started the export.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import FileResponse, Response

from .bearer import Grant, SystemGrant
from .bulk_export import (
    ExportJob,
    ExportParameters,
    ExportRefused,
    apply_parameter,
    parse_get_parameters,
    parse_post_parameters,
)
from .deps import Config, Ehr, Exports
from .fhir_responses import FhirRefusal, FhirResponse, fhir_error, outcome
from .groups import group_members
from .runtime import DemoEhr

NDJSON_MEDIA_TYPE = "application/fhir+ndjson"

router = APIRouter(prefix="/fhir")


async def get_own_job(job_id: str, grant: SystemGrant, exports: Exports) -> ExportJob:
    job = exports.jobs.get(job_id)
    if job is None or job.client_id != grant.client_id:
        raise FhirRefusal(404, "not-found", "No such export: it was cancelled, expired, or never started.")
    return job


OwnJob = Annotated[ExportJob, Depends(get_own_job)]


@router.api_route("/$export", methods=["GET", "POST"])
async def system_export(request: Request, ehr: Ehr, grant: SystemGrant) -> Response:
    return await kick_off(request, ehr, grant, "system")


@router.api_route("/Patient/$export", methods=["GET", "POST"])
async def patient_export(request: Request, ehr: Ehr, grant: SystemGrant) -> Response:
    return await kick_off(request, ehr, grant, "patient")


@router.api_route("/Group/{group_id}/$export", methods=["GET", "POST"])
async def group_export(group_id: str, request: Request, ehr: Ehr, grant: SystemGrant) -> Response:
    return await kick_off(request, ehr, grant, "group", group_id)


async def kick_off(
    request: Request, ehr: DemoEhr, grant: Grant, level: str, group_id: str | None = None
) -> Response:
    if "respond-async" not in request.headers.get("prefer", "").lower():
        return fhir_error(400, "invalid", "Bulk Data export is asynchronous: send 'Prefer: respond-async'.")
    params = await export_parameters(request)
    members = group_export_members(ehr, grant, str(group_id)) if level == "group" else None
    selection = ehr.exports.select(grant.access, level, members, params)
    job = ehr.exports.start(grant.client_id, str(request.url), selection, params)
    body = outcome("informational", f"Export {job.job_id} started.", "information")
    headers = {"Content-Location": f"{ehr.config.fhir_base}/$export-status/{job.job_id}"}
    return FhirResponse(body, status_code=202, headers=headers)


async def export_parameters(request: Request) -> ExportParameters:
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


def group_export_members(ehr: DemoEhr, grant: Grant, group_id: str) -> list[str]:
    if not grant.access.allows("Group", "r"):
        raise ExportRefused(403, "forbidden", "The granted scopes do not allow reading Group.")
    group = ehr.resources.get("Group", group_id)
    if group is None:
        raise ExportRefused(404, "not-found", f"Group/{group_id} is not known.")
    return group_members(group)


@router.get("/$export-status/{job_id}")
async def status(job: OwnJob, exports: Exports, config: Config) -> Response:
    if job.failed:
        return fhir_error(500, "exception", job.failed)
    ready = exports.ready(job)
    partial = job.partial_manifests and exports.seal(job)
    if not ready:
        headers = {"Retry-After": str(config.export_retry_after), "X-Progress": exports.progress(job)}
        if partial:  # allowPartialManifests: the files written so far, final
            return Response(
                json.dumps(exports.manifest(job)),
                status_code=202,
                media_type="application/json",
                headers=headers,
            )
        return Response(status_code=202, headers=headers)
    expires = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3600))
    return Response(
        json.dumps(exports.manifest(job)),
        media_type="application/json",
        headers={"Expires": expires, "Cache-Control": "no-store"},
    )


@router.get("/$export-manifest/{job_id}/{page}")
async def manifest_page(page: int, job: OwnJob, exports: Exports) -> Response:
    """A later page of a partial manifest (the `next` link of the page before it)."""
    document = exports.manifest(job, page)
    if document is None:
        return fhir_error(404, "not-found", f"The export has no manifest page {page}.")
    return Response(
        json.dumps(document), media_type="application/json", headers={"Cache-Control": "no-store"}
    )


@router.delete("/$export-status/{job_id}")
async def cancel(job: OwnJob, exports: Exports) -> Response:
    exports.cancel(job)
    return FhirResponse(
        outcome("informational", f"Export {job.job_id} cancelled.", "information"), status_code=202
    )


@router.get("/$export-file/{job_id}/{name}")
async def download(name: str, job: OwnJob, exports: Exports) -> Response:
    path = exports.file(job, name)
    if path is None:
        return fhir_error(404, "not-found", f"The export has no file {name}.")
    return FileResponse(path, media_type=NDJSON_MEDIA_TYPE)
