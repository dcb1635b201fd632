"""The per-bucket task that runs on a Dask worker: read one bucket file, the shared side file and the
report texts fetched for the bucket, group the lines by patient, run the engine on each patient,
and return compact results.

One patient's failure becomes an error by cause; the bucket's other patients are still returned."""

from __future__ import annotations

import gc
import re
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from fhirmaps import json_codec
from fhirmaps.context import warm
from fhirmaps.r4b import validations_not_remembered
from smartapp.engine import EngineOptions, evaluate_patient
from smartapp.findings import DataIssue
from smartapp.heap import settle
from smartapp.screening.errors import ENGINE_ERROR, MALFORMED_LINE, PATIENT_NOT_IN_EXPORT, ErrorLog
from smartapp.screening.patients import display_name, normalize_owner
from smartapp.screening.texts import Texts, inline_texts, read_texts


def screen_bucket(bucket: str, side: str, as_of: date, rare_definition: str = "rarecare") -> dict[str, Any]:
    """A bucket file of "<patient id>\t<NDJSON line>" lines, and the side file of shared resources (NDJSON).
    Returns {"patients": [{"patient_id", "result", "display_name", "birth_date"}], "resources", "errors"}."""
    settle_worker()
    errors = ErrorLog()
    shared = _index(_read(Path(side), errors))
    texts = read_texts(Path(bucket))  # report texts fetched from the EHR for this bucket, if any
    # Raw lines per patient: a bucket is held as bytes (several times smaller than parsed JSON), and
    # only the patient being evaluated is parsed.
    groups: dict[str, list[bytes]] = {}
    count = 0
    with Path(bucket).open("rb") as stream:
        for raw in stream:
            key, _, line = raw.rstrip(b"\n").partition(b"\t")
            if line:
                groups.setdefault(key.decode("utf-8"), []).append(line)
                count += 1
    patients = screen_groups(groups, shared, texts, Path(bucket).name, as_of, rare_definition, errors)
    return {"patients": patients, "resources": count, "errors": errors.as_json()}


@validations_not_remembered()  # each resource is read once: a memo would only fill up
def screen_groups(
    groups: dict[str, list[bytes]],
    shared: dict[str, dict[str, Any]],
    texts: Texts,
    label: str,
    as_of: date,
    rare_definition: str,
    errors: ErrorLog,
) -> list[dict[str, Any]]:
    """The engine on each patient's raw lines (emptied from `groups` as it goes), with the shared
    resources (`"Type/id"` -> resource) it points to and its fetched report texts. One patient's
    failure is counted (`label` names the file) and the others go on."""
    shared_types = frozenset(key.partition("/")[0] for key in shared)
    options = EngineOptions(rare_definition=rare_definition)
    patients = []
    while groups:
        patient_id, lines = groups.popitem()
        own = _parse(lines, patient_id, errors)
        if texts:
            inline_texts(own, patient_id, texts)
        try:
            mine = (
                [shared[key] for key in sorted(_line_references(lines, own, shared_types)) if key in shared]
                if shared
                else []
            )
            patients.append(_evaluate(patient_id, own, mine, as_of, options, errors))
        except Exception as exc:  # noqa: BLE001 - one patient's failure must not lose the others
            errors.add(f"{ENGINE_ERROR}:{type(exc).__name__}", f"{type(exc).__name__} in {label}")
    return patients


# A worker's allocations are mostly parsed JSON, freed by reference counting when its patient is
# done: some 30,000 objects per Synthea-sized chart, so the default threshold (700) started about
# forty young-generation collections per patient that found nothing to free (1.5 % of the
# instructions to screen the demo's charts). Cycles are still collected, a few times per patient.
YOUNG_THRESHOLD = 10_000


@cache
def settle_worker() -> None:
    """Once per worker process: the NLP model loaded, then the start-up heap set aside (smartapp/heap.py)
    and the young generation collected less often (`YOUNG_THRESHOLD`)."""
    warm()
    settle()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


_URN = b"urn:uuid:"


