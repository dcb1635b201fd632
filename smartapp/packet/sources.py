"""The record's resources a packet cites, copied at drafting time for the FHIR document.

A FHIR document contains every resource it references, so the packet keeps copies of what it
cites (the Patient, the referring clinician, Coverage and payer, conditions, reports, observations,
specimens, medications, allergies) and of what those cite, as far as the record holds them.
Report texts are copied inline (base64 `data`), since the receiving center cannot fetch our
Binary URLs. A resource that is not valid R4B is left out: the document must validate.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from fhirmaps.elements import parse_date, reference
from fhirmaps.narrative import attachment_bytes
from fhirmaps.r4b import validation_problem
from fhirmaps.reports import binary_map
from smartapp.packet.intake import objs, text
from smartapp.packet.model import Attachment
from smartapp.wording import us_date

Json = dict[str, Any]
# Resources the document never carries: visits and the rest of the chart add nothing for the
# receiving center and pull half the record in through their references.
NOT_CARRIED = frozenset({"Encounter", "Binary", "Provenance", "AuditEvent", "Bundle", "Group", "Location"})


def references_in(value: Any) -> Iterator[str]:
    """Every "Type/id" a resource references (contained "#x" and absolute URLs outside excepted)."""
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and not ref.startswith("#"):
            target = reference(value)
            if target.count("/") == 1:
                yield target
        for item in value.values():
            yield from references_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from references_in(item)


def collect_sources(
    resources: Sequence[Json], roots: Iterable[str], fetched: Mapping[str, tuple[bytes, str]]
) -> tuple[list[Json], list[Attachment]]:
    """Copies of `roots` and everything they reference that the record holds, report texts inline."""
    by_ref = {f"{r.get('resourceType')}/{r.get('id')}": r for r in resources if isinstance(r.get("id"), str)}
    binaries = binary_map([r for r in resources if r.get("resourceType") == "Binary"])
    wanted = [ref for ref in dict.fromkeys(roots) if ref]
    seen: set[str] = set()
    copies: list[Json] = []
    attachments: list[Attachment] = []
    while wanted:
        ref = wanted.pop(0)
        if ref in seen or ref not in by_ref or ref.split("/", 1)[0] in NOT_CARRIED:
            continue
        seen.add(ref)
        resource = by_ref[ref]
        if validation_problem(resource) is not None:
            continue
        resource = copy.deepcopy(resource)
        attachments += _inline_texts(resource, ref, binaries, fetched)
        copies.append(resource)
        wanted.extend(r for r in references_in(resource) if r not in seen)
    return copies, attachments


def _inline_texts(
    resource: Json,
    ref: str,
    binaries: Mapping[str, tuple[bytes, str]],
    fetched: Mapping[str, tuple[bytes, str]],
) -> list[Attachment]:
    forms = objs(resource.get("presentedForm")) + [
        c["attachment"] for c in objs(resource.get("content")) if isinstance(c.get("attachment"), dict)
    ]
    found = []
    for form in forms:
        raw = attachment_bytes(form, binaries, fetched)
        if raw is None:
            continue
        content, content_type = raw
        form["data"] = base64.b64encode(content).decode("ascii")
        form["contentType"] = content_type or "application/octet-stream"
        form.pop("url", None)
        when = parse_date(form.get("creation") or resource.get("effectiveDateTime") or resource.get("date"))
        title = text(form.get("title")) or "Report text"
        found.append(
            Attachment(
                reference=ref,
                title=title,
                content_type=form["contentType"],
                date=us_date(when) if when else "",
            )
        )
    return found
