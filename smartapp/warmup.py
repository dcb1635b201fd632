"""Start-up warm-up: what the first launch after a restart would otherwise pay for, done before
the app answers `/healthz`. The lifespan (smartapp/web/app.py) runs it after loading the NLP model.

Measured cold costs (2-core machine): the engine's first evaluation of the large demo chart took
0.78 s against 0.31-0.38 s afterwards (lazy imports, code maps, compiled patterns, R4B models);
the validation worker imports the R4B models only when it first sees each resource type; Jinja
compiles each template on first use. A small synthetic chart (no real patient: one resource or
more of every type the engine reads, two report texts) exercises all of it. It is built here, not
taken from the demo EHR, which the product never imports.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from jinja2 import Environment

WARMUP_PATIENT = "secondlook-warmup"
_LOINC = "http://loinc.org"
_PATHOLOGY = (
    "FINAL DIAGNOSIS: Left breast, core biopsy: invasive ductal carcinoma, grade 2. "
    "HER2 (IHC): 2+ (equivocal); ISH is pending. Estrogen receptor positive (90%). "
    "COMMENT: Findings are suspicious for lymphovascular invasion; no in situ component is seen."
)
_IMAGING = (
    "IMPRESSION: The left breast mass now measures 2.4 x 1.9 cm, previously 2.1 x 1.8 cm. "
    "No new lesions. No evidence of metastatic disease."
)


def _coded(code: str, display: str, system: str = _LOINC) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def warmup_chart() -> tuple[list[dict[str, Any]], dict[str, tuple[bytes, str]]]:
    """A synthetic chart (resources, attachment bytes by URL)."""
    subject = {"reference": f"Patient/{WARMUP_PATIENT}"}
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": WARMUP_PATIENT,
            "birthDate": "1970-01-01",
            "gender": "female",
            "name": [{"family": "Warmup", "given": ["Synthetic"]}],
        },
        {
            "resourceType": "Condition",
            "id": "w-c1",
            "subject": subject,
            "onsetDateTime": "2026-01-05",
            "clinicalStatus": _coded(
                "active", "Active", "http://terminology.hl7.org/CodeSystem/condition-clinical"
            ),
            "verificationStatus": _coded(
                "confirmed", "Confirmed", "http://terminology.hl7.org/CodeSystem/condition-ver-status"
            ),
            "code": _coded(
                "C50.912",
                "Malignant neoplasm of unspecified site of left female breast",
                "http://hl7.org/fhir/sid/icd-10-cm",
            ),
        },
        {
            "resourceType": "MedicationRequest",
            "id": "w-m1",
            "subject": subject,
            "status": "active",
            "intent": "order",
            "authoredOn": "2026-02-01",
            "medicationCodeableConcept": {"text": "letrozole 2.5 mg tablet"},
        },
        {
            "resourceType": "Procedure",
            "id": "w-p1",
            "subject": subject,
            "status": "completed",
            "performedDateTime": "2026-01-04",
            "code": {"text": "Core needle biopsy of left breast"},
        },
        {
            "resourceType": "ServiceRequest",
            "id": "w-s1",
            "subject": subject,
            "status": "active",
            "intent": "order",
            "code": {"text": "Left breast lumpectomy"},
            "occurrenceDateTime": "2026-03-01",
        },
        {
            "resourceType": "CarePlan",
            "id": "w-cp1",
            "subject": subject,
            "status": "active",
            "intent": "plan",
            "activity": [
                {"detail": {"status": "in-progress", "description": "Neoadjuvant endocrine therapy"}}
            ],
        },
        {
            "resourceType": "Encounter",
            "id": "w-e1",
            "subject": subject,
            "status": "finished",
            "class": {"code": "AMB"},
            "period": {"start": "2026-02-01"},
        },
        {
            "resourceType": "DocumentReference",
            "id": "w-d1",
            "subject": subject,
            "status": "current",
            "date": "2026-02-01T10:00:00Z",
            "type": _coded("11506-3", "Progress note"),
            "content": [{"attachment": {"contentType": "text/plain", "url": "Binary/w-b3"}}],
        },
    ]
    for n, (code, name, value, unit) in enumerate(
        [
            ("718-7", "Hemoglobin", 12.5, "g/dL"),
            ("2857-1", "PSA", 0.1, "ng/mL"),
            ("2039-6", "CEA", 2.1, "ng/mL"),
            ("21889-1", "Tumor size", 24, "mm"),
        ]
        * 5
    ):
        resources.append(
            {
                "resourceType": "Observation",
                "id": f"w-o{n}",
                "subject": subject,
                "status": "final",
                "code": _coded(code, name),
                "effectiveDateTime": f"2026-0{1 + n % 3}-1{n % 9}",
                "valueQuantity": {"value": value, "unit": unit},
            }
        )
    resources.append(
        {
            "resourceType": "Observation",
            "id": "w-her2",
            "subject": subject,
            "status": "final",
            "code": _coded("85319-2", "HER2 [Presence] in Breast cancer specimen by Immune stain"),
            "effectiveDateTime": "2026-01-06",
            "valueString": "2+ (equivocal)",
        }
    )
    for rid, kind, code, text in (
        ("w-r1", "LP7839-6", "Pathology", "w-b1"),
        ("w-r2", "LP29684-5", "Radiology", "w-b2"),
    ):
        resources.append(
            {
                "resourceType": "DiagnosticReport",
                "id": rid,
                "subject": subject,
                "status": "final",
                "category": [_coded(kind, code)],
                "code": {"text": f"{code} report"},
                "effectiveDateTime": "2026-01-06",
                "presentedForm": [{"contentType": "text/plain", "url": f"Binary/{text}"}],
            }
        )
    note = (
        "Assessment: early breast cancer. Plan: lumpectomy next month; "
        "the patient asks about a second opinion."
    )
    attachments = {
        "Binary/w-b1": (_PATHOLOGY.encode(), "text/plain"),
        "Binary/w-b2": (_IMAGING.encode(), "text/plain"),
        "Binary/w-b3": (note.encode(), "text/plain"),
    }
    return resources, attachments


_ENGINE_WARM = False


def warm_engine(resources: list[dict[str, Any]], attachments: dict[str, tuple[bytes, str]]) -> None:
    """One evaluation through the path a launch takes (smartapp.web.patient_data), once per
    process (a second app in the same process, as in tests, finds it warm)."""
    global _ENGINE_WARM  # noqa: PLW0603
    if _ENGINE_WARM:
        return
    from smartapp.chart_reader import ChartSnapshot
    from smartapp.web.patient_data import evaluate_snapshot

    evaluate_snapshot(ChartSnapshot(WARMUP_PATIENT, resources, [], attachments), as_of=date.today())
    _ENGINE_WARM = True


def warm_templates(env: Environment) -> int:
    """Compile every template now (Jinja caches compiled templates)."""
    names = env.list_templates(extensions=["html"])
    for name in names:
        env.get_template(name)
    return len(names)
