"""A deterministic synthetic chart of about 2,000 resources for paging and latency benchmarks.

One woman with ER-positive breast cancer on treatment since early 2025; her diagnostic core
biopsy is HER2 IHC 2+ with no ISH, so the SecondLook engine has a real finding to compute
(incomplete-biomarker). Every value comes from a seeded generator.
"""

from __future__ import annotations

import base64
import random
from datetime import date, timedelta
from typing import Any

from .large_patient_codes import CBC, CMP, CONDITIONS, DRUGS, IMAGING, MARKERS

BENCH_PATIENT_ID = "bench-large"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
START = date(2025, 1, 6)
Resource = dict[str, Any]


def _day(offset: int) -> str:
    return (START + timedelta(days=offset)).isoformat()


def _concept(system: str, code: str, display: str) -> Resource:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _ref(kind: str, rid: str) -> Resource:
    return {"reference": f"{kind}/{rid}"}


def _pathology_text(index: int, rng: random.Random) -> tuple[str, str]:
    site = rng.choice(["left breast, 2 o'clock", "left axillary lymph node", "left breast, lumpectomy bed"])
    ki67 = rng.randint(8, 35)
    carcinoma = index % 5 == 0
    lines = [
        f"ACCESSION: BS25-{10000 + index}",
        f"SPECIMEN: {site}",
        "CLINICAL HISTORY: "
        + ("Left breast mass, BI-RADS 5." if index == 0 else "Left breast carcinoma on therapy."),
        "FINAL DIAGNOSIS: Invasive ductal carcinoma, Nottingham grade 2."
        if carcinoma
        else "FINAL DIAGNOSIS: Benign breast tissue with treatment effect; no residual carcinoma identified.",
    ]
    if carcinoma:
        # The diagnostic core biopsy (index 0) is HER2 2+ and no ISH follows: an incomplete work-up.
        her2 = "HER2 2+ (equivocal)" if index == 0 else "HER2 1+ (negative)"
        lines.append(f"IMMUNOHISTOCHEMISTRY: ER positive (90%), PR positive (40%), {her2}, Ki-67 {ki67}%.")
    lines.append("COMMENT: Controls performed appropriately.")
    if index % 2:
        return "text/plain", "\n".join(lines)
    body = "".join(f"<p>{line}</p>" for line in lines)
    return "text/html", f"<html><body>{body}</body></html>"


class _Chart:
    def __init__(self, seed: int, patient_id: str = BENCH_PATIENT_ID, prefix: str = "bl"):
        self.rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
        self.items: list[Resource] = []
        self.counter = 0
        self.patient_id = patient_id
        self.prefix = prefix

    def shared_id(self, name: str) -> str:
        """Ids of the chart's payer and oncologist: the benchmark's own, or prefixed per chart."""
        return f"bench-{name}" if self.patient_id == BENCH_PATIENT_ID else f"{self.prefix}-{name}"

    def add(self, resource: Resource) -> str:
        self.counter += 1
        rid = resource.get("id") or f"{self.prefix}-{resource['resourceType'].lower()}-{self.counter}"
        resource["id"] = rid
        if resource["resourceType"] not in ("Patient", "Organization", "Practitioner", "Binary", "Coverage"):
            resource.setdefault("subject", _ref("Patient", self.patient_id))
        self.items.append(resource)
        return str(rid)

    def report(self, category: tuple[str, str, str], code: Resource, when: str, **extra: Any) -> str:
        return self.add(
            {
                "resourceType": "DiagnosticReport",
                "status": "final",
                "category": [_concept(*category)],
                "code": code,
                "effectiveDateTime": when,
                "issued": f"{when}T16:00:00Z",
                **extra,
            }
        )

    def lab(self, spec: tuple[str, str, str, float, float], when: str, value: float) -> str:
        loinc, display, unit, low, high = spec
        return self.add(
            {
                "resourceType": "Observation",
                "status": "final",
                "category": [_concept(OBS_CAT, "laboratory", "Laboratory")],
                "code": _concept(LOINC, loinc, display),
                "effectiveDateTime": f"{when}T08:30:00Z",
                "valueQuantity": {
                    "value": value,
                    "unit": unit,
                    "system": "http://unitsofmeasure.org",
                    "code": unit,
                },
                "referenceRange": [
                    {"low": {"value": low, "unit": unit}, "high": {"value": high, "unit": unit}}
                ],
            }
        )


