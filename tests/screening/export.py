"""A small Bulk Data style NDJSON export built in the tests: one file per resource type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fhirmaps.builders import condition, medication, observation, patient

AS_OF = "2026-03-01"


def named(pid: str, given: str, family: str) -> dict[str, Any]:
    return patient(pid) | {"name": [{"use": "official", "given": [given], "family": family}]}


def her2_positive_metastatic_breast(pid: str) -> list[dict[str, Any]]:
    """Fires guideline-deviation unless the MedicationRequest's Medication (side file) is anti-HER2."""
    order = medication("mr1", "", pid=pid)
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "Medication/med-trastuzumab"}
    return [
        condition("b1", "C50.912", "Malignant neoplasm of left female breast", pid=pid),
        condition("b2", "C79.51", "Secondary malignant neoplasm of bone", pid=pid),
        observation("h1", "85319-2", "HER2 by IHC", text_value="3+ (positive)", pid=pid),
        order,
    ]


def report(rid: str, pid: str, url: str) -> dict[str, Any]:
    """A pathology report whose text is behind `url` (to be fetched and inlined by hydration)."""
    return {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"text": "Surgical pathology"},
        "presentedForm": [{"contentType": "text/plain", "url": url}],
    }


def note(rid: str, pid: str, url: str) -> dict[str, Any]:
    """A progress note whose text is behind `url`: not a pathology report, so its text is fetched
    only for a patient with cancer."""
    return report(rid, pid, url) | {"code": {"text": "Progress note"}}


TRASTUZUMAB = {"resourceType": "Medication", "id": "med-trastuzumab", "code": {"text": "trastuzumab 8 mg/kg"}}


def claim(cid: str, pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Claim",
        "id": cid,
        "status": "active",
        "patient": {"reference": f"Patient/{pid}"},
    }


def write_export(
    folder: Path, *, rare: bool = True, none_gets_cancer: bool = False, medication_file: bool = True
) -> Path:
    """Patients: p-rare (GIST: rare-cancer), p-none (hypertension), p-her2 (needs the side file), and
    resources of p-ghost, whose Patient is not in the export. One malformed line, one Observation
    without a subject, and Claims to skip."""
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[str]] = {}

    def add(resource: dict[str, Any]) -> None:
        by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))

    for resource in (
        named("p-rare", "Ada", "Rare"),
        named("p-none", "Ben", "None"),
        named("p-her2", "Cy", "Her"),
    ):
        add(resource)
    add(
        condition("c-rare", "C49.A0", "Gastrointestinal stromal tumor", pid="p-rare")
        if rare
        else condition("c-rare", "I10", "Essential hypertension", pid="p-rare")
    )
    add(
        condition("c-none", "C49.A0", "Gastrointestinal stromal tumor", pid="p-none")
        if none_gets_cancer
        else condition("c-none", "I10", "Essential hypertension", pid="p-none")
    )
    for resource in her2_positive_metastatic_breast("p-her2"):
        add(resource)
    add(observation("o-ghost", "2160-0", "Creatinine", value=1.0, unit="mg/dL", pid="p-ghost"))
    orphan = observation("o-orphan", "2160-0", "Creatinine", value=1.1, unit="mg/dL")
    del orphan["subject"]
    add(orphan)
    if medication_file:
        add(TRASTUZUMAB)
    for i, pid in enumerate(("p-rare", "p-none", "p-her2", "p-rare")):
        add(claim(f"cl{i}", pid))
    for rtype, lines in by_type.items():
        text = "\n".join(lines) + "\n"
        if rtype == "Condition":
            text += '{"resourceType": "Condition", "id": "broken", \n'  # a truncated line
        (folder / f"{rtype}.ndjson").write_text(text)
    return folder
