"""Which patient a resource belongs to, the same way the engine decides (fhirmaps.bundles.patient_of),
plus bare `urn:uuid:` references to a patient, which some exporters write."""

from __future__ import annotations

from typing import Any

from fhirmaps.bundles import patient_of

_PATIENT_FIELDS = ("subject", "patient", "beneficiary", "individual", "for")
_URN = "urn:uuid:"


def owner_id(resource: dict[str, Any]) -> str:
    """The patient id a resource belongs to, or "" when it names none."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) and rid else ""
    owner = patient_of(resource)
    if owner.startswith("Patient/") and len(owner) > len("Patient/"):
        return owner.removeprefix("Patient/")
    for name in _PATIENT_FIELDS:
        value = resource.get(name)
        target = value.get("reference") if isinstance(value, dict) else None
        if isinstance(target, str) and target.startswith(_URN) and len(target) > len(_URN):
            return target.removeprefix(_URN)
    return ""


def normalize_owner(resource: dict[str, Any], patient_id: str) -> None:
    """Rewrite a bare `urn:uuid:<id>` patient reference to `Patient/<id>` so the engine sees the owner."""
    for name in _PATIENT_FIELDS:
        value = resource.get(name)
        if isinstance(value, dict) and value.get("reference") == _URN + patient_id:
            resource[name] = dict(value, reference=f"Patient/{patient_id}")


def display_name(patient: dict[str, Any]) -> str | None:
    names = [n for n in patient.get("name") or [] if isinstance(n, dict)]
    if not names:
        return None
    chosen = next((n for n in names if n.get("use") == "official"), names[0])
    if isinstance(chosen.get("text"), str) and chosen["text"].strip():
        return str(chosen["text"]).strip()
    given = " ".join(str(g) for g in chosen.get("given") or [] if isinstance(g, str))
    family = chosen.get("family") if isinstance(chosen.get("family"), str) else ""
    return " ".join(p for p in (given, family) if p) or None