def build_large_patient(
    n_resources: int = 2000,
    n_pathology: int = 50,
    *,
    patient_id: str = BENCH_PATIENT_ID,
    seed: int = 20261125,
    prefix: str = "bl",
) -> list[dict[str, Any]]:
    """The chart as a list of resources (Patient first); exactly `n_resources` when that is at
    least the size of the fixed part (about 350 resources). `patient_id`, `seed` and `prefix`
    (of every resource id) make other charts of the same shape (synthetic.py)."""
    chart = _Chart(seed=seed, patient_id=patient_id, prefix=prefix)
    _add_people(chart)
    _add_conditions(chart)
    _add_encounters_and_notes(chart)
    _add_treatment(chart)
    _add_pathology(chart, n_pathology)
    _add_imaging(chart)
    _add_labs(chart, n_resources)
    return chart.items[:n_resources]


def _add_people(chart: _Chart) -> None:
    chart.add(
        {
            "resourceType": "Patient",
            "id": chart.patient_id,
            "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": "BL-0002000"}],
            "name": [{"family": "Benchmark", "given": ["Lena"]}],
            "gender": "female",
            "birthDate": "1968-04-17",
            "address": [{"city": "Madison", "state": "WI", "postalCode": "53705"}],
        }
    )
    chart.add(
        {"resourceType": "Organization", "id": chart.shared_id("payer"), "name": "Badger Mutual Health Plan"}
    )
    chart.add(
        {
            "resourceType": "Practitioner",
            "id": chart.shared_id("oncologist"),
            "name": [{"family": "Okafor", "given": ["Amara"]}],
        }
    )
    chart.add(
        {
            "resourceType": "Coverage",
            "status": "active",
            "beneficiary": _ref("Patient", chart.patient_id),
            "payor": [_ref("Organization", chart.shared_id("payer"))],
            "type": _concept(
                "http://terminology.hl7.org/CodeSystem/v3-ActCode", "EHCPOL", "extended healthcare"
            ),
            "period": {"start": "2025-01-01"},
        }
    )


def _add_conditions(chart: _Chart) -> None:
    for code, display, onset in CONDITIONS:
        chart.add(
            {
                "resourceType": "Condition",
                "clinicalStatus": _concept(
                    "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"
                ),
                "category": [
                    _concept(
                        "http://terminology.hl7.org/CodeSystem/condition-category",
                        "problem-list-item",
                        "Problem List Item",
                    )
                ],
                "code": _concept("http://hl7.org/fhir/sid/icd-10-cm", code, display),
                "onsetDateTime": onset,
                "recordedDate": onset,
            }
        )


def _add_encounters_and_notes(chart: _Chart) -> None:
    for visit in range(40):
        when = _day(visit * 17)
        encounter = chart.add(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "period": {"start": f"{when}T09:00:00Z", "end": f"{when}T09:40:00Z"},
            }
        )
        if visit % 4 == 0 or visit == 39:
            note = f"Oncology follow-up {when}. Tolerating therapy. Plan: continue current regimen and labs."
            chart.add(
                {
                    "resourceType": "DocumentReference",
                    "status": "current",
                    "type": _concept(LOINC, "11506-3", "Progress note"),
                    "category": [
                        _concept(
                            "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                            "clinical-note",
                            "Clinical Note",
                        )
                    ],
                    "date": f"{when}T10:00:00Z",
                    "context": {"encounter": [_ref("Encounter", encounter)]},
                    "content": [
                        {
                            "attachment": {
                                "contentType": "text/plain",
                                "data": base64.b64encode(note.encode()).decode(),
                            }
                        }
                    ],
                }
            )


