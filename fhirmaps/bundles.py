"""Flatten FHIR input (Bundles of any type, single resources, lists) and group resources by patient."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from fhirmaps.elements import Json, as_list, reference

_PATIENT_FIELDS = ("subject", "patient", "beneficiary", "individual", "for")


def flatten(items: Iterable[Any]) -> list[Json]:
    """Resources from Bundles (recursively) and bare resources; urn:uuid references become Type/id."""
    out: list[Json] = []
    aliases: dict[str, str] = {}
    _collect(items, out, aliases)
    if aliases:
        out = [_rewrite(r, aliases) for r in out]
    # Paged searches and _include can return one resource twice; read each Type/id once.
    seen: set[tuple[str, str]] = set()
    unique: list[Json] = []
    for resource in out:
        key = (str(resource.get("resourceType")), str(resource.get("id", "")))
        if key[1] and key in seen:
            continue
        seen.add(key)
        unique.append(resource)
    return unique


def _collect(items: Iterable[Any], out: list[Json], aliases: dict[str, str]) -> None:
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("resourceType") == "Bundle":
            entries = [e for e in as_list(item.get("entry")) if isinstance(e, dict)]
            for entry in entries:
                resource = entry.get("resource")
                full_url = entry.get("fullUrl")
                if isinstance(resource, dict) and isinstance(full_url, str):
                    if not resource.get("id"):
                        resource = dict(resource, id=full_url.rsplit(":", 1)[-1].rsplit("/", 1)[-1])
                        entry = dict(entry, resource=resource)
                    aliases[full_url] = f"{resource.get('resourceType')}/{resource.get('id')}"
            _collect((e.get("resource") for e in entries), out, aliases)
        elif isinstance(item.get("resourceType"), str):
            out.append(item)


def _rewrite(value: Any, aliases: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: (aliases.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite(v, aliases))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(v, aliases) for v in value]
    return value


def patient_of(resource: Json) -> str:
    """ "Patient/<id>" a resource belongs to, or "" when it is shared (Binary, Medication,
    Organization...)."""
    if resource.get("resourceType") == "Patient":
        return f"Patient/{resource.get('id')}"
    for name in _PATIENT_FIELDS:
        ref = reference(resource.get(name))
        if ref.startswith("Patient/"):
            return ref
    for participant in as_list(resource.get("participant")):
        if isinstance(participant, dict):
            ref = reference(participant.get("actor"))
            if ref.startswith("Patient/"):
                return ref
    for name in ("sender", "recipient", "source", "author"):
        for item in as_list(resource.get(name)):
            ref = reference(item)
            if ref.startswith("Patient/"):
                return ref
    return ""


def group_by_patient(resources: Sequence[Json]) -> tuple[dict[str, list[Json]], list[Json]]:
    """(patient reference -> its resources, shared resources). Patients appear in input order."""
    groups: dict[str, list[Json]] = {}
    shared: list[Json] = []
    for resource in resources:
        owner = patient_of(resource)
        if owner:
            groups.setdefault(owner, []).append(resource)
        else:
            shared.append(resource)
    return groups, shared


def parse_json_text(text: str) -> tuple[list[Any], list[int]]:
    """Items of a JSON document or of NDJSON lines, and the numbers of NDJSON lines that are not JSON.

    A byte order mark is accepted. One broken line does not lose the others (Bulk Data exports are
    written line by line and a truncated or corrupted line is common)."""
    text = text.removeprefix("\ufeff")
    try:
        data = json.loads(text)
        return (data if isinstance(data, list) else [data]), []
    except (json.JSONDecodeError, RecursionError):
        pass
    items: list[Any] = []
    bad: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError):
                bad.append(number)
    return items, bad
