"""Engine speed: one 2,000-resource record with 50 pathology reports, and a 1,000-patient NDJSON folder.

Prints JSON. Usage: python bench/engine_speed.py [--patients 1000]
The NLP model is warmed first; the narrative cache and the validation memo are cleared before every timed
run so each run reads its resources afresh (as a new record would).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from fhirmaps import context
from fhirmaps.r4b import forget_validations
from smartapp.cli.evaluate import load_resources
from smartapp.engine import evaluate_resources

AS_OF = date(2026, 3, 1)

PATH_TEXTS = [
    (
        "CLINICAL HISTORY: {age} year old with a {size} cm mass.\n"
        "FINAL DIAGNOSIS:\n{site}, biopsy (S26-{acc}): {dx}.\nCOMMENT: {comment}\n"
    ),
    (
        "FINAL PATHOLOGIC DIAGNOSIS:\nA. {site}, excision (S26-{acc}): {dx}, {size} cm.\n"
        "MICROSCOPIC: {mitoses} mitoses per 10 HPF.\n"
    ),
]
DX = [
    "Invasive ductal carcinoma, Nottingham grade 2",
    "Adenocarcinoma, moderately differentiated",
    "Gastrointestinal stromal tumor",
    "Atypical lymphoid infiltrate; lymphoma cannot be excluded",
    "Diffuse large B-cell lymphoma",
    "Serous borderline tumor",
    "Leiomyosarcoma, high grade",
    "Benign fibroadipose tissue. No evidence of malignancy",
    "Mantle cell lymphoma",
]
SITES = [
    "Breast, left",
    "Colon, sigmoid",
    "Stomach, antrum",
    "Lymph node, cervical",
    "Ovary, right",
    "Thigh, soft tissue",
]
COMMENTS = [
    "Reviewed by a second pathologist, who concurs.",
    "Findings discussed with Dr. Rivera on {day}.",
    "KIT and DOG1 positive.",
]
IMAGING = [
    "IMPRESSION: New hepatic metastases measuring up to {size} cm, consistent with progressive disease.",
    "IMPRESSION: Stable disease. No new lesions. Index lesion {size} cm.",
]
ICD10 = ["C50.912", "C18.7", "C49.A2", "C83.38", "C61", "C34.11", "C92.00", "C56.1", "Z85.3", "I10", "E11.9"]


def _patient(rng: random.Random, n: int) -> list[dict[str, Any]]:
    pid = f"p{n}"
    subject = {"reference": f"Patient/{pid}"}
    out: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": pid,
            "birthDate": f"{rng.randint(1940, 1995)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        }
    ]
    for i in range(rng.randint(2, 4)):
        code = rng.choice(ICD10)
        out.append(
            {
                "resourceType": "Condition",
                "id": f"{pid}-c{i}",
                "subject": subject,
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]},
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
            }
        )
    for i in range(rng.randint(1, 3)):
        text = rng.choice(PATH_TEXTS).format(
            age=rng.randint(30, 90),
            size=rng.randint(1, 15),
            site=rng.choice(SITES),
            acc=rng.randint(10000, 99999),
            dx=rng.choice(DX),
            comment=rng.choice(COMMENTS).format(day=rng.randint(1, 28)),
            mitoses=rng.randint(0, 30),
        )
        out.append(
            _report(
                f"{pid}-path{i}",
                subject,
                text,
                "LP7839-6",
                f"2025-{rng.randint(10, 12)}-{rng.randint(10, 28)}",
            )
        )
    text = rng.choice(IMAGING).format(size=rng.randint(1, 9))
    out.append(
        _report(f"{pid}-ct", subject, text, "LP29684-5", f"2026-0{rng.randint(1, 2)}-{rng.randint(10, 28)}")
    )
    for i in range(rng.randint(6, 14)):
        out.append(
            {
                "resourceType": "Observation",
                "id": f"{pid}-o{i}",
                "status": "final",
                "subject": subject,
                "code": {
                    "coding": [
                        {
                            "system": "http://loinc.org",
                            "code": rng.choice(["2857-1", "2039-6", "718-7", "2160-0"]),
                        }
                    ]
                },
                "effectiveDateTime": f"2025-{rng.randint(1, 12):02d}-{rng.randint(10, 28)}",
                "valueQuantity": {"value": round(rng.uniform(0.1, 40), 1), "unit": "ng/mL"},
            }
        )
    out.append(
        {
            "resourceType": "MedicationRequest",
            "id": f"{pid}-m",
            "status": "active",
            "intent": "order",
            "subject": subject,
            "medicationCodeableConcept": {
                "text": rng.choice(["FOLFOX", "letrozole 2.5 mg", "pembrolizumab 200 mg", "metformin 500 mg"])
            },
            "authoredOn": "2025-07-01",
        }
    )
    return out


def _report(rid: str, subject: dict[str, str], text: str, category: str, when: str) -> dict[str, Any]:
    import base64

    return {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "status": "final",
        "subject": subject,
        "effectiveDateTime": when,
        "category": [{"coding": [{"system": "http://loinc.org", "code": category}]}],
        "code": {"text": "Report"},
        "presentedForm": [{"contentType": "text/plain", "data": base64.b64encode(text.encode()).decode()}],
    }


def _write_folder(folder: Path, patients: int) -> int:
    rng = random.Random(20261125)
    by_type: dict[str, list[str]] = {}
    count = 0
    for n in range(patients):
        for resource in _patient(rng, n):
            by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
            count += 1
    for rtype, lines in by_type.items():
        (folder / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    return count


def _large_record() -> list[dict[str, Any]]:
    from demo_ehr.large_patient import build_large_patient

    return build_large_patient(n_resources=2000, n_pathology=50)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    context.warm()
    warm_seconds = time.perf_counter() - started
    evaluate_resources(
        _patient(random.Random(1), 0), as_of=AS_OF
    )  # imports R4B model classes, compiles regexes

    large = _large_record()
    evaluate_resources(large, as_of=AS_OF)
    timings = []
    for _ in range(args.repeat):
        context.clear_cache()
        forget_validations()
        t0 = time.perf_counter()
        evaluate_resources(large, as_of=AS_OF)
        timings.append(time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        resources_written = _write_folder(folder, args.patients)
        context.clear_cache()
        forget_validations()
        t0 = time.perf_counter()
        resources = load_resources(folder)
        results = evaluate_resources(resources, as_of=AS_OF)
        bulk_seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "nlp_model_load_seconds": round(warm_seconds, 3),
                "large_record": {
                    "resources": len(large),
                    "pathology_reports": 50,
                    "seconds_median": round(statistics.median(timings), 3),
                    "seconds_min": round(min(timings), 3),
                    "seconds_all": [round(t, 3) for t in timings],
                    "budget_seconds": 1.0,
                },
                "bulk_ndjson": {
                    "patients": len(results),
                    "resources": resources_written,
                    "seconds": round(bulk_seconds, 2),
                    "patients_per_second": round(len(results) / bulk_seconds, 1),
                    "budget_patients_per_second": 20,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