def _add_treatment(chart: _Chart) -> None:
    chart.add(
        {
            "resourceType": "Procedure",
            "status": "completed",
            "code": _concept(SNOMED, "392021009", "Lumpectomy of breast"),
            "performedDateTime": _day(250),
        }
    )
    for index in range(19):
        chart.add(
            {
                "resourceType": "Procedure",
                "status": "completed",
                "code": {
                    "text": "Port access and chemotherapy infusion"
                    if index < 16
                    else "Radiotherapy fraction block"
                },
                "performedDateTime": _day(14 + index * 14),
            }
        )
    for rxnorm, name, first, cycles, gap in DRUGS:
        for cycle in range(cycles):
            when = _day(first + cycle * gap)
            concept = _concept(RXNORM, rxnorm, name)
            request = chart.add(
                {
                    "resourceType": "MedicationRequest",
                    "status": "active" if name == "anastrozole" else "completed",
                    "intent": "order",
                    "medicationCodeableConcept": concept,
                    "authoredOn": when,
                }
            )
            if name != "anastrozole":
                chart.add(
                    {
                        "resourceType": "MedicationAdministration",
                        "status": "completed",
                        "medicationCodeableConcept": concept,
                        "effectiveDateTime": f"{when}T11:00:00Z",
                        "request": _ref("MedicationRequest", request),
                    }
                )
    for index in range(20):
        chart.add(
            {
                "resourceType": "ServiceRequest",
                "status": "completed" if index < 18 else "active",
                "intent": "order",
                "code": {
                    "text": [
                        "CBC with differential",
                        "Comprehensive metabolic panel",
                        "CT chest abdomen pelvis",
                        "Echocardiogram",
                    ][index % 4]
                },
                "authoredOn": _day(index * 35),
            }
        )
    for title, start in (("Adjuvant chemotherapy", 14), ("Radiotherapy", 260), ("Endocrine therapy", 301)):
        chart.add(
            {
                "resourceType": "CarePlan",
                "status": "completed" if start < 300 else "active",
                "intent": "plan",
                "title": title,
                "category": [_concept(SNOMED, "395082007", "Cancer care plan")],
                "period": {"start": _day(start)},
            }
        )


def _add_pathology(chart: _Chart, n_pathology: int) -> None:
    for index in range(n_pathology):
        content_type, text = _pathology_text(index, chart.rng)
        binary = chart.add(
            {
                "resourceType": "Binary",
                "contentType": content_type,
                "data": base64.b64encode(text.encode()).decode(),
            }
        )
        when = _day(index * 13 % 680)
        chart.report(
            (LOINC, "LP7839-6", "Pathology"),
            _concept(LOINC, "11526-1", "Pathology study"),
            when,
            identifier=[{"system": "urn:demo:accession", "value": f"BS25-{10000 + index}"}],
            presentedForm=[
                {"contentType": content_type, "url": f"Binary/{binary}", "title": "Pathology report"}
            ],
        )


def _add_imaging(chart: _Chart) -> None:
    for index in range(60):
        code, display, impression = IMAGING[index % len(IMAGING)]
        chart.report(
            (LOINC, "LP29684-5", "Radiology"),
            _concept(LOINC, code, display),
            _day(index * 11),
            conclusion=impression,
        )


def _add_labs(chart: _Chart, n_resources: int) -> None:
    """CBC and metabolic panels every six days, tumour markers (no report) every third draw,
    until the chart holds `n_resources` resources."""
    visit = 0
    markers = [(*marker[:3], 0.0, marker[3]) for marker in MARKERS]
    while len(chart.items) < n_resources:
        when = _day(visit * 6 % 690)
        for code, display, specs in (
            ("58410-2", "CBC panel", CBC),
            ("24323-8", "Comprehensive metabolic panel", CMP),
        ):
            results = [
                chart.lab(spec, when, _lab_value(chart.rng, spec, visit))
                for spec in specs
                if len(chart.items) < n_resources
            ]
            if results and len(chart.items) < n_resources:
                chart.report(
                    (V2_0074, "LAB", "Laboratory"),
                    _concept(LOINC, code, display),
                    when,
                    result=[_ref("Observation", rid) for rid in results],
                )
        if visit % 3 == 0:
            for spec in markers:
                if len(chart.items) < n_resources:
                    chart.lab(spec, when, _lab_value(chart.rng, spec, visit))
        visit += 1


def _lab_value(rng: random.Random, spec: tuple[str, str, str, float, float], visit: int) -> float:
    loinc, _, _, low, high = spec
    if loinc == "6875-9":  # CA 15-3 falls on treatment, then plateaus just under the limit
        return round(max(18.0, 64.0 - visit * 0.9) + rng.uniform(-2, 2), 1)
    if loinc == "2039-6":
        return round(max(1.4, 6.5 - visit * 0.08) + rng.uniform(-0.3, 0.3), 1)
    return round(rng.uniform(low, high), 1)
