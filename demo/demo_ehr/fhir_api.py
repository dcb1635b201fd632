"""The demo EHR's FHIR R4 REST endpoint under `/fhir` (JSON only, Bearer token required)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Request
from starlette.responses import Response

from .bearer import BearerGrant
from .deps import Ehr
from .discovery import capability_statement
from .fhir_responses import FhirResponse, Resource, batch_entry, fhir_error, outcome
from .fhir_service import create, page, read, search
from .runtime import DemoEhr
from .scopes import Access

_FHIR_JSON_TYPES = ("application/fhir+json", "application/json+fhir", "application/json")

router = APIRouter(prefix="/fhir")


@router.get("/metadata")
async def metadata(ehr: Ehr) -> Response:
    return FhirResponse(capability_statement(ehr.config, list(ehr.resources.resources)))


@router.get("")
async def get_pages(request: Request, ehr: Ehr, grant: BearerGrant) -> Response:
    key = request.query_params.get("_getpages")
    if not key:
        return fhir_error(400, "not-supported", "Whole-system search is not supported.")
    status, body = page(
        ehr, grant.access, key, request.query_params.get("_offset"), request.query_params.get("_count")
    )
    return FhirResponse(body, status_code=status)


@router.post("")
async def batch(request: Request, ehr: Ehr, grant: BearerGrant) -> Response:
    try:
        bundle = json.loads(await request.body())
    except ValueError:
        return fhir_error(400, "invalid", "The body is not JSON.")
    if not isinstance(bundle, dict) or bundle.get("type") != "batch":
        return fhir_error(400, "invalid", "Only Bundles of type 'batch' are accepted here.")
    entries = [run_batch_entry(ehr, grant.access, entry) for entry in bundle.get("entry", []) or []]
    return FhirResponse({"resourceType": "Bundle", "type": "batch-response", "entry": entries})


def run_batch_entry(ehr: DemoEhr, access: Access, entry: Any) -> Resource:
    request = entry.get("request") if isinstance(entry, dict) else None
    if not isinstance(request, dict) or request.get("method") != "GET" or not request.get("url"):
        return batch_entry(405, outcome("not-supported", "Only GET entries are supported in a batch."))
    url = str(request["url"])
    if url.startswith(ehr.config.fhir_base):
        url = url[len(ehr.config.fhir_base) :]
    parts = urlsplit(url.lstrip("/"))
    segments = [seg for seg in parts.path.split("/") if seg]
    if len(segments) == 2:
        return batch_entry(*read(ehr, access, segments[0], segments[1]))
    if len(segments) == 1:
        self_url = f"{ehr.config.fhir_base}/{url.lstrip('/')}"
        return batch_entry(*search(ehr, access, segments[0], parse_qsl(parts.query), self_url))
    return batch_entry(400, outcome("invalid", "Unsupported batch entry URL."))


@router.get("/Binary/{rid}")
async def binary(rid: str, request: Request, ehr: Ehr, grant: BearerGrant) -> Response:
    status, body = read(ehr, grant.access, "Binary", rid)
    if status != 200:
        return FhirResponse(body, status_code=status)
    accept = request.headers.get("accept", "*/*").lower()
    content_type = str(body.get("contentType", "application/octet-stream"))
    if any(kind in accept for kind in _FHIR_JSON_TYPES):
        return FhirResponse(body)
    if "*/*" in accept or content_type.lower() in accept:
        try:
            data = base64.b64decode(str(body.get("data", "")), validate=False)
        except (binascii.Error, ValueError):
            return fhir_error(500, "exception", "The stored Binary data is not valid base64.")
        return Response(data, media_type=content_type)
    return fhir_error(406, "not-supported", f"Ask for {content_type} or application/fhir+json.")


@router.get("/{rtype}/{rid}")
async def read_route(rtype: str, rid: str, ehr: Ehr, grant: BearerGrant) -> Response:
    status, body = read(ehr, grant.access, rtype, rid)
    return FhirResponse(body, status_code=status)


@router.get("/{rtype}")
async def search_route(rtype: str, request: Request, ehr: Ehr, grant: BearerGrant) -> Response:
    params = list(request.query_params.multi_items())
    status, body = search(ehr, grant.access, rtype, params, str(request.url))
    return FhirResponse(body, status_code=status)


@router.post("/{rtype}/_search")
async def post_search(rtype: str, request: Request, ehr: Ehr, grant: BearerGrant) -> Response:
    form = await request.form()
    params = list(request.query_params.multi_items())
    params += [(key, value) for key, value in form.multi_items() if isinstance(value, str)]
    self_url = f"{ehr.config.fhir_base}/{rtype}/_search"
    status, body = search(ehr, grant.access, rtype, params, self_url)
    return FhirResponse(body, status_code=status)


@router.post("/{rtype}")
async def create_route(rtype: str, request: Request, ehr: Ehr, grant: BearerGrant) -> Response:
    try:
        payload = json.loads(await request.body())
    except ValueError:
        return fhir_error(400, "invalid", "The body is not JSON.")
    status, body, location = create(ehr, grant.access, rtype, payload, request.headers.get("if-none-exist"))
    headers = {"Location": location} if location else None
    return FhirResponse(body, status_code=status, headers=headers)