def _parse(lines: list[bytes], patient_id: str, errors: ErrorLog) -> list[dict[str, Any]]:
    own = []
    for line in lines:
        try:
            resource = json_codec.loads(line)
        except (ValueError, RecursionError):  # the partition pass wrote only lines it had parsed
            errors.add(MALFORMED_LINE)
            continue
        # A bare urn:uuid: reference to rewrite, maybe spelled with \u escapes (a backslash is
        # found by memchr, far faster than a two-byte needle, and few lines hold one).
        if _URN in line or (b"\\" in line and b"\\u" in line):
            normalize_owner(resource, patient_id)
        own.append(resource)
    return own


def _evaluate(
    patient_id: str,
    own: list[dict[str, Any]],
    mine: list[dict[str, Any]],
    as_of: date,
    options: EngineOptions,
    errors: ErrorLog,
) -> dict[str, Any]:
    demographics = next((r for r in own if r.get("resourceType") == "Patient"), None)
    result = evaluate_patient(own + mine, as_of=as_of, options=options, patient=f"Patient/{patient_id}")
    if demographics is None:
        errors.add(PATIENT_NOT_IN_EXPORT)
        result.data_issues.append(
            DataIssue(
                resource=f"Patient/{patient_id}",
                reason=(
                    f"the Patient resource is not in the export; {len(own)} resources "
                    "that refer to it were read"
                ),
            )
        )
    birth = demographics.get("birthDate") if demographics else None
    return {
        "patient_id": patient_id,
        "result": result.to_json(),
        "display_name": display_name(demographics) if demographics else None,
        "birth_date": birth if isinstance(birth, str) else None,
    }


def _index(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{r.get('resourceType')}/{r.get('id')}": r for r in resources}


# A "reference" or "url" key with a string value, in an NDJSON line as written (a key cannot be
# matched inside a string value: there its quotes are escaped).
_REFERENCE = re.compile(rb'"(?:reference|url)"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _line_references(lines: list[bytes], resources: list[dict[str, Any]], types: frozenset[str]) -> set[str]:
    """`_references` of the patient's resources that point to a resource of one of `types` (those of
    the side file), read from their lines with one regular expression (a tenth of the time of
    walking every parsed element). Such a reference spells its type and a slash in the line, so
    lines without one are not searched. Lines with \\u escapes, which could spell a key or a type in
    another way, are left to the walk over the parsed resources."""
    text = b"\n".join(lines)  # one search for the whole patient first, then its lines
    if b"\\u" in text:
        return {ref for ref in _references(resources) if ref.partition("/")[0] in types}
    needles = tuple(
        needle for name in types for slash in (b"/", b"\\/") if (needle := name.encode() + slash) in text
    )
    found: set[str] = set()
    if not needles:
        return found
    for line in lines:
        if not any(needle in line for needle in needles):
            continue
        for match in _REFERENCE.finditer(line):
            raw = match.group(1)
            value = json_codec.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode("utf-8", "replace")
            _add_target(found, value)
    return {ref for ref in found if ref.partition("/")[0] in types}


def _references(resources: list[dict[str, Any]]) -> set[str]:
    """ "Type/id" of every reference and attachment URL in the resources (relative or absolute), so each
    patient gets only the shared resources (Medication, Binary) it points to."""
    found: set[str] = set()
    stack: list[Any] = list(resources)
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("reference", "url") and isinstance(item, str):
                    _add_target(found, item)
                elif isinstance(item, dict | list):
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(v for v in value if isinstance(v, dict | list))
    return found


def _add_target(found: set[str], target: str) -> None:
    """ "Type/id" of a reference or URL (relative, absolute or versioned), when it has both parts."""
    parts = [p for p in target.split("/_history/")[0].split("/") if p]
    if len(parts) >= 2:
        found.add("/".join(parts[-2:]))


def _read(path: Path, errors: ErrorLog) -> list[dict[str, Any]]:
    out = []
    with path.open("rb") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                out.append(json_codec.loads(line))
            except (ValueError, RecursionError):  # the partition pass wrote only parsed lines
                errors.add(MALFORMED_LINE, f"{path.name} line {number}")
    return out
