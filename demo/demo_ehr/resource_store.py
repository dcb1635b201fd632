"""In-memory FHIR data of the demo EHR: fixture bundles loaded once at startup.

Every resource in a patient's bundle belongs to that patient's compartment, except the
shared directory types below, which any token with a scope for the type may read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .date_shift import shift_resource
from .search import patient_reference, resource_interval

log = logging.getLogger(__name__)

SHARED_TYPES = frozenset(
    {"Practitioner", "PractitionerRole", "Organization", "Location", "Medication", "Device", "Substance"}
)
Resource = dict[str, Any]


@dataclass
class PatientListing:
    patient_id: str
    title: str
    summary: str = ""
    triggers: list[str] = field(default_factory=list)
    time_critical: bool = False
    name: str = ""
    birth_date: str = ""
    gender: str = ""
    mrn: str = ""


@dataclass
class ResourceStore:
    resources: dict[str, dict[str, Resource]] = field(default_factory=dict)
    owners: dict[tuple[str, str], str | None] = field(default_factory=dict)
    # (type, patient id) → that patient's resources of the type, in load order: a search by patient
    # looks at these instead of every resource of the type, as a real EHR's index would.
    compartments: dict[tuple[str, str], list[Resource]] = field(default_factory=dict)
    listings: list[PatientListing] = field(default_factory=list)
    # Patients with an oncology chart (members of the "Oncology clinic" group), in load order.
    oncology_patients: list[str] = field(default_factory=list)
    # `meta.lastUpdated` of resources loaded without one: their clinical date, never later than this.
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def stamp(self, resource: Resource) -> None:
        """Give a resource without `meta.lastUpdated` one (Bulk Data `_since` filters on it)."""
        meta = resource.get("meta")
        if isinstance(meta, dict) and meta.get("lastUpdated"):
            return
        interval = resource_interval(resource)
        moment = min(interval[0], self.loaded_at) if interval else self.loaded_at
        stamped = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
        resource["meta"] = {**(meta if isinstance(meta, dict) else {}), "lastUpdated": stamped}

    def add(self, resource: Resource, owner: str | None) -> bool:
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if not isinstance(rtype, str) or not isinstance(rid, str):
            return False
        by_id = self.resources.setdefault(rtype, {})
        if rid in by_id:
            log.warning("demo EHR: duplicate %s id across fixtures; keeping the first", rtype)
            return False
        self.stamp(resource)
        by_id[rid] = resource
        self.owners[(rtype, rid)] = None if rtype in SHARED_TYPES else owner
        subject = patient_reference(resource)
        if subject is not None:
            self.compartments.setdefault((rtype, subject), []).append(resource)
        return True

    def get(self, rtype: str, rid: str) -> Resource | None:
        return self.resources.get(rtype, {}).get(rid)

    def of_type(self, rtype: str) -> list[Resource]:
        return list(self.resources.get(rtype, {}).values())

    def of_patients(self, rtype: str, patient_ids: Iterable[str]) -> list[Resource]:
        """The resources of a type whose subject (patient, beneficiary) is one of these patients, in
        load order: what a search by `patient` can match."""
        wanted = set(patient_ids)
        if len(wanted) == 1:
            return list(self.compartments.get((rtype, next(iter(wanted))), []))
        return [r for r in self.of_type(rtype) if patient_reference(r) in wanted]

    def owner(self, rtype: str, rid: str) -> str | None:
        return self.owners.get((rtype, rid))

    def has_type(self, rtype: str) -> bool:
        return rtype in self.resources

    def listing(self, patient_id: str) -> PatientListing | None:
        return next((item for item in self.listings if item.patient_id == patient_id), None)

    def latest_encounter(self, patient_id: str) -> str | None:
        encounters = [
            enc for enc in self.of_type("Encounter") if self.owner("Encounter", enc["id"]) == patient_id
        ]
        if not encounters:
            return None
        latest = max(encounters, key=lambda enc: str((enc.get("period") or {}).get("start", "")))
        return str(latest["id"])

    def add_patient_bundle(
        self,
        resources: Iterable[Resource],
        meta: dict[str, Any] | None,
        *,
        oncology: bool = True,
        listed: bool = True,
    ) -> None:
        """Add one patient's chart. `oncology`: the patient belongs to the oncology clinic;
        `listed`: shown on the launch page (synthetic population patients are not)."""
        items = [res for res in resources if isinstance(res, dict)]
        patient = next((res for res in items if res.get("resourceType") == "Patient"), None)
        if patient is None or not isinstance(patient.get("id"), str):
            log.warning("demo EHR: fixture bundle without a Patient skipped")
            return
        pid = patient["id"]
        for res in items:
            self.add(res, pid)
        if oncology:
            self.oncology_patients.append(pid)
        if listed:
            self.listings.append(_listing(patient, meta or {}))


def _listing(patient: Resource, meta: dict[str, Any]) -> PatientListing:
    name = _display_name(patient)
    mrn = next(
        (str(ident.get("value", "")) for ident in _objects(patient.get("identifier")) if ident.get("value")),
        "",
    )
    return PatientListing(
        patient_id=patient["id"],
        title=str(meta.get("title") or f"{name} ({patient['id']})"),
        summary=str(meta.get("summary", "")),
        triggers=[str(item) for item in meta.get("triggers", [])],
        time_critical=bool(meta.get("time_critical", False)),
        name=name,
        birth_date=str(patient.get("birthDate", "")),
        gender=str(patient.get("gender", "")),
        mrn=mrn,
    )


def _objects(value: Any) -> list[dict[str, Any]]:
    """The JSON objects of a list: fault-injection fixtures put strings where lists belong."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _display_name(patient: Resource) -> str:
    for name in _objects(patient.get("name")):
        if name.get("text"):
            return str(name["text"])
        parts = [*name.get("given", []), name.get("family", "")]
        joined = " ".join(str(part) for part in parts if part)
        if joined:
            return joined
    return "Unnamed patient"


def bundle_resources(bundle: Any) -> list[Resource] | None:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return None
    resources: list[Resource] = []
    for entry in bundle.get("entry", []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        if "id" not in resource and str(entry.get("fullUrl", "")).startswith("urn:uuid:"):
            resource["id"] = entry["fullUrl"].removeprefix("urn:uuid:")
        resources.append(resource)
    return resources


def load_patients_dir(store: ResourceStore, folder: Path, shift_days: int = 0) -> None:
    """Load every `*.json` bundle of `folder`; `index.json` only describes them. `shift_days` moves every
    date (see date_shift.py)."""
    index = _read_index(folder / "index.json")
    files = (
        sorted(path for path in folder.glob("*.json") if path.name != "index.json") if folder.is_dir() else []
    )
    ordered = [folder / name for name in index if (folder / name).is_file()]
    ordered += [path for path in files if path.name not in index]
    for path in ordered:
        try:
            bundle = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("demo EHR: fixture %s is not readable JSON; skipped", path.name)
            continue
        resources = bundle_resources(shift_resource(bundle, shift_days))
        if resources is None:
            log.warning("demo EHR: fixture %s is not a FHIR Bundle; skipped", path.name)
            continue
        store.add_patient_bundle(resources, index.get(path.name))


def _read_index(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("demo EHR: index.json is not valid JSON; using bundle contents instead")
        return {}
    if not isinstance(entries, list):
        return {}
    return {str(item["file"]): item for item in entries if isinstance(item, dict) and "file" in item}
