"""FHIR search semantics of the demo EHR: the parameters SecondLook and common clients send.

Unsupported parameters are ignored (lenient handling) and reported back to the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from typing import Any

Resource = dict[str, Any]
Params = list[tuple[str, str]]

CONTROL_PARAMS = frozenset({"_count", "_sort", "_getpages", "_offset", "_format"})
SUPPORTED_PARAMS = frozenset(
    {
        "patient",
        "subject",
        "category",
        "code",
        "date",
        "date:missing",
        "status",
        "_id",
        "identifier",
        "encounter",
        "name",
        "name:contains",
    }
)
# Which element carries the clinically meaningful date of each type (the `date` parameter).
DATE_PATHS: dict[str, tuple[str, ...]] = {
    "Observation": ("effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued"),
    "DiagnosticReport": ("effectiveDateTime", "effectivePeriod", "issued"),
    "Condition": ("onsetDateTime", "onsetPeriod", "recordedDate"),
    "Procedure": ("performedDateTime", "performedPeriod"),
    "MedicationRequest": ("authoredOn",),
    "MedicationAdministration": ("effectiveDateTime", "effectivePeriod"),
    "MedicationStatement": ("effectiveDateTime", "effectivePeriod", "dateAsserted"),
    "ServiceRequest": ("authoredOn", "occurrenceDateTime", "occurrencePeriod"),
    "DocumentReference": ("date", "context.period"),
    "CarePlan": ("period", "created"),
    "Encounter": ("period",),
    "Coverage": ("period",),
    "Specimen": ("collection.collectedDateTime", "receivedTime"),
    "Immunization": ("occurrenceDateTime",),
    "AllergyIntolerance": ("recordedDate",),
    "FamilyMemberHistory": ("date",),
    "Composition": ("date",),
    "Claim": ("created",),
    "ExplanationOfBenefit": ("created",),
}
CODE_PATHS: dict[str, str] = {
    "MedicationRequest": "medicationCodeableConcept",
    "MedicationAdministration": "medicationCodeableConcept",
    "MedicationStatement": "medicationCodeableConcept",
    "DocumentReference": "type",
    "Coverage": "type",
}
_PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge", "sa", "eb")


def unsupported_params(params: Params) -> list[str]:
    # Of the modifiers only `date:missing` is supported; others (`code:in`...) are ignored, and said so.
    names = {name for name, _ in params}
    return sorted(name for name in names if name not in SUPPORTED_PARAMS | CONTROL_PARAMS)


def matcher(params: Params) -> Callable[[Resource], bool]:
    """Whether a resource matches every supported parameter of a search, its parameters read once
    rather than once per candidate (unsupported ones are ignored and reported by the caller)."""
    checks: list[Callable[[Resource], bool]] = []
    for name, value in params:
        if name == "date":
            checks.append(_date_check(value))
        elif name in ("patient", "subject"):
            checks.append(_patient_check(value))
        elif (check := _CHECKS.get(name)) is not None:
            checks.append(partial(check, value=value))
    return lambda resource: all(check(resource) for check in checks)


def _patient_check(value: str) -> Callable[[Resource], bool]:
    wanted = {item.rsplit("Patient/", 1)[-1] for item in value.split(",")}
    return lambda resource: (
        resource.get("resourceType") != "Patient" and patient_reference(resource) in wanted
    )


def _date_check(value: str) -> Callable[[Resource], bool]:
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    wanted = parse_instant(value[2:] if value[:2] in _PREFIXES else value)
    if wanted is None:
        return lambda resource: True
    w_start, w_end = wanted
    compare: Callable[[datetime, datetime], bool] = {
        "eq": lambda a_start, a_end: w_start <= a_start and a_end <= w_end,
        "ne": lambda a_start, a_end: not (w_start <= a_start and a_end <= w_end),
        "lt": lambda a_start, a_end: a_start < w_start,
        "le": lambda a_start, a_end: a_start < w_end,
        "gt": lambda a_start, a_end: a_end > w_end,
        "ge": lambda a_start, a_end: a_end > w_start,
        "sa": lambda a_start, a_end: a_start >= w_end,
        "eb": lambda a_start, a_end: a_end <= w_start,
    }[prefix]

    def check(resource: Resource) -> bool:
        actual = resource_interval(resource)
        return actual is not None and compare(*actual)

    return check


def patient_reference(resource: Resource) -> str | None:
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id"))
    for key in ("subject", "patient", "beneficiary"):
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            ref_text: str = ref["reference"]
            if "Patient/" in ref_text:
                return ref_text.rsplit("Patient/", 1)[1]
    return None


def _codings(value: Any) -> Iterable[dict[str, Any]]:
    concepts = value if isinstance(value, list) else [value]
    for concept in concepts:
        if isinstance(concept, dict):
            yield from (c for c in concept.get("coding", []) if isinstance(c, dict))


def _token_hit(codings: list[dict[str, Any]], token: str) -> bool:
    if "|" not in token:
        return any(c.get("code") == token for c in codings)
    system, code = token.split("|", 1)
    for coding in codings:
        system_ok = coding.get("system") == system if system else "system" not in coding
        if system_ok and (not code or coding.get("code") == code):
            return True
    return False


def _match_category(resource: Resource, value: str) -> bool:
    codings = list(_codings(resource.get("category")))
    return any(_token_hit(codings, token) for token in value.split(","))


def _match_code(resource: Resource, value: str) -> bool:
    path = CODE_PATHS.get(str(resource.get("resourceType")), "code")
    codings = list(_codings(resource.get(path)))
    return any(_token_hit(codings, token) for token in value.split(","))


def _match_status(resource: Resource, value: str) -> bool:
    return str(resource.get("status")) in value.split(",")


def _match_id(resource: Resource, value: str) -> bool:
    return str(resource.get("id")) in value.split(",")


def _match_identifier(resource: Resource, value: str) -> bool:
    for token in value.split(","):
        system, _, ident = token.rpartition("|")
        for item in resource.get("identifier", []) or []:
            if item.get("value") == ident and (not system or item.get("system") == system):
                return True
    return False


def _match_encounter(resource: Resource, value: str) -> bool:
    ref = resource.get("encounter") or (resource.get("context") or {}).get("encounter")
    refs = ref if isinstance(ref, list) else [ref]
    wanted = {item.rsplit("Encounter/", 1)[-1] for item in value.split(",")}
    return any(
        isinstance(r, dict) and str(r.get("reference", "")).rsplit("Encounter/", 1)[-1] in wanted
        for r in refs
    )


# Every date search compares each candidate's date: the same few thousand strings, parsed once.
@lru_cache(maxsize=65536)
def parse_instant(text: str) -> tuple[datetime, datetime] | None:
    """The [start, end) interval a FHIR date/dateTime/instant denotes at its precision."""
    text = text.strip()
    try:
        if len(text) == 4:
            start = datetime(int(text), 1, 1, tzinfo=UTC)
            return start, start.replace(year=start.year + 1)
        if len(text) == 7:
            start = datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=UTC)
            nxt = (
                start.replace(year=start.year + 1, month=1)
                if start.month == 12
                else start.replace(month=start.month + 1)
            )
            return start, nxt
        if len(text) == 10:
            start = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return start, start + timedelta(days=1)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment, moment + timedelta(seconds=1)
    except ValueError:
        return None


def _lookup(resource: Resource, path: str) -> Any:
    value: Any = resource
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def resource_interval(resource: Resource) -> tuple[datetime, datetime] | None:
    for path in DATE_PATHS.get(str(resource.get("resourceType")), ("date",)):
        value = _lookup(resource, path)
        if isinstance(value, str):
            return parse_instant(value)
        if isinstance(value, dict) and (value.get("start") or value.get("end")):
            start = parse_instant(str(value.get("start") or value.get("end")))
            end = parse_instant(str(value.get("end"))) if value.get("end") else start
            if start and end:
                return start[0], end[1]
    return None


def _names(resource: Resource) -> list[str]:
    """The strings the `name` parameter looks at: a plain `name` (Group, Organization) or the
    text, family and given parts of HumanNames (Patient, Practitioner)."""
    value = resource.get("name")
    if isinstance(value, str):
        return [value]
    names: list[str] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict):
            names += [str(item[key]) for key in ("text", "family") if item.get(key)]
            names += [str(part) for part in item.get("given", []) or []]
    return names


def _match_name(resource: Resource, value: str) -> bool:
    # FHIR string search: case-insensitive match at the start of the string (or of any part).
    wanted = [item.strip().lower() for item in value.split(",") if item.strip()]
    return any(name.lower().startswith(item) for name in _names(resource) for item in wanted)


def _match_name_contains(resource: Resource, value: str) -> bool:
    wanted = [item.strip().lower() for item in value.split(",") if item.strip()]
    return any(item in name.lower() for name in _names(resource) for item in wanted)


def _match_date_missing(resource: Resource, value: str) -> bool:
    return (resource_interval(resource) is None) == (value.strip().lower() == "true")


# Per-resource checks of the other parameters (`matcher` compiles date and patient/subject itself).
_CHECKS = {
    "category": _match_category,
    "code": _match_code,
    "date:missing": _match_date_missing,
    "status": _match_status,
    "_id": _match_id,
    "identifier": _match_identifier,
    "encounter": _match_encounter,
    "name": _match_name,
    "name:contains": _match_name_contains,
}


def sort_resources(resources: list[Resource], sort: str | None) -> list[Resource]:
    if not sort:
        return resources
    key_name = sort.split(",")[0]
    descending = key_name.startswith("-")
    key_name = key_name.lstrip("-")
    oldest = datetime.min.replace(tzinfo=UTC)

    def sort_key(resource: Resource) -> datetime:
        if key_name == "_lastUpdated":
            stamp = parse_instant(str((resource.get("meta") or {}).get("lastUpdated", "")))
            return stamp[0] if stamp else oldest
        interval = resource_interval(resource)
        return interval[0] if interval else oldest

    if key_name not in ("date", "_lastUpdated"):
        return resources
    return sorted(resources, key=sort_key, reverse=descending)
