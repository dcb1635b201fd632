"""A seeded synthetic population for population screening (Bulk Data export, the worklist).

Most patients have no cancer: a few chronic conditions, encounters with vital signs and labs, a
visit note, immunizations, and the claims-like noise real exports are full of (Claim and
ExplanationOfBenefit per encounter). About `CANCER_SHARE` of them have an oncology chart of
hundreds of resources built like the benchmark chart (large_patient.py: breast cancer on
treatment, pathology reports as Binary attachments, imaging conclusions, progress notes), with
narrative in every report; half of those have the HER2 work-up completed by ISH, the other half
keep the equivocal HER2 result unresolved, so screening finds some of them and not others.

Patient `i` depends only on `(seed, i)`: a larger population starts with the same patients.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from .date_shift import shift_resource
from .large_patient import LOINC, OBS_CAT, SNOMED, build_large_patient
from .resource_store import ResourceStore

CANCER_SHARE = 0.15
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CVX = "http://hl7.org/fhir/sid/cvx"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
Resource = dict[str, Any]

FAMILY = ["Alvarez", "Brennan", "Chen", "Dubois", "Eriksen", "Fofana", "Garcia", "Haddad", "Ivanova",
          "Jensen", "Kowalski", "Lindqvist", "Mensah", "Nakamura", "O'Neill", "Petrov", "Quinn", "Rossi",
          "Schmidt", "Tanaka", "Usman", "Varga", "Whitfield", "Yilmaz", "Zhou"]  # fmt: skip
GIVEN_F = ["Ada", "Beatriz", "Chloe", "Dana", "Elif", "Fatima", "Grace", "Hana", "Ines", "June", "Keiko",
           "Lena", "Maya", "Nora", "Olga", "Priya", "Rosa", "Sofia", "Tess", "Uma"]  # fmt: skip
GIVEN_M = ["Aaron", "Bruno", "Carlos", "David", "Emeka", "Felix", "George", "Hiro", "Ivan", "Jonas", "Kwame",
           "Luis", "Marco", "Nikhil", "Omar", "Pavel", "Rafael", "Samir", "Tomas", "Victor"]  # fmt: skip
CHRONIC = [
    ("I10", "Essential (primary) hypertension"),
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("E78.5", "Hyperlipidemia, unspecified"),
    ("J45.909", "Unspecified asthma, uncomplicated"),
    ("M17.11", "Unilateral primary osteoarthritis, right knee"),
    ("K21.9", "Gastro-esophageal reflux disease without esophagitis"),
    ("E03.9", "Hypothyroidism, unspecified"),
    ("F32.9", "Major depressive disorder, single episode, unspecified"),
    ("G43.909", "Migraine, unspecified, not intractable, without status migrainosus"),
]
VITALS = [
    ("8867-4", "Heart rate", "/min", 58, 96),
    ("29463-7", "Body weight", "kg", 52, 110),
    ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 19, 36),
    ("8310-5", "Body temperature", "Cel", 36.2, 37.4),
]
LABS = [
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 75, 160),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.3),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.8, 8.2),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 140, 260),
]
VACCINES = [("140", "Influenza, seasonal, injectable, preservative free"),
            ("213", "SARS-COV-2 (COVID-19) vaccine"), ("115", "Tdap")]  # fmt: skip
VISIT_REASONS = ["annual wellness visit", "blood pressure follow-up", "medication review", "knee pain",
                 "upper respiratory symptoms", "diabetes follow-up", "fatigue"]  # fmt: skip
FIRST_VISIT = date(2024, 3, 4)


@dataclass(frozen=True)
class SyntheticPatient:
    patient_id: str
    has_cancer: bool
    resources: list[Resource]


def build_population(n: int, seed: int = 20261205, visit_scale: int = 1) -> Iterator[SyntheticPatient]:
    """`n` synthetic patients, one at a time (Patient first in each chart). `visit_scale`: the
    charts without cancer have that many times as many visits (2-8 each at 1, about 50 resources;
    at 8, 16-64 visits and about 300 resources, the size of a Synthea record)."""
    for index in range(n):
        yield build_synthetic_patient(index, seed, visit_scale)


def build_synthetic_patient(index: int, seed: int = 20261205, visit_scale: int = 1) -> SyntheticPatient:
    rng = random.Random(seed * 1_000_003 + index)  # noqa: S311 - synthetic data, not security
    patient_id = f"syn-{index:05d}"
    has_cancer = rng.random() < CANCER_SHARE
    if has_cancer:
        resources = _oncology_chart(rng, index, patient_id)
    else:
        resources = _general_chart(rng, index, patient_id, visit_scale)
    return SyntheticPatient(patient_id, has_cancer, resources)


def primary_care_chart(
    index: int, patient_id: str, *, seed: int = 20261205, visit_scale: int = 1
) -> list[Resource]:
    """One chart without cancer as the population has them (for benchmarks that mix their own)."""
    rng = random.Random(seed * 1_000_003 + index)  # noqa: S311 - synthetic data, not security
    return _general_chart(rng, index, patient_id, visit_scale)


def add_population(
    store: ResourceStore, n: int, *, seed: int = 20261205, shift_days: int = 0, visit_scale: int = 1
) -> int:
    """Add `n` synthetic patients to `store` (not listed on the launch page; patients with cancer
    join the oncology clinic). Returns how many have cancer."""
    with_cancer = 0
    for patient in build_population(n, seed, visit_scale):
        resources = (
            [shift_resource(res, shift_days) for res in patient.resources]
            if shift_days
            else patient.resources
        )
        store.add_patient_bundle(resources, None, oncology=patient.has_cancer, listed=False)
        with_cancer += patient.has_cancer
    return with_cancer


def _concept(system: str, code: str, display: str) -> Resource:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _narrative(text: str) -> Resource:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{escaped}</div>'}


def _patient(rng: random.Random, index: int, patient_id: str, gender: str, born: date) -> Resource:
    given = rng.choice(GIVEN_F if gender == "female" else GIVEN_M)
    family = rng.choice(FAMILY)
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": f"SYN-{index:07d}"}],
        "name": [{"family": family, "given": [given]}],
        "gender": gender,
        "birthDate": born.isoformat(),
        "address": [{"city": rng.choice(["Madison", "Verona", "Middleton", "Sun Prairie"]), "state": "WI"}],
    }


def _oncology_chart(rng: random.Random, index: int, patient_id: str) -> list[Resource]:
    size = rng.randint(380, 700)
    chart = build_large_patient(
        size, rng.randint(4, 12), patient_id=patient_id, seed=rng.randrange(1 << 30), prefix=f"syn{index:05d}"
    )
    born = date(rng.randint(1945, 1985), rng.randint(1, 12), rng.randint(1, 28))
    chart[0] = _patient(rng, index, patient_id, "female", born)
    for resource in chart:
        if resource["resourceType"] != "DiagnosticReport":
            continue
        if not resource.get("conclusion") and not resource.get("presentedForm"):
            name = resource["code"].get("text", "Laboratory panel")
            resource["conclusion"] = f"{name}: results reviewed; no critical values."
        resource.setdefault("text", _narrative(resource.get("conclusion") or "Pathology report attached."))
    if rng.random() < 0.5:
        chart += _her2_ish(index, patient_id)
    return chart


def _her2_ish(index: int, patient_id: str) -> list[Resource]:
    """A completed HER2 work-up: FISH on the diagnostic core, not amplified."""
    text = (
        "ADDENDUM: HER2 FISH (dual probe) on the diagnostic core biopsy: NOT AMPLIFIED. "
        "HER2/CEP17 ratio 1.3, average HER2 copy number 2.6 signals per cell. Final HER2 status: negative."
    )
    binary_id = f"syn{index:05d}-ish-binary"
    return [
        {
            "resourceType": "Binary",
            "id": binary_id,
            "contentType": "text/plain",
            "data": base64.b64encode(text.encode()).decode(),
        },
        {
            "resourceType": "DiagnosticReport",
            "id": f"syn{index:05d}-ish",
            "status": "final",
            "category": [_concept(LOINC, "LP7839-6", "Pathology")],
            "code": _concept(LOINC, "11526-1", "Pathology study"),
            "subject": {"reference": f"Patient/{patient_id}"},
            "effectiveDateTime": "2025-01-20",
            "issued": "2025-01-20T16:00:00Z",
            "conclusion": "HER2 FISH not amplified (ratio 1.3).",
            "text": _narrative(text),
            "presentedForm": [
                {"contentType": "text/plain", "url": f"Binary/{binary_id}", "title": "HER2 FISH"}
            ],
        },
    ]


def _general_chart(rng: random.Random, index: int, patient_id: str, visit_scale: int = 1) -> list[Resource]:
    gender = rng.choice(["female", "male"])
    born = date(rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28))
    items: list[Resource] = [_patient(rng, index, patient_id, gender, born)]
    prefix = f"syn{index:05d}"
    subject = {"reference": f"Patient/{patient_id}"}

    def add(resource: Resource) -> str:
        rid = f"{prefix}-{resource['resourceType'].lower()}-{len(items)}"
        resource = {"id": rid, **resource}
        items.append(resource)
        return rid

    conditions = rng.sample(CHRONIC, rng.randint(1, 4))
    for code, display in conditions:
        onset = FIRST_VISIT - timedelta(days=rng.randint(100, 3000))
        add({
            "resourceType": "Condition",
            "clinicalStatus": _concept("http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "active", "Active"),
            "category": [_concept("http://terminology.hl7.org/CodeSystem/condition-category",
                                  "problem-list-item", "Problem List Item")],
            "code": _concept(ICD10, code, display),
            "subject": subject,
            "onsetDateTime": onset.isoformat(),
            "recordedDate": onset.isoformat(),
        })  # fmt: skip
    coverage = add({
        "resourceType": "Coverage",
        "status": "active",
        "beneficiary": subject,
        "payor": [{"display": rng.choice(["Badger Mutual Health Plan", "Lakeshore Medicare Advantage"])}],
        "period": {"start": "2024-01-01"},
    })  # fmt: skip
    day = FIRST_VISIT + timedelta(days=rng.randint(0, 60))
    for visit in range(rng.randint(2 * visit_scale, 8 * visit_scale)):
        when = day.isoformat()
        reason = rng.choice(VISIT_REASONS)
        encounter = add({
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"text": reason}],
            "subject": subject,
            "period": {"start": f"{when}T09:00:00Z", "end": f"{when}T09:30:00Z"},
        })  # fmt: skip
        context = {"reference": f"Encounter/{encounter}"}
        for loinc, display, unit, low, high in rng.sample(VITALS, 2) + rng.sample(LABS, rng.randint(0, 2)):
            category = "vital-signs" if (loinc, display, unit, low, high) in VITALS else "laboratory"
            add({
                "resourceType": "Observation",
                "status": "final",
                "category": [_concept(OBS_CAT, category, category.replace("-", " ").title())],
                "code": _concept(LOINC, loinc, display),
                "subject": subject,
                "encounter": context,
                "effectiveDateTime": f"{when}T09:10:00Z",
                "valueQuantity": {"value": round(rng.uniform(low, high), 1), "unit": unit,
                                  "system": "http://unitsofmeasure.org", "code": unit},
            })  # fmt: skip
        amount = round(rng.uniform(90, 420), 2)
        claim = add({
            "resourceType": "Claim",
            "status": "active",
            "type": _concept(CLAIM_TYPE, "professional", "Professional"),
            "use": "claim",
            "patient": subject,
            "created": when,
            "provider": {"display": "Demo Family Medicine"},
            "priority": {"coding": [{"code": "normal"}]},
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": f"Coverage/{coverage}"}}],
            "item": [{"sequence": 1, "productOrService": {"text": reason}, "encounter": [context],
                      "net": {"value": amount, "currency": "USD"}}],
            "total": {"value": amount, "currency": "USD"},
        })  # fmt: skip
        add({
            "resourceType": "ExplanationOfBenefit",
            "status": "active",
            "type": _concept(CLAIM_TYPE, "professional", "Professional"),
            "use": "claim",
            "patient": subject,
            "created": when,
            "insurer": {"display": "Badger Mutual Health Plan"},
            "provider": {"display": "Demo Family Medicine"},
            "claim": {"reference": f"Claim/{claim}"},
            "outcome": "complete",
            "insurance": [{"focal": True, "coverage": {"reference": f"Coverage/{coverage}"}}],
            "total": [{"category": {"text": "submitted"}, "amount": {"value": amount, "currency": "USD"}}],
            "payment": {"amount": {"value": round(amount * 0.8, 2), "currency": "USD"}},
        })  # fmt: skip
        if visit == 0 or rng.random() < 0.3:
            problems = ", ".join(display.lower() for _, display in conditions)
            note = (
                f"Primary care visit {when} ({reason}). Known problems: {problems}. "
                f"Exam unremarkable. No weight loss, no night sweats, no palpable masses. "
                "Plan: continue current medications, routine screening up to date, follow up in 6 months."
            )
            add({
                "resourceType": "DocumentReference",
                "status": "current",
                "type": _concept(LOINC, "11506-3", "Progress note"),
                "category": [_concept("http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                                      "clinical-note", "Clinical Note")],
                "subject": subject,
                "date": f"{when}T10:00:00Z",
                "context": {"encounter": [context]},
                "content": [{"attachment": {"contentType": "text/plain",
                                            "data": base64.b64encode(note.encode()).decode()}}],
            })  # fmt: skip
        if rng.random() < 0.25:
            code, display = rng.choice(VACCINES)
            add({
                "resourceType": "Immunization",
                "status": "completed",
                "vaccineCode": _concept(CVX, code, display),
                "patient": subject,
                "occurrenceDateTime": when,
            })  # fmt: skip
        day += timedelta(days=rng.randint(30, 120) // visit_scale)
    if rng.random() < 0.2:
        add({
            "resourceType": "Procedure",
            "status": "completed",
            "code": _concept(SNOMED, "73761001", "Colonoscopy"),
            "subject": subject,
            "performedDateTime": day.isoformat(),
            "note": [{"text": "Screening colonoscopy: normal colon, no polyps. Repeat in 10 years."}],
        })  # fmt: skip
    return items
