"""FHIR interactions of the demo EHR behind scope and patient-compartment checks.

Each interaction returns `(status, body)` so the REST routes and batch entries share it.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from .fhir_responses import outcome, searchset
from .records import PageSet
from .runtime import DemoEhr
from .scopes import Access
from .search import Params, matcher, patient_reference, sort_resources, unsupported_params

Resource = dict[str, Any]
Result = tuple[int, Resource]
CREATABLE_TYPES = frozenset({"ServiceRequest", "DocumentReference"})
# Types a search may name even when no fixture holds one (an empty searchset, not a 404).
COMMON_TYPES = frozenset(
    {
        "Patient",
        "Encounter",
        "Condition",
        "Observation",
        "DiagnosticReport",
        "DocumentReference",
        "Binary",
        "Procedure",
        "MedicationRequest",
        "MedicationAdministration",
        "MedicationStatement",
        "Medication",
        "ServiceRequest",
        "CarePlan",
        "Coverage",
        "Specimen",
        "FamilyMemberHistory",
        "AllergyIntolerance",
        "Immunization",
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "Location",
        "Composition",
        "Group",
        "Goal",
        "CareTeam",
        "ImagingStudy",
        "Device",
    }
)


def known_type(ehr: DemoEhr, rtype: str) -> bool:
    return rtype in COMMON_TYPES or ehr.resources.has_type(rtype)


def visible(ehr: DemoEhr, access: Access, resource: Resource, permission: str) -> bool:
    rtype, rid = str(resource["resourceType"]), str(resource["id"])
    if not access.patient_restricted(rtype, permission):
        return True
    if access.patient_id is None:
        return False
    if rtype == "Patient":
        return rid == access.patient_id
    owner = ehr.resources.owner(rtype, rid)
    if (rtype, rid) not in ehr.resources.owners:
        owner = patient_reference(resource)
    return owner is None or owner == access.patient_id


def read(ehr: DemoEhr, access: Access, rtype: str, rid: str) -> Result:
    if not known_type(ehr, rtype):
        return 404, outcome("not-supported", f"Unknown resource type {rtype}.")
    if not access.allows(rtype, "r"):
        return 403, outcome("forbidden", f"The granted scopes do not allow reading {rtype}.")
    resource = ehr.resources.get(rtype, rid)
    if resource is None:
        return 404, outcome("not-found", f"{rtype}/{rid} is not known.")
    if not visible(ehr, access, resource, "r"):
        return 403, outcome("forbidden", "The resource is outside the patient context of this token.")
    return 200, resource


def search(ehr: DemoEhr, access: Access, rtype: str, params: Params, self_url: str) -> Result:
    if not known_type(ehr, rtype):
        return 404, outcome("not-supported", f"Unknown resource type {rtype}.")
    if not access.allows(rtype, "s"):
        return 403, outcome("forbidden", f"The granted scopes do not allow searching {rtype}.")
    if access.patient_restricted(rtype, "s"):
        asked = {
            item.rsplit("Patient/", 1)[-1]
            for key, value in params
            if key in ("patient", "subject")
            for item in value.split(",")
        }
        if asked - {access.patient_id}:
            return 403, outcome("forbidden", "Searches are limited to the patient in context.")
    candidates, rest = _candidates(ehr, rtype, params)
    match = matcher(rest)
    found = [res for res in candidates if match(res) and visible(ehr, access, res, "s")]
    found = sort_resources(found, _last(params, "_sort"))
    ignored = unsupported_params(params)
    notice = (
        outcome("not-supported", f"Ignored search parameters: {', '.join(ignored)}", "information")
        if ignored
        else None
    )
    count = _page_size(ehr, _last(params, "_count"))
    references = [(str(res["resourceType"]), str(res["id"])) for res in found]
    next_url = None
    if len(found) > count:
        key = ehr.memory.save_pages(PageSet(references, len(found), notice))
        next_url = _pages_url(ehr, key, count, count)
    body = searchset(ehr.config.fhir_base, found[:count], len(found), self_url, next_url, notice)
    return 200, body


def _candidates(ehr: DemoEhr, rtype: str, params: Params) -> tuple[list[Resource], Params]:
    """What the search has to look at, and the parameters left to check on each: with a `patient`
    (or `subject`) parameter, the compartment of those patients, which that parameter matches by
    construction (the store files resources under the patient `patient_reference` names)."""
    for index, (name, value) in enumerate(params):
        if name in ("patient", "subject") and rtype != "Patient":
            patients = (item.rsplit("Patient/", 1)[-1] for item in value.split(","))
            return ehr.resources.of_patients(rtype, patients), params[:index] + params[index + 1 :]
    return ehr.resources.of_type(rtype), params


def page(ehr: DemoEhr, access: Access, key: str, offset_text: str | None, count_text: str | None) -> Result:
    page_set = ehr.memory.page_sets.get(key)
    if page_set is None or page_set.expires_at < time.time():
        return 404, outcome("not-found", "This search result page has expired; run the search again.")
    count = _page_size(ehr, count_text)
    offset = int(offset_text) if offset_text and offset_text.isdigit() else 0
    resources = []
    for rtype, rid in page_set.references[offset : offset + count]:
        resource = ehr.resources.get(rtype, rid)
        if resource is None or not access.allows(rtype, "s") or not visible(ehr, access, resource, "s"):
            return 403, outcome("forbidden", "This token may not read this search result.")
        resources.append(resource)
    nxt = _pages_url(ehr, key, offset + count, count) if offset + count < page_set.total else None
    body = searchset(
        ehr.config.fhir_base, resources, page_set.total, _pages_url(ehr, key, offset, count), nxt, None
    )
    return 200, body


def create(
    ehr: DemoEhr, access: Access, rtype: str, body: Any, if_none_exist: str | None
) -> tuple[int, Resource, str | None]:
    if rtype not in CREATABLE_TYPES:
        return 405, outcome("not-supported", f"The demo EHR does not accept new {rtype} resources."), None
    if not access.allows(rtype, "c"):
        return 403, outcome("forbidden", f"The granted scopes do not allow creating {rtype}."), None
    if not isinstance(body, dict) or body.get("resourceType") != rtype:
        return 400, outcome("invalid", f"The body must be a {rtype} resource."), None
    owner = patient_reference(body)
    if access.patient_restricted(rtype, "c") and owner != access.patient_id:
        return 403, outcome("forbidden", "The resource must belong to the patient in context."), None
    if if_none_exist:
        candidates, rest = _candidates(ehr, rtype, parse_qsl(if_none_exist))
        match = matcher(rest)
        existing = [res for res in candidates if match(res) and visible(ehr, access, res, "r")]
        if len(existing) > 1:
            return 412, outcome("duplicate", "More than one resource matches If-None-Exist."), None
        if existing:
            return 200, existing[0], _location(ehr, existing[0])
    resource = dict(body)
    resource["id"] = uuid.uuid4().hex
    resource["meta"] = {"versionId": "1", "lastUpdated": datetime.now(UTC).isoformat(timespec="seconds")}
    ehr.resources.add(resource, owner)
    return 201, resource, _location(ehr, resource)


def _location(ehr: DemoEhr, resource: Resource) -> str:
    version = (resource.get("meta") or {}).get("versionId", "1")
    return f"{ehr.config.fhir_base}/{resource['resourceType']}/{resource['id']}/_history/{version}"


def _last(params: Params, name: str) -> str | None:
    values = [value for key, value in params if key == name]
    return values[-1] if values else None


def _page_size(ehr: DemoEhr, text: str | None) -> int:
    if text is None or not text.isdigit():
        return ehr.config.page_size_default
    return max(1, min(int(text), ehr.config.page_size_max))


def _pages_url(ehr: DemoEhr, key: str, offset: int, count: int) -> str:
    return f"{ehr.config.fhir_base}?{urlencode({'_getpages': key, '_offset': offset, '_count': count})}"
