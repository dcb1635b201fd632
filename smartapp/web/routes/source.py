"""The source-document viewer: the full report text with the evidence highlighted, and the
original attachment (PDF, HTML, RTF, text) served as the EHR stored it."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from smartapp.web.deps import Services, SmartSession
from smartapp.web.errors import AppError
from smartapp.web.security import launch_frame_csp
from smartapp.web.source_text import attachment_bytes, attachments_of, find_resource, highlight, load_document
from smartapp.web.view import evidence_text

router = APIRouter()


def _not_found(reference: str) -> AppError:
    return AppError(
        404,
        "source_not_found",
        "Source document not found",
        f"{reference} is not part of this patient's record as read in this launch.",
        "Go back to the findings; reload the page if the record changed in the EHR.",
    )


@router.get("/s/{sid}/source/{rtype}/{rid}", include_in_schema=False, response_class=HTMLResponse)
async def source_view(
    request: Request,
    services: Services,
    session: SmartSession,
    rtype: str,
    rid: str,
    finding: str | None = None,
    e: int = 0,
) -> Response:
    results = await services.results.get(services.fhir, session)
    resource = find_resource(results.snapshot, rtype, rid)
    if resource is None:
        raise _not_found(f"{rtype}/{rid}")
    document = load_document(results.snapshot, resource)
    needle = evidence_text(results.evaluation, finding, e) if finding else None
    context = {
        "session": session,
        "document": document,
        "segments": highlight(document.text, needle),
        "evidence": needle,
    }
    response = services.templates.TemplateResponse(request, "source.html", context)
    response.headers["Content-Security-Policy"] = launch_frame_csp(
        services.registry, services.settings, session.iss
    )
    return response


_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
_CHARSET = re.compile(r";\s*charset=([A-Za-z0-9._-]{1,40})\s*$", re.IGNORECASE)


def safe_media_type(declared: str) -> str:
    """The EHR's content type as a header value: `type/subtype` and an optional charset, or
    application/octet-stream when it is anything else (CR/LF, quotes, parameters we do not need)."""
    kind, _, params = (declared or "").partition(";")
    kind = kind.strip()
    if not _MEDIA_TYPE.fullmatch(kind):
        return "application/octet-stream"
    charset = _CHARSET.match(";" + params) if params else None
    return f"{kind.lower()}; charset={charset.group(1)}" if charset else kind.lower()


@router.get("/s/{sid}/source/{rtype}/{rid}/attachment/{index}", include_in_schema=False)
async def source_attachment(
    services: Services, session: SmartSession, rtype: str, rid: str, index: int
) -> Response:
    results = await services.results.get(services.fhir, session)
    resource = find_resource(results.snapshot, rtype, rid)
    attachments = attachments_of(resource) if resource else []
    if not 0 <= index < len(attachments):
        raise _not_found(f"{rtype}/{rid} attachment {index}")
    content = attachment_bytes(results.snapshot, attachments[index])
    if content is None:
        raise AppError(
            404,
            "attachment_unavailable",
            "The attachment could not be read",
            "The EHR did not return this document's content in this launch.",
            "Open the document in the EHR, or relaunch SecondLook.",
        )
    data, content_type = content
    return Response(
        data,
        media_type=safe_media_type(content_type),
        headers={
            "Content-Disposition": "inline",
            # Attachments are untrusted content from the EHR: no scripts, no plugins.
            "Content-Security-Policy": (
                "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
            ),
        },
    )
